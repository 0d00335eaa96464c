package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
)

// buildBinary compiles llmscope once per test run.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "llmscope-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "llmscope")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// startServe runs `llmscope serve` on a free port with a fresh database and
// returns the process, its base URL and the database path.
func startServe(t *testing.T, extra ...string) (*exec.Cmd, string, string, *syncBuffer) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "calls.db")
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, extra...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var first, base string
	deadline := time.After(30 * time.Second)
	found := make(chan struct{})
	go func() {
		for lines.Scan() {
			l := lines.Text()
			if first == "" {
				first = l
			}
			if i := strings.Index(l, "listening on http://"); i >= 0 {
				base = strings.Fields(l[i+len("listening on "):])[0]
				close(found)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-found:
	case <-deadline:
		t.Fatalf("serve did not start; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(first, "simulator") && !slices.Contains(extra, "--upstream") {
		t.Errorf("first output line does not say the simulator answers: %q", first)
	}
	return cmd, base, db, stderr
}

// syncBuffer is a bytes.Buffer the child process writes to while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeSIGTERMDuringBurstLosesNothing(t *testing.T) {
	cmd, base, db, stderr := startServe(t)
	const n = 500
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	ids := map[string]bool{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"messages":[{"role":"user","content":"request %d"}]}`, i%2 == 0, i)
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Sim-Fault", "delay=700ms")
			resp, err := hc.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
			ids[resp.Header.Get("X-Llmscope-Call-Id")] = true
		}()
	}
	time.Sleep(400 * time.Millisecond) // every request is in flight, held by the delay
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if statuses[200] != n {
		t.Fatalf("responses by status: %v, want all %d answered 200", statuses, n)
	}
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stats, err := store.Stats(context.Background(), llmscope.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Totals.Calls != n {
		t.Fatalf("store holds %d calls after SIGTERM, want %d", stats.Totals.Calls, n)
	}
	for id := range ids {
		if _, err := store.Get(context.Background(), id); err != nil {
			t.Errorf("call %s answered but not stored: %v", id, err)
		}
	}
}

func TestServeAPIAndCallsCommand(t *testing.T) {
	_, base, db, _ := startServe(t, "--capture")
	body := `{"model":"gpt-4o-mini","temperature":0.3,"messages":[{"role":"user","content":"hello"}]}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Llmscope-Call-Id")

	// The call reaches the store within a moment (group commit).
	var got llmscope.Call
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get(base + "/api/calls/" + id)
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode == 200 {
			_ = json.NewDecoder(r.Body).Decode(&got)
			r.Body.Close()
			break
		}
		r.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("call %s never appeared in /api/calls/{id}", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.ID != id || got.Provider != "sim" || got.Params.Temperature == nil || *got.Params.Temperature != 0.3 || got.Input == "" {
		t.Errorf("stored call %+v", got)
	}
	if got.Cost == nil || got.Cost.TotalUSD <= 0 || got.Usage.Source != llmscope.UsageReported {
		t.Errorf("stored call not priced: cost %+v usage %+v", got.Cost, got.Usage)
	}
	var list struct{ Calls []llmscope.Call }
	r, err := http.Get(base + "/api/calls?limit=5&model=gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(r.Body).Decode(&list)
	r.Body.Close()
	if len(list.Calls) != 1 || list.Calls[0].ID != id {
		t.Errorf("/api/calls = %+v", list.Calls)
	}
	r, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !bytes.Contains(metrics, []byte("llmscope_store_queue_depth")) {
		t.Errorf("/metrics: %d\n%s", r.StatusCode, metrics)
	}
	for path, want := range map[string]int{"/healthz": 200, "/api/calls/nope": 404, "/nowhere": 404, "/api/calls?limit=x": 400, "/": 200} {
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("GET %s = %d, want %d: %s", path, r.StatusCode, want, b)
		}
		if want >= 400 && !bytes.Contains(b, []byte(`"error":{`)) {
			t.Errorf("GET %s error body is not OpenAI-shaped: %s", path, b)
		}
	}

	// `llmscope calls --json` reads the same store while serve runs.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"calls", "--db", db, "--json"}, nil, &out, &errb); code != 0 {
		t.Fatalf("calls exited %d: %s", code, errb.String())
	}
	var calls []llmscope.Call
	if err := json.Unmarshal(out.Bytes(), &calls); err != nil || len(calls) != 1 || calls[0].ID != id {
		t.Errorf("calls --json = %s (%v)", out.String(), err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"calls", "--db", db}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), id) {
		t.Errorf("calls table (exit %d):\n%s", code, out.String())
	}
}

// sendJSON posts body to url with headers, reads the whole answer and
// returns its status.
func sendJSON(t *testing.T, url, body string, headers map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStats waits until serve at base has stored n calls and returns its
// /api/stats.
func waitStats(t *testing.T, base string, n int64) llmscope.Stats {
	t.Helper()
	var stats llmscope.Stats
	eventually(t, "all calls stored", 30*time.Second, func() bool {
		r, err := http.Get(base + "/api/stats")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		_ = json.NewDecoder(r.Body).Decode(&stats)
		return stats.Totals.Calls == n
	})
	return stats
}
