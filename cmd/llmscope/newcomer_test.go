package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNewcomer is the README's first five minutes: a fresh clone, an empty
// build cache, the Quick start's first command exactly as the README gives
// it (make serve), then one call through the gateway, seen in /api/calls.
// It logs the cold time (empty GOCACHE) and a warm one (the same cache, a
// second start). Slow: it runs with LLMSCOPE_NEWCOMER=1 or in CI (CI=true),
// where a missing git or make is a failure.
func TestNewcomer(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	if os.Getenv("LLMSCOPE_NEWCOMER") != "1" && !ci {
		t.Skip("slow (a cold build): set LLMSCOPE_NEWCOMER=1 to run it")
	}
	for _, tool := range []string{"git", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if ci {
				t.Fatalf("%s is not installed: the Quick start needs it", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git checkout: %v", err)
	}
	repo := strings.TrimSpace(string(root))
	first := quickStartCommand(t, filepath.Join(repo, "README.md"))
	t.Logf("the README's first command: %s", strings.Join(first, " "))

	clone := filepath.Join(t.TempDir(), "llmscope")
	if out, err := exec.Command("git", "clone", "-q", "--depth", "1", "file://"+repo, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	cache := t.TempDir()
	goenv, _ := exec.Command("go", "env", "GOMODCACHE", "GOPROXY", "GOFLAGS").Output()
	t.Logf("cold means an empty GOCACHE (%s); GOMODCACHE, GOPROXY and GOFLAGS as this environment has them (%q): modules already downloaded are not downloaded again, so no download time is measured",
		cache, strings.Fields(string(goenv)))

	cold := firstInsight(t, clone, cache, first, "cold")
	warm := firstInsight(t, clone, cache, first, "warm")
	t.Logf("time to first insight: cold %.1f s, warm %.1f s (goal: 90 s and 60 s)", cold.Seconds(), warm.Seconds())

	// The binary make built knows its version (git describe of the clone).
	head, _ := exec.Command("git", "-C", clone, "rev-parse", "--short", "HEAD").Output()
	out, err := exec.Command(filepath.Join(clone, "bin", "llmscope"), "--version").Output()
	if err != nil || !strings.Contains(string(out), strings.TrimSpace(string(head))) {
		t.Errorf("bin/llmscope --version = %q, %v; want the clone's commit %s in it", out, err, head)
	}
}

// quickStartCommand returns the first command of the README's Quick start
// code block, without its comment.
func quickStartCommand(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no \"## Quick start\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the Quick start has no ```sh code block")
	}
	block, _, _ = strings.Cut(block, "```")
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) > 0 {
			return f
		}
	}
	t.Fatal("the Quick start's code block has no command")
	return nil
}

// firstInsight runs command in dir (its own process group, GOCACHE=cache,
// the serve on a free port through LLMSCOPE_ADDR, no API key so it answers
// from the simulator), sends the README's curl call, waits until
// /api/calls lists it, stops the whole group and returns the time from the
// start to that moment.
func firstInsight(t *testing.T, dir, cache string, command []string, what string) time.Duration {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOCACHE="+cache, "LLMSCOPE_ADDR=127.0.0.1:0",
		"OPENAI_API_KEY=", "OPENAI_BASE_URL=", "MAKEFLAGS=", "MFLAGS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				if f := strings.Fields(rest); len(f) > 0 && strings.HasPrefix(f[0], "http") {
					found <- f[0]
					break
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var base string
	select {
	case base = <-found:
	case <-time.After(15 * time.Minute):
		t.Fatalf("%s: %s did not start serving within 15 min; its output:\n%s", what, strings.Join(command, " "), stderr.String())
	}
	built := time.Since(start)

	// The README's curl call.
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Llmscope-Run", "first-try")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: POST /v1/chat/completions: %v", what, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	id := resp.Header.Get("X-Llmscope-Call-Id")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("%s: POST /v1/chat/completions: status %d, call id %q", what, resp.StatusCode, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if recorded(ctx, base, id) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: call %s not in /api/calls after 30 s", what, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	// The dashboard answers too.
	if r, err := http.Get(base + "/"); err != nil || r.StatusCode != http.StatusOK {
		t.Errorf("%s: GET / = %v, %v", what, r, err)
	} else {
		_ = r.Body.Close()
	}
	stop()
	progress := strings.Count(stderr.String(), "compiled")
	t.Logf("%s: serving after %.1f s, the call recorded after %.1f s (%d progress lines on stderr)", what, built.Seconds(), took.Seconds(), progress)
	if !strings.Contains(stderr.String(), "building") {
		t.Errorf("%s: make serve said nothing about building; stderr:\n%s", what, stderr.String())
	}
	return took
}

// recorded reports whether GET /api/calls lists the call id.
func recorded(ctx context.Context, base, id string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/calls?limit=10", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var out struct {
		Calls []struct {
			ID string `json:"id"`
		} `json:"calls"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return false
	}
	for _, c := range out.Calls {
		if c.ID == id {
			return true
		}
	}
	return false
}

// --version and -version print what the version command prints.
func TestVersionFlag(t *testing.T) {
	var want, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &want, &errb); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errb.String())
	}
	for _, arg := range []string{"--version", "-version"} {
		var got bytes.Buffer
		if code := run(context.Background(), []string{arg}, nil, &got, &errb); code != 0 || got.String() != want.String() {
			t.Errorf("%s: exit %d, %q; want %q", arg, code, got.String(), want.String())
		}
	}
	if !strings.HasPrefix(want.String(), "llmscope ") {
		t.Errorf("version = %q", want.String())
	}
}

func TestVersionInfo(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "llmscope", Version: "(devel)"}}
		bi.Settings = []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-11-30T00:00:00Z"}, {Key: "vcs.modified", Value: modified}}
		return bi
	}
	const rev = "4eae80a0123456789abcdef0123456789abcdef0"
	for _, tc := range []struct {
		name, ld        string
		bi              *debug.BuildInfo
		version, commit string
	}{
		{"ldflag", "v1.2.3", vcs(rev, "false"), "v1.2.3", rev + " 2026-11-30T00:00:00Z"},
		{"plain go build", "dev", vcs(rev, "false"), "4eae80a", rev + " 2026-11-30T00:00:00Z"},
		{"plain go build, dirty", "dev", vcs(rev, "true"), "4eae80a-dirty", rev + " (modified) 2026-11-30T00:00:00Z"},
		{"go install @version", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0", "unknown (built without VCS information)"},
		{"no build info", "dev", nil, "dev", "unknown (built without VCS information)"},
	} {
		v, c := versionInfo(tc.ld, tc.bi)
		if v != tc.version || c != tc.commit {
			t.Errorf("%s: %q, %q; want %q, %q", tc.name, v, c, tc.version, tc.commit)
		}
	}
}
