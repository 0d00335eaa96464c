package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"llmscope"
	"llmscope/postgres"
)

// spanCounter is an OTLP/HTTP traces receiver that counts the spans it
// received by trace id, and notes when each request arrived and from which
// gateway (the "gw" query parameter of the endpoint the gateway was given).
type spanCounter struct {
	mu       sync.Mutex
	count    map[string]int // trace id (hex) → spans received
	arrivals []arrival
}

type arrival struct {
	gw string
	at time.Time
}

func newSpanCounter(t *testing.T) (*spanCounter, string) {
	c := &spanCounter{count: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.arrivals = append(c.arrivals, arrival{r.URL.Query().Get("gw"), time.Now()})
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.count[hex.EncodeToString(s.TraceId)]++
				}
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL + "/v1/traces"
}

// check compares what arrived with the calls stored: missing are stored
// calls never received, dups the calls received more than once, extra the
// spans beyond one per call.
func (c *spanCounter) check(calls []*llmscope.Call) (missing, dups, extra int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, call := range calls {
		switch n := c.count[call.TraceID]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
			extra += n - 1
		}
	}
	return missing, dups, extra
}

// senders returns the gateways whose exports arrived after since, and the
// first arrival of each.
func (c *spanCounter) senders(since time.Time) map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := map[string]time.Time{}
	for _, a := range c.arrivals {
		if _, ok := first[a.gw]; !ok && a.at.After(since) {
			first[a.gw] = a.at
		}
	}
	return first
}

// sendCalls sends n chat calls, streamed and not in turn, spread over the
// gateways, with a few at once; it returns how many were answered 200.
func sendCalls(bases []string, n int, tag string) int {
	var mu sync.Mutex
	ok := 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for i := range jobs {
				body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"max_tokens":16,"messages":[{"role":"user","content":"%s %d"}]}`, i%2 == 0, tag, i)
				resp, err := http.Post(bases[i%len(bases)]+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return ok
}

// TestLeasesOneExporterAcrossGateways runs three gateways on one Postgres,
// each configured to export to the same OTLP receiver (the endpoint's query
// says which gateway sends): every call reaches it exactly once, exported
// by the one gateway holding the lease. After that gateway is SIGKILLed
// while the others take calls, one survivor takes the lease over once it
// expires (15s) and exports what the survivors record; every call arrives
// at least once, and at most one batch (200 calls) twice.
func TestLeasesOneExporterAcrossGateways(t *testing.T) {
	url := newPostgresDB(t)
	receiver, endpoint := newSpanCounter(t)

	type gateway struct {
		kill   func() error
		base   string
		stderr *syncBuffer
	}
	var gws []gateway
	var bases []string
	for i := range 3 {
		cmd, base, _, stderr := startServe(t, "--db", url, "--otlp-endpoint", fmt.Sprintf("%s?gw=%d", endpoint, i))
		gws = append(gws, gateway{kill: func() error { return cmd.Process.Signal(syscall.SIGKILL) }, base: base, stderr: stderr})
		bases = append(bases, base)
	}
	store, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored := func() []*llmscope.Call {
		calls, err := store.After(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		return calls
	}

	// Normal operation: every call exactly once.
	const n = 300
	if ok := sendCalls(bases, n, "before"); ok != n {
		t.Fatalf("%d of %d calls answered", ok, n)
	}
	eventually(t, fmt.Sprintf("the %d calls stored", n), 30*time.Second, func() bool { return len(stored()) == n })
	eventually(t, "every stored call at the receiver", 30*time.Second, func() bool {
		missing, _, _ := receiver.check(stored())
		return missing == 0
	})
	time.Sleep(time.Second) // a second exporter would have sent its copies by now
	if _, dups, extra := receiver.check(stored()); dups != 0 {
		t.Fatalf("%d calls received more than once (%d extra spans) with three gateways running, want each once", dups, extra)
	}
	senders := receiver.senders(time.Time{})
	if len(senders) != 1 {
		t.Fatalf("gateways %v exported, want exactly one", senders)
	}
	leader := -1
	for gw := range senders {
		leader, _ = strconv.Atoi(gw)
	}
	for i, gw := range gws {
		if said := strings.Contains(gw.stderr.String(), "export lease acquired"); said != (i == leader) {
			t.Errorf("gateway %d exported: %t; says it acquired the export lease: %t", i, i == leader, said)
		}
	}

	// Kill the leader while the survivors take calls.
	var survivors []string
	for i, b := range bases {
		if i != leader {
			survivors = append(survivors, b)
		}
	}
	done := make(chan int)
	go func() { done <- sendCalls(survivors, 200, "during") }()
	time.Sleep(300 * time.Millisecond)
	if err := gws[leader].kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	answered := n + <-done + sendCalls(survivors, 100, "after")
	if answered != n+300 {
		t.Errorf("%d of 300 calls to the survivors answered", answered-n)
	}
	// Every answered call is stored (the killed gateway answered none of
	// these) and then exported by whichever survivor takes the lease over.
	eventually(t, fmt.Sprintf("the %d answered calls stored", answered), 30*time.Second, func() bool { return len(stored()) >= answered })
	const ttl = 15 * time.Second
	eventually(t, "every stored call at the receiver after the kill", ttl+ttl/3+10*time.Second, func() bool {
		missing, _, _ := receiver.check(stored())
		return missing == 0
	})
	var takeover time.Duration
	took := 0
	for gw, at := range receiver.senders(killed) {
		if gw != strconv.Itoa(leader) {
			takeover = at.Sub(killed)
			took++
		}
	}
	if took != 1 {
		t.Fatalf("%d survivors exported after the kill, want exactly one", took)
	}
	time.Sleep(time.Second)
	calls := stored()
	_, dups, extra := receiver.check(calls)
	t.Logf("%d calls stored; takeover: first export by a survivor %v after SIGKILL of gateway %d (lease ttl %v); %d calls received twice or more (%d extra spans)",
		len(calls), takeover.Round(time.Millisecond), leader, ttl, dups, extra)
	if takeover > ttl+ttl/3+3*time.Second {
		t.Errorf("takeover took %v, want at most the lease time and one retry interval (%v) and a few seconds", takeover, ttl+ttl/3)
	}
	if extra > 200 {
		t.Errorf("%d extra spans after the takeover, want at most one batch (200)", extra)
	}
	holders := 0
	for i, gw := range gws {
		if i != leader && strings.Contains(gw.stderr.String(), "export lease acquired") {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%d survivors say they acquired the export lease, want 1", holders)
	}
}
