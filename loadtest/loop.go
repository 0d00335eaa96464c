package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Mode is how a phase offers load.
type Mode string

// The modes of a phase.
const (
	// Sequential is a closed loop with one request at a time.
	Sequential Mode = "sequential"
	// Open sends at a fixed rate whatever the target's speed; latency is
	// measured from each request's intended send time.
	Open Mode = "open"
	// Closed keeps a fixed number of requests in flight (maximum throughput).
	Closed Mode = "closed"
)

// Load is the workload of one phase.
type Load struct {
	Mode        Mode
	Rate        float64       // Open: requests per second
	Concurrency int           // Closed: requests in flight (Sequential: 1)
	Duration    time.Duration // how long requests are started
	// MaxInFlight caps Open's requests in flight (default 1024). When it is
	// reached, later requests wait, and their wait counts in their latency.
	MaxInFlight int
	// Timeout bounds each request (default 30s); a request over it is an error.
	Timeout time.Duration
}

// PhaseStats is what one phase measured at the client.
type PhaseStats struct {
	// Latency: request start to the last byte of the response, of
	// successful requests. Open measures from the intended send time on the
	// schedule (coordinated-omission safe), the closed modes from the send.
	Latency Histogram
	// TTFT: the same start to the first event with content (streams only).
	TTFT Histogram
	// SendLag (Open only): actual send minus intended send time, the
	// generator's own lateness (timer granularity, scheduling, the
	// MaxInFlight cap); it is included in Latency.
	SendLag  Histogram
	Requests uint64        // requests started
	Errors   uint64        // requests that failed (transport error, status ≠ 200, broken stream, timeout)
	Unsent   uint64        // Open: scheduled requests never started before the phase was cut off
	Elapsed  time.Duration // first start (or intended start) to the last completion
	// ErrorSamples holds the first few distinct error messages.
	ErrorSamples []string
}

// Throughput returns successful requests per second over Elapsed.
func (s *PhaseStats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests-s.Errors) / s.Elapsed.Seconds()
}

// payload is one request body and whether it asks for a stream.
type payload struct {
	body   []byte
	stream bool
}

// recorder collects the outcomes of concurrent requests.
type recorder struct {
	mu    sync.Mutex
	s     PhaseStats
	start time.Time
	last  time.Time
	open  bool // record SendLag
	// win, when not nil, also receives every latency; the soak swaps it.
	win              *Histogram
	winReqs, winErrs uint64
}

func (r *recorder) add(origin, sent, first, done time.Time, stream bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Requests++
	r.winReqs++
	if done.After(r.last) {
		r.last = done
	}
	if err != nil {
		r.s.Errors++
		r.winErrs++
		if msg := err.Error(); len(r.s.ErrorSamples) < 5 && !contains(r.s.ErrorSamples, msg) {
			r.s.ErrorSamples = append(r.s.ErrorSamples, msg)
		}
		return
	}
	r.s.Latency.Record(done.Sub(origin))
	if r.win != nil {
		r.win.Record(done.Sub(origin))
	}
	if stream {
		r.s.TTFT.Record(first.Sub(origin))
	}
	if r.open {
		r.s.SendLag.Record(sent.Sub(origin))
	}
}

// window returns the latencies, requests and errors since the last call.
func (r *recorder) window() (h *Histogram, reqs, errs uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, reqs, errs = r.win, r.winReqs, r.winErrs
	r.win, r.winReqs, r.winErrs = &Histogram{}, 0, 0
	return h, reqs, errs
}

func (r *recorder) stats() *PhaseStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	if r.last.After(r.start) {
		s.Elapsed = r.last.Sub(r.start)
	}
	return &s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Run offers load of kind to the chat completions endpoint under base (a
// base URL with its /v1) and returns what it measured. It returns when every
// request it started has finished; ctx ends it early (the stats then cover
// what finished).
func Run(ctx context.Context, hc *http.Client, base string, kind Kind, load Load) (*PhaseStats, error) {
	if load.Duration <= 0 {
		return nil, errors.New("loadtest: phase duration must be positive")
	}
	if load.Timeout <= 0 {
		load.Timeout = 30 * time.Second
	}
	url := base + "/chat/completions"
	body := kind.Body()
	switch load.Mode {
	case Open:
		if load.Rate <= 0 {
			return nil, fmt.Errorf("loadtest: open loop needs a positive rate, got %g", load.Rate)
		}
		r := &recorder{open: true}
		return runOpen(ctx, hc, url, []payload{{body, kind.Stream}}, load, r), nil
	case Sequential:
		load.Concurrency = 1
		return runClosed(ctx, hc, url, body, kind.Stream, load), nil
	case Closed:
		if load.Concurrency <= 0 {
			return nil, fmt.Errorf("loadtest: closed loop needs a positive concurrency, got %d", load.Concurrency)
		}
		return runClosed(ctx, hc, url, body, kind.Stream, load), nil
	}
	return nil, fmt.Errorf("loadtest: unknown mode %q", load.Mode)
}

// runOpen starts request i at start + i/rate for i < duration·rate, each in
// its own goroutine, at most MaxInFlight at once. Latency counts from the
// intended start, so a target that stalls is charged for the requests that
// could not be sent in time as well as for the one it held up.
// Request i is reqs[i%len(reqs)]; r receives the outcomes.
func runOpen(ctx context.Context, hc *http.Client, url string, reqs []payload, load Load, r *recorder) *PhaseStats {
	maxInFlight := load.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = 1024
	}
	total := int(load.Duration.Seconds() * load.Rate)
	total = max(total, 1)
	sem := make(chan struct{}, maxInFlight)
	// A target too slow for the rate cannot stretch the phase beyond this:
	// what is still unsent is counted, not sent.
	cutoff := time.NewTimer(2*load.Duration + 10*time.Second)
	defer cutoff.Stop()
	tick := time.NewTimer(time.Hour)
	defer tick.Stop()

	start := time.Now()
	r.mu.Lock()
	r.start = start
	r.mu.Unlock()
	var wg sync.WaitGroup
	cut := func(i int) *PhaseStats {
		wg.Wait()
		r.mu.Lock()
		r.s.Unsent = uint64(total - i)
		r.mu.Unlock()
		return r.stats()
	}
	for i := 0; i < total; i++ {
		intended := start.Add(time.Duration(float64(i) * float64(time.Second) / load.Rate))
		if d := time.Until(intended); d > 0 {
			tick.Reset(d)
			select {
			case <-tick.C:
			case <-ctx.Done():
				return cut(i)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-cutoff.C:
			return cut(i)
		case <-ctx.Done():
			return cut(i)
		}
		p := reqs[i%len(reqs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, load.Timeout)
			defer cancel()
			sent := time.Now()
			first, err := do(rctx, hc, url, p.body, p.stream)
			r.add(intended, sent, first, time.Now(), p.stream, err)
		}()
	}
	wg.Wait()
	return r.stats()
}

// runClosed runs Concurrency workers that each send one request after the
// other until Duration has passed since the start.
func runClosed(ctx context.Context, hc *http.Client, url string, body []byte, stream bool, load Load) *PhaseStats {
	start := time.Now()
	end := start.Add(load.Duration)
	r := &recorder{start: start}
	var wg sync.WaitGroup
	for range load.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				rctx, cancel := context.WithTimeout(ctx, load.Timeout)
				sent := time.Now()
				first, err := do(rctx, hc, url, body, stream)
				r.add(sent, sent, first, time.Now(), stream, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	return r.stats()
}
