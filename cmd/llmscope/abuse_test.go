package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memory returns the resident set size of process pid and its peak since
// it started (VmRSS and VmHWM of /proc/PID/status), in bytes.
func memory(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		t.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, peak
}

const mib = 1 << 20

// startBareProxy runs `llmscope bench proxy` (a bare httputil.ReverseProxy)
// in front of serve's own simulator-less upstream: it is the baseline an
// attack's memory is compared with.
func startBareProxy(t *testing.T, upstreamRoot string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "bench", "proxy", "--addr", "127.0.0.1:0", "--upstream", upstreamRoot)
	return cmd, startChild(t, cmd, "listening on ")
}

// startSim runs `llmscope sim` and returns its root URL (without /v1).
func startSim(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return startChild(t, exec.Command(bin, "sim", "--addr", "127.0.0.1:0"), "simulated")
}

// startChild starts cmd, waits for the line of its standard output that
// holds marker and returns the first http:// or https:// URL after it
// (without a trailing /v1).
func startChild(t *testing.T, cmd *exec.Cmd, marker string) string {
	t.Helper()
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			_, rest, ok := strings.Cut(sc.Text(), marker)
			if !ok {
				continue
			}
			for _, f := range strings.Fields(rest) {
				if strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://") {
					found <- f
					break
				}
			}
			break
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case u := <-found:
		return strings.TrimSuffix(strings.TrimSuffix(u, "/"), "/v1")
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start", cmd.Path)
	}
	return ""
}

// slowBodies opens n connections to base that each declare a body of
// declared bytes and send only the headers and sent bytes of it, then hang.
// It returns the connections (the caller closes them).
func slowBodies(t *testing.T, base string, n int, declared int64, sent int) []net.Conn {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			host, declared, `{"model":"gpt-4o-mini","messages":[`+strings.Repeat(" ", max(0, sent-36)))
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// healthy asserts that base still answers /healthz and a chat call.
func healthy(t *testing.T, base, during string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	r, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("%s: /healthz: %v", during, err)
	}
	r.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"still there?"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s: chat call: %v", during, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: chat call answered %d", during, resp.StatusCode)
	}
}

// TestSlowBodiesDoNotHoldMemory: 100 connections each declaring a 32 MB
// body and sending 90 bytes of it used to make serve allocate the declared
// size up front (1.5 GB). Memory now follows the bytes that arrive, the
// gateway keeps answering, and the body deadline ends each connection.
func TestSlowBodiesDoNotHoldMemory(t *testing.T) {
	simRoot := startSim(t)
	proxy, proxyBase := startBareProxy(t, simRoot)
	serve, base, _, _ := startServe(t, "--body-timeout", "3s", "--upstream", simRoot+"/v1")

	attack := func(pid int, base string) (grown, peak int64) {
		before, _ := memory(t, pid)
		conns := slowBodies(t, base, 100, 33554000, 90)
		defer closeAll(conns)
		time.Sleep(time.Second)
		_, peak = memory(t, pid)
		return peak - before, peak
	}
	bare, barePeak := attack(proxy.Process.Pid, proxyBase)
	grown, peak := attack(serve.Process.Pid, base)
	t.Logf("under 100 slow 32 MB bodies: serve peak RSS %.1f MiB (grew %.1f MiB), bare reverse proxy %.1f MiB (grew %.1f MiB)",
		float64(peak)/mib, float64(grown)/mib, float64(barePeak)/mib, float64(bare)/mib)
	if grown > 32*mib {
		t.Errorf("serve grew by %.0f MiB for 100 slow bodies of 90 bytes, want well under 32 MiB", float64(grown)/mib)
	}
	healthy(t, base, "after slow bodies")

	// The body deadline answers a stalled body with 408 and closes it.
	conns := slowBodies(t, base, 1, 1000, 40)
	defer closeAll(conns)
	_ = conns[0].SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil {
		t.Fatalf("stalled body: no answer before 20 s: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled body answered %d, want 408", resp.StatusCode)
	}
}

