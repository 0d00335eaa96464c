package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chatServer answers chat completions like the simulator: JSON, or an SSE
// stream with a role chunk, two content chunks and [DONE]. before runs
// first for each request with its 0-based arrival number.
func chatServer(t *testing.T, before func(n int64)) *httptest.Server {
	var arrivals atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		if r.URL.Path != "/v1/chat/completions" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if before != nil {
			before(arrivals.Add(1) - 1)
		}
		if !req.Stream {
			io.WriteString(w, `{"choices":[{"message":{"content":"hi"}}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{`{"choices":[{"delta":{"role":"assistant","content":""}}]}`,
			`{"choices":[{"delta":{"content":"Hello"}}]}`, `{"choices":[{"delta":{"content":" there"}}]}`, `[DONE]`} {
			fmt.Fprintf(w, "data: %s\n\n", ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestOpenLoopChargesStallsToTheRequestsBehindThem is the coordinated
// omission case: the server holds the first request for stall while the
// generator may only have one request in flight, so the requests scheduled
// during the stall are sent late. Their latency counts from their intended
// send time, so at least the stalled request and those scheduled in the
// first half of the stall (each sent only after it) show at least stall/2.
// The bounds follow from time.Sleep sleeping at least stall, whatever the
// machine's speed.
func TestOpenLoopChargesStallsToTheRequestsBehindThem(t *testing.T) {
	const stall = 400 * time.Millisecond
	srv := chatServer(t, func(n int64) {
		if n == 0 {
			time.Sleep(stall)
		}
	})
	const rate = 100.0 // one every 10 ms
	load := Load{Mode: Open, Rate: rate, Duration: time.Second, MaxInFlight: 1}
	st, err := Run(context.Background(), NewClient(4), srv.URL+"/v1", Kinds[0], load)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 100 || st.Errors != 0 || st.Unsent != 0 {
		t.Fatalf("requests %d errors %d unsent %d (%v), want 100 0 0", st.Requests, st.Errors, st.Unsent, st.ErrorSamples)
	}
	// Requests 0..20 (intended at 0..200 ms) completed after the stall ended
	// (≥ 400 ms): 21 of 100 latencies ≥ 200 ms, so the 80th smallest is too.
	floor := time.Duration(float64(stall/2) * (1 - 1.0/subCount))
	if got := st.Latency.Quantile(0.80); got < floor {
		t.Errorf("p80 latency %v < %v: the stall was not charged to the requests queued behind it", got, floor)
	}
	if got := st.SendLag.Quantile(0.80); got < floor-stall/20 {
		t.Errorf("p80 send lag %v: the late sends were not seen", got)
	}
	if st.Latency.Max() < stall {
		t.Errorf("max latency %v < the stall %v", st.Latency.Max(), stall)
	}
}

func TestOpenLoopSendsTheScheduledCount(t *testing.T) {
	srv := chatServer(t, nil)
	st, err := Run(context.Background(), NewClient(16), srv.URL+"/v1", Kinds[2], Load{Mode: Open, Rate: 200, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 100 || st.Errors != 0 {
		t.Fatalf("requests %d errors %d (%v), want 100, 0", st.Requests, st.Errors, st.ErrorSamples)
	}
	if st.TTFT.Count() != 100 || st.Latency.Count() != 100 || st.SendLag.Count() != 100 {
		t.Errorf("ttft %d latency %d lag %d values, want 100 each", st.TTFT.Count(), st.Latency.Count(), st.SendLag.Count())
	}
	if st.TTFT.Max() > st.Latency.Max() || st.TTFT.Min() > st.Latency.Min() {
		t.Errorf("TTFT [%v, %v] beyond latency [%v, %v]", st.TTFT.Min(), st.TTFT.Max(), st.Latency.Min(), st.Latency.Max())
	}
	if st.Throughput() <= 0 {
		t.Errorf("throughput %g", st.Throughput())
	}
}

// TestClosedLoopKeepsConcurrencyInFlight: the server holds the first
// requests until three are in flight; a closed loop of three gets there
// and never exceeds it.
func TestClosedLoopKeepsConcurrencyInFlight(t *testing.T) {
	var inFlight, most atomic.Int64
	var once sync.Once
	three := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if n == 3 {
			once.Do(func() { close(three) })
		}
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-three:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	st, err := Run(context.Background(), NewClient(8), srv.URL+"/v1", Kinds[0], Load{Mode: Closed, Concurrency: 3, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() != 3 {
		t.Errorf("at most %d requests in flight, want 3", most.Load())
	}
	if st.Errors != 0 || st.Requests < 3 {
		t.Errorf("requests %d errors %d", st.Requests, st.Errors)
	}
	if st.SendLag.Count() != 0 {
		t.Errorf("a closed loop has no send lag, got %d values", st.SendLag.Count())
	}
}

func TestSequentialIsOneAtATime(t *testing.T) {
	var inFlight, most atomic.Int64
	srv := chatServer(t, func(int64) {
		n := inFlight.Add(1)
		if n > most.Load() {
			most.Store(n)
		}
		inFlight.Add(-1)
	})
	st, err := Run(context.Background(), NewClient(8), srv.URL+"/v1", Kinds[0], Load{Mode: Sequential, Concurrency: 8, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() != 1 || st.Requests == 0 {
		t.Errorf("%d in flight at most over %d requests, want 1", most.Load(), st.Requests)
	}
}

func TestErrorsAreCountedNotTimed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusTooManyRequests)
	}))
	defer srv.Close()
	st, err := Run(context.Background(), NewClient(4), srv.URL+"/v1", Kinds[0], Load{Mode: Open, Rate: 100, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 10 || st.Errors != 10 || st.Latency.Count() != 0 {
		t.Errorf("requests %d errors %d timed %d, want 10 10 0", st.Requests, st.Errors, st.Latency.Count())
	}
	if len(st.ErrorSamples) != 1 || !strings.Contains(st.ErrorSamples[0], "status 429") {
		t.Errorf("error samples %q", st.ErrorSamples)
	}
	if st.Throughput() != 0 {
		t.Errorf("throughput of failures %g, want 0", st.Throughput())
	}
}

func TestTruncatedStreamIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n")
	}))
	defer srv.Close()
	st, err := Run(context.Background(), NewClient(4), srv.URL+"/v1", Kinds[2], Load{Mode: Sequential, Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Errors == 0 || st.Errors != st.Requests || !strings.Contains(st.ErrorSamples[0], "[DONE]") {
		t.Errorf("requests %d errors %d %q", st.Requests, st.Errors, st.ErrorSamples)
	}
}

func TestHasContent(t *testing.T) {
	for line, want := range map[string]bool{
		`data: {"choices":[{"delta":{"role":"assistant","content":""}}]}`: false,
		`data: {"choices":[{"delta":{"content":"Hi"}}]}`:                  true,
		`data: {"choices":[{"text":"Hi","index":0}]}`:                     true,
		`data: [DONE]`: false,
		`: keep-alive`: false,
	} {
		if got := hasContent([]byte(line + "\n")); got != want {
			t.Errorf("hasContent(%s) = %v", line, got)
		}
	}
}

func TestKindBodies(t *testing.T) {
	for _, k := range Kinds {
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(k.Body(), &req); err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		user := req.Messages[len(req.Messages)-1].Content
		if req.Stream != k.Stream || k.PromptBytes > 0 && len(user) != k.PromptBytes {
			t.Errorf("%s: stream %v, prompt %d bytes", k.Name, req.Stream, len(user))
		}
		if string(k.Body()) != string(k.Body()) {
			t.Errorf("%s: body not deterministic", k.Name)
		}
	}
	if _, err := KindByName("nope"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestRunRejectsBadLoads(t *testing.T) {
	for _, l := range []Load{{Mode: Open, Duration: time.Second}, {Mode: Closed, Duration: time.Second}, {Mode: "x", Duration: time.Second}, {Mode: Open, Rate: 1}} {
		if _, err := Run(context.Background(), http.DefaultClient, "http://127.0.0.1:1/v1", Kinds[0], l); err == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}
