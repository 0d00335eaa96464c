// Package pgtest runs a throwaway PostgreSQL server for a test binary:
// initdb in a temporary directory, then postgres on a free loopback port,
// stopped and removed when the tests end. Each test gets a database of its
// own on that server.
//
// It uses the server binaries of Debian's postgresql package (found with
// pg_config --bindir, under /usr/lib/postgresql/*/bin, or on PATH). When
// they are missing a test asking for a database fails under CI (CI=true)
// and is skipped, loudly, elsewhere. As root, the server runs as the
// postgres system user, since initdb refuses to run as root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope/internal/needs"
)

// Hint says how to install the server binaries.
const Hint = "install Debian's postgresql package (apt-get install postgresql), or run scripts/test-deps.sh"

// ErrNoBinaries is returned by Start when no PostgreSQL server binaries are
// installed.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb, pg_ctl) found")

// Server is a running throwaway cluster. Its methods are safe for
// concurrent use.
type Server struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // temporary directory: data in dir/data, socket and log in dir
	port int
	cred *syscall.Credential // the user the server runs as; nil: this process's
	dbs  atomic.Int64
	mu   sync.Mutex // serialises Stop and Restart
}

// BinDir returns the directory holding initdb and pg_ctl, or ErrNoBinaries.
func BinDir() (string, error) {
	var dirs []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(found) // the highest version first
	dirs = append(dirs, found...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start creates a cluster in a new temporary directory and starts its
// server on a free port of 127.0.0.1. The caller must Stop it.
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	parent := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		parent = "/tmp" // every parent must be reachable by that user
	}
	if s.dir, err = os.MkdirTemp(parent, "pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			os.RemoveAll(s.dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := s.run("initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.start(); err == nil {
				return s, nil
			}
		}
		if try == 2 {
			os.RemoveAll(s.dir)
			return nil, err
		}
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// start starts the server on s.port and waits until it accepts connections.
func (s *Server) start() error {
	opts := fmt.Sprintf("-p %d -k %s -h 127.0.0.1 -c max_connections=200", s.port, s.dir)
	return s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-o", opts, "-w", "-t", "60", "start")
}

// run runs one of the server's programs as the server's user.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := strings.TrimSpace(string(out))
		if log, _ := os.ReadFile(filepath.Join(s.dir, "log")); len(log) > 0 {
			msg += "\nserver log:\n" + tail(string(log), 2000)
		}
		return fmt.Errorf("pgtest: %s %s: %w\n%s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns the URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDB creates a new, empty database and returns its URL.
func (s *Server) CreateDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.URL(name), nil
}

// Halt stops the server (fast shutdown: sessions are ended) without
// removing its data; Resume starts it again on the same port. Every test
// using the server sees the outage, so a test that halts the shared server
// must not run in parallel with others.
func (s *Server) Halt() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "-t", "60", "stop")
}

// Resume starts the server Halt stopped, on the same port.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for range 50 { // the port may linger for a moment
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Stop stops the server (immediately: it holds nothing worth keeping) and
// removes its directory.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop")
	if err != nil && !isStopped(s.data()) {
		return err // keep the directory of a server still running
	}
	return os.RemoveAll(s.dir)
}

func isStopped(data string) bool {
	_, err := os.Stat(filepath.Join(data, "postmaster.pid"))
	return errors.Is(err, os.ErrNotExist)
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the tests of m and then stops the shared server if a test
// started it; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// Shared returns the server shared by the tests of this binary, starting it
// on first use (the binary's TestMain must call Main so that it is
// stopped). Without server binaries the test fails under CI=true and is
// skipped elsewhere; a server that does not start fails it.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		stop(t, shared.err)
		return nil
	}
	return shared.srv
}

// stop ends the test for err, the error of Start: without server binaries,
// a failure under CI=true and a skip elsewhere; otherwise a failure.
func stop(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) {
		needs.Binary(t, "initdb", Hint) // fails or skips: initdb is on no path we know
	}
	t.Fatal(err)
}

// DB returns the URL of a new, empty database on the shared server.
func DB(t testing.TB) string {
	t.Helper()
	url, err := Shared(t).CreateDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return url
}