// TestLargeBodiesStayWithinBudget: 30 clients each streaming a 31 MB
// chunked body at once used to take 2.9 GB; with --max-buffered-bytes the
// bodies held together stay within the budget and the rest get 503.
func TestLargeBodiesStayWithinBudget(t *testing.T) {
	// The simulator runs apart, so serve's memory is the gateway's alone.
	serve, base, _, _ := startServe(t, "--max-buffered-bytes", "64MiB", "--upstream", startSim(t)+"/v1")
	before, _ := memory(t, serve.Process.Pid)
	chunk := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<20-64))
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				for range 31 {
					if _, err := pw.Write(chunk); err != nil {
						return
					}
				}
				pw.Close()
			}()
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", pr)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			pr.CloseWithError(io.ErrClosedPipe)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
		}()
	}
	wg.Wait()
	_, peak := memory(t, serve.Process.Pid)
	t.Logf("30 chunked 31 MB bodies, budget 64 MiB: statuses %v, peak RSS growth %.0f MiB", statuses, float64(peak-before)/mib)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no request was refused with 503 although 30×31 MB exceed the 64 MiB budget: %v", statuses)
	}
	// The budget, the heap serve keeps besides bodies (memoryHeadroom: the
	// garbage collector's target is set to their sum) and some slack.
	if grown := peak - before; grown > 64*mib+memoryHeadroom+32*mib {
		t.Errorf("peak RSS grew by %.0f MiB with a 64 MiB body budget", float64(grown)/mib)
	}
	healthy(t, base, "after large bodies")
}

// TestIdleConnectionsAreCheap: 2,000 connections that send nothing neither
// stop serve from answering nor grow it without bound.
func TestIdleConnectionsAreCheap(t *testing.T) {
	serve, base, _, _ := startServe(t)
	before, _ := memory(t, serve.Process.Pid)
	host := strings.TrimPrefix(base, "http://")
	conns := make([]net.Conn, 0, 2000)
	defer func() { closeAll(conns) }()
	for i := range 2000 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 1 {
			fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n", host) // half a header, then nothing
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	healthy(t, base, "with 2,000 idle connections")
	rss, _ := memory(t, serve.Process.Pid)
	t.Logf("RSS with 2,000 idle connections: %.1f MiB (%.1f MiB before)", float64(rss)/mib, float64(before)/mib)
	if grown := rss - before; grown > 96*mib {
		t.Errorf("2,000 idle connections took %.0f MiB", float64(grown)/mib)
	}
}

// TestLabelBombsKeepMetricsSmall: requests naming 1 MB models (and many
// distinct ones) neither grow /metrics nor its series without bound.
func TestLabelBombsKeepMetricsSmall(t *testing.T) {
	_, base, _, _ := startServe(t)
	huge := strings.Repeat("m", 1<<20)
	for i := range 5 {
		body := fmt.Sprintf(`{"model":"%s%d","messages":[{"role":"user","content":"hi"}]}`, huge, i)
		if s := sendJSON(t, base+"/v1/chat/completions", body, nil); s != 200 {
			t.Fatalf("1 MB model name answered %d", s)
		}
	}
	for i := range 300 { // more distinct models than the label cap
		sendJSON(t, base+"/v1/chat/completions", fmt.Sprintf(`{"model":"bomb-%d","messages":[]}`, i), nil)
	}
	waitStats(t, base, 305)
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if len(b) > 512<<10 {
		t.Errorf("/metrics is %d KiB after label bombs", len(b)>>10)
	}
	if strings.Contains(string(b), strings.Repeat("m", 200)) {
		t.Error("a 1 MB model name became a label value")
	}
	t.Logf("/metrics after 5 × 1 MB model names and 300 distinct ones: %d KiB", len(b)>>10)
}
