package route

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock never sleeps: Sleep advances it and records the wait.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// zeroSource makes every weighted choice pick the first available
// deployment in config order, and every jitter zero.
type zeroSource struct{}

func (zeroSource) Uint64() uint64 { return 0 }

const secretKey = "sk-SECRET-0123456789abcdef"

// env is a Getenv that knows every *_KEY variable.
func env(name string) string {
	if strings.HasSuffix(name, "_KEY") {
		return secretKey
	}
	return ""
}

type harness struct {
	rt     *Router
	clock  *fakeClock
	mu     sync.Mutex
	events []Event
}

func (h *harness) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

func (h *harness) count(k EventKind) int {
	n := 0
	for _, e := range h.Events() {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// newHarness builds a router over cfg with a fake clock; src nil means
// zeroSource.
func newHarness(t testing.TB, cfg Config, src rand.Source) *harness {
	t.Helper()
	if src == nil {
		src = zeroSource{}
	}
	h := &harness{clock: newFakeClock()}
	rt, err := New(cfg, Options{Getenv: env, Clock: h.clock, Rand: src, OnEvent: func(e Event) {
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.rt = rt
	return h
}

func dep(name, api string, weight int) DeploymentConfig {
	return DeploymentConfig{Name: name, API: api, URL: "https://" + name + ".example.com/v1?key=inurl",
		KeyEnv: strings.ToUpper(name) + "_KEY", Weight: weight}
}

// run drives a plan to its end: answer gives the outcome of the n-th try
// (from 1) of a deployment. It returns the deployments tried, in order.
func run(t testing.TB, p *Plan, answer func(d string, n int) Outcome) []string {
	t.Helper()
	var tried []string
	tries := map[string]int{}
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatalf("plan does not end: %v", tried)
		}
		d, err := p.Next(context.Background())
		if err != nil {
			t.Fatalf("Next after %v: %v", tried, err)
		}
		tried = append(tried, d.Name)
		tries[d.Name]++
		if !p.Report(answer(d.Name, tries[d.Name])) {
			return tried
		}
	}
}

func status(code int, kv ...string) Outcome {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return Outcome{Status: code, Header: h}
}

func always(o Outcome) func(string, int) Outcome {
	return func(string, int) Outcome { return o }
}
