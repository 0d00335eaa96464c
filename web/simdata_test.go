package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/pricing"
	"llmscope/sim"
)

// simExperiment is one experiment of calls sent through the gateway to the
// simulator: n chat requests for model, every streamEvery-th one streamed
// (0: none).
type simExperiment struct {
	experiment, run, model string
	n, streamEvery         int
}

// simOutcome counts the answers of one experiment's requests.
type simOutcome struct {
	statuses map[int]int
	elapsed  []time.Duration
}

// recordSimCalls records real calls into store: it starts the simulator
// with its realistic latency profile (per-model TTFT and pace, log-normal
// jitter, a tail and a few 429/5xx), the gateway in front of it pricing with
// the built-in table and a Recorder writing to store, and sends each
// experiment's requests with plain net/http, concurrency at a time per
// experiment and the experiments side by side. It returns once every call
// is in the store.
func recordSimCalls(t *testing.T, store llmscope.Writer, concurrency int, exps ...simExperiment) map[string]*simOutcome {
	t.Helper()
	up := httptest.NewServer(sim.New(sim.Config{Seed: 11, Profile: sim.Realistic()}))
	defer up.Close()
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{})
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: rec, Pricer: pricing.Default()})
	if err != nil {
		t.Fatal(err)
	}
	gs := httptest.NewServer(gw)
	defer gs.Close()

	client := &http.Client{Timeout: 20 * time.Second}
	send := func(e simExperiment, i int) (int, time.Duration, error) {
		stream := e.streamEvery > 0 && i%e.streamEvery == 0
		body := fmt.Sprintf(`{"model":%q,"max_tokens":12,"stream":%t,"messages":[{"role":"user","content":"Call %d of %s: name one prime number."}]}`,
			e.model, stream, i, e.experiment)
		req, err := http.NewRequest(http.MethodPost, gs.URL+"/v1/chat/completions", bytes.NewReader([]byte(body)))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk-sim-test")
		req.Header.Set("X-Llmscope-Experiment", e.experiment)
		req.Header.Set("X-Llmscope-Run", e.run)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			return 0, 0, err
		}
		return res.StatusCode, time.Since(start), nil
	}

	out := make(map[string]*simOutcome)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, e := range exps {
		o := &simOutcome{statuses: map[int]int{}}
		out[e.experiment] = o
		wg.Go(func() { // the experiments side by side, each concurrency calls at a time
			var calls sync.WaitGroup
			sem := make(chan struct{}, concurrency)
			for i := range e.n {
				sem <- struct{}{}
				calls.Go(func() {
					defer func() { <-sem }()
					status, d, err := send(e, i)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("%s call %d: %v", e.experiment, i, err)
						return
					}
					o.statuses[status]++
					o.elapsed = append(o.elapsed, d)
				})
			}
			calls.Wait()
		})
	}
	wg.Wait()
	// Close waits for the gateway's handlers, so every call has reached the
	// Recorder before it is flushed.
	gs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatalf("flush the recorder: %v", err)
	}
	total := 0
	for _, e := range exps {
		total += e.n
	}
	if w, d := rec.Written(), rec.Dropped(); w != int64(total) || d != 0 {
		t.Fatalf("recorder wrote %d calls and dropped %d, want %d written", w, d, total)
	}
	return out
}
