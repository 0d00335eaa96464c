package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a server the harness started as a child process.
type Process struct {
	Name string
	URL  string // the first http:// URL on the line that announced the address
	PID  int

	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done is closed
}

// StartProcess runs bin with args in dir under env and waits up to 30 s for
// a line on its standard output that contains marker and an http:// URL,
// which becomes the Process's URL. Its standard error is kept (the last
// 16 KiB) for error messages. ctx bounds only the wait for the address:
// the process runs until Stop, or until this process dies (it then gets
// SIGTERM from the kernel).
func StartProcess(ctx context.Context, name, bin string, args []string, dir string, env []string, marker string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	p := &Process{Name: name, cmd: cmd, stderr: &tail{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.PID = cmd.Process.Pid
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			if !strings.Contains(l, marker) {
				continue
			}
			if i := strings.Index(l, "http://"); i >= 0 {
				found <- strings.Fields(l[i:])[0]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.URL = <-found:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it listened: %v\n%s", name, p.err, p.stderr)
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-p.done
	return nil, fmt.Errorf("%s did not announce its address: %w\n%s", name, errors.Join(ctx.Err(), errors.New("timeout")), p.stderr)
}

// Alive returns an error, with the tail of the process's standard error,
// when the process has exited.
func (p *Process) Alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) exited: %v\n%s", p.Name, p.PID, p.err, p.stderr)
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it. It returns the process's exit error, if any, besides the
// signal.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v after SIGTERM: killed", p.Name, timeout)
	}
}

func (p *Process) exitErr() error {
	if p.err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w\n%s", p.Name, p.err, p.stderr)
}

// Stderr returns the kept tail of the process's standard error.
func (p *Process) Stderr() string { return p.stderr.String() }

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
