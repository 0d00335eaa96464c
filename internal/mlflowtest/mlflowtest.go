// Package mlflowtest starts a real MLflow tracking server for tests.
//
// The server comes from $LLMSCOPE_MLFLOW_BIN, else from
// <repo root>/.venv/mlflow/bin/mlflow, which scripts/mlflow-venv.sh installs
// (make test-deps does it). Without it tests are skipped, or fail when
// CI=true.
package mlflowtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds the wait for GET /health after starting the server.
var StartTimeout = 90 * time.Second

// Server is a running MLflow server with a private SQLite backend and
// artifact root under t.TempDir().
type Server struct {
	URL string // e.g. "http://127.0.0.1:41234"

	bin, dir string
	port     int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// Binary returns the mlflow executable the tests use, or "" if missing.
func Binary() string {
	if p := os.Getenv("LLMSCOPE_MLFLOW_BIN"); p != "" {
		if isExec(p) {
			return p
		}
		return ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".venv", "mlflow", "bin", "mlflow")
			if isExec(p) {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Start starts an MLflow server and waits until it is healthy. It is
// stopped by t.Cleanup. A missing binary skips the test (fails it when the
// environment has CI=true).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "mlflowtest: MLflow server binary not found (set LLMSCOPE_MLFLOW_BIN or run scripts/mlflow-venv.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s", msg)
		}
		t.Skipf("!!! SKIPPING MLflow integration test: %s", msg)
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	var err error
	if s.port, err = freePort(); err != nil {
		t.Fatalf("mlflowtest: %v", err)
	}
	s.URL = "http://127.0.0.1:" + strconv.Itoa(s.port)
	if err := s.start(); err != nil {
		t.Fatalf("mlflowtest: %v", err)
	}
	return s
}

// Restart stops the server if it runs and starts it again on the same port
// with the same database and artifact root, so data persists.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	for deadline := time.Now().Add(10 * time.Second); !portFree(s.port) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.start(); err != nil {
		t.Fatalf("mlflowtest: restart: %v", err)
	}
}

// Log returns the server's combined output so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

func (s *Server) start() error {
	if !portFree(s.port) {
		return fmt.Errorf("port %d is in use", s.port)
	}
	cmd := exec.Command(s.bin, "server",
		"--backend-store-uri", "sqlite:///"+filepath.Join(s.dir, "mlflow.db"),
		"--default-artifact-root", filepath.Join(s.dir, "artifacts"),
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--workers", "1",
	)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(),
		// No huey job runner: tests need no background jobs (scorers, archival).
		"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
		"MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true",
		"PYTHONUNBUFFERED=1",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // SIGTERM: the leader stops its uvicorn worker if the test binary dies
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, log
	s.mu.Unlock()

	if err := waitHealthy(s.URL, done, StartTimeout); err != nil {
		s.Stop()
		return fmt.Errorf("%w\n--- mlflow server log ---\n%s", err, log.String())
	}
	return nil
}

// Stop kills the server's whole process group (uvicorn workers included)
// and waits for it. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	// Workers may outlive the leader; make sure the group is gone.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
	for i := 0; i < 50 && syscall.Kill(-pgid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHealthy(base string, exited <-chan struct{}, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/health", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("mlflow server exited before becoming healthy")
		case <-ctx.Done():
			return fmt.Errorf("mlflow server not healthy after %s", timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
