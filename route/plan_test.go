package route

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// twoRoutes: "main" has a (weight 2) and b (weight 1), falls back to
// route "spare" (c) then deployment "claude" (anthropic, never for an
// OpenAI-shape request).
func twoRoutes() Config {
	return Config{Routes: []RouteConfig{
		{Name: "main", Match: "gpt-*", Deployments: []DeploymentConfig{dep("a", "openai", 2), dep("b", "azure", 1)},
			Fallbacks: []string{"spare", "claude"}},
		{Name: "spare", Match: "spare-*", Deployments: []DeploymentConfig{dep("c", "openai", 1)}},
		{Name: "anthropic", Match: "claude-*", Deployments: []DeploymentConfig{dep("claude", "anthropic", 1)}},
	}}
}

func names(as []Attempt) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Deployment)
	}
	return out
}

func TestPlanSequences(t *testing.T) {
	tests := []struct {
		name   string
		answer func(d string, n int) Outcome
		tried  []string
		waits  int // how many backoff sleeps
		events map[EventKind]int
	}{
		{"success at once", always(status(200)), []string{"a"}, 0, nil},
		{"429 with Retry-After moves on without waiting", func(d string, n int) Outcome {
			if d == "a" {
				return status(429, "Retry-After", "5")
			}
			return status(200)
		}, []string{"a", "b"}, 0, map[EventKind]int{EventFailover: 1, EventCooldown: 1}},
		{"all 5xx: retries, failover, fallback, exhausted", always(status(503)), []string{"a", "a", "b", "b", "c", "c"}, 3,
			map[EventKind]int{EventRetry: 3, EventFailover: 1, EventFallback: 1}},
		{"5xx then fallback succeeds", func(d string, n int) Outcome {
			if d == "c" {
				return status(200)
			}
			return status(500)
		}, []string{"a", "a", "b", "b", "c"}, 2, map[EventKind]int{EventRetry: 2, EventFailover: 1, EventFallback: 1}},
		{"529 overloaded retried", func(d string, n int) Outcome {
			if n == 1 {
				return status(529)
			}
			return status(200)
		}, []string{"a", "a"}, 1, map[EventKind]int{EventRetry: 1}},
		{"timeout retried", func(d string, n int) Outcome {
			if n == 1 {
				return Outcome{Err: context.DeadlineExceeded}
			}
			return status(200)
		}, []string{"a", "a"}, 1, nil},
		{"connection error retried", func(d string, n int) Outcome {
			if d == "a" {
				return Outcome{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
			}
			return status(200)
		}, []string{"a", "a", "b"}, 1, nil},
		{"stream broke before first byte retried", func(d string, n int) Outcome {
			if n == 1 {
				return Outcome{Status: 200, Err: io.ErrUnexpectedEOF}
			}
			return status(200)
		}, []string{"a", "a"}, 1, nil},
		{"stream broke after first byte ends", always(Outcome{Status: 200, Err: io.ErrUnexpectedEOF, Committed: true}),
			[]string{"a"}, 0, nil},
		{"5xx relayed after the first byte ends", always(Outcome{Status: 500, Committed: true}), []string{"a"}, 0, nil},
		{"400 ends at once", always(status(400)), []string{"a"}, 0, nil},
		{"401 ends at once", always(status(401)), []string{"a"}, 0, nil},
		{"404 ends at once", always(status(404)), []string{"a"}, 0, nil},
		{"413 ends at once", always(status(413)), []string{"a"}, 0, nil},
		{"422 ends at once", always(status(422)), []string{"a"}, 0, nil},
		{"client canceled ends", always(Outcome{Err: context.Canceled}), []string{"a"}, 0, nil},
		{"Retry-After beyond MaxWait moves on", func(d string, n int) Outcome {
			if d == "a" {
				return status(503, "Retry-After", "120")
			}
			return status(200)
		}, []string{"a", "b"}, 0, map[EventKind]int{EventFailover: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, twoRoutes(), nil)
			p, err := h.rt.Plan("gpt-4o", "openai")
			if err != nil {
				t.Fatal(err)
			}
			tried := run(t, p, tt.answer)
			if !slices.Equal(tried, tt.tried) {
				t.Fatalf("tried %v, want %v", tried, tt.tried)
			}
			if got := len(h.clock.Slept()); got != tt.waits {
				t.Errorf("slept %v, want %d waits", h.clock.Slept(), tt.waits)
			}
			for k, n := range tt.events {
				if got := h.count(k); got != n {
					t.Errorf("%d %s events, want %d: %+v", got, k, n, h.Events())
				}
			}
			if _, err := p.Next(context.Background()); !errors.Is(err, ErrPlanDone) {
				t.Errorf("Next after the end = %v, want ErrPlanDone", err)
			}
			as := p.Attempts()
			if !slices.Equal(names(as), tt.tried) {
				t.Fatalf("attempts %v", names(as))
			}
			for i, a := range as {
				if a.Retried != (i < len(as)-1) || a.Kind == "" || a.Fallback != (a.Deployment == "c") {
					t.Errorf("attempt %d: %+v", i, a)
				}
			}
			if p.Last().Name != tt.tried[len(tt.tried)-1] {
				t.Errorf("Last = %v", p.Last())
			}
		})
	}
}

func TestRetryAfterSameDeployment(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Match: "*", Retries: 3, Deployments: []DeploymentConfig{dep("a", "openai", 1)}}}}
	tests := []struct {
		name  string
		first Outcome
		tried int
		slept []time.Duration
	}{
		{"429 Retry-After seconds waits on the only deployment", status(429, "Retry-After", "5"), 2, []time.Duration{5 * time.Second}},
		{"retry-after-ms", status(503, "Retry-After-Ms", "1500"), 2, []time.Duration{1500 * time.Millisecond}},
		{"too long: no retry", status(429, "Retry-After", "31"), 1, nil},
		{"HTTP date", status(503, "Retry-After", newFakeClock().now.Add(4*time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT")), 2,
			[]time.Duration{4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, cfg, nil)
			p, _ := h.rt.Plan("m", "openai")
			tried := run(t, p, func(d string, n int) Outcome {
				if n == 1 {
					return tt.first
				}
				return status(200)
			})
			if len(tried) != tt.tried || !slices.Equal(h.clock.Slept(), tt.slept) {
				t.Fatalf("tried %v, slept %v; want %d tries, %v", tried, h.clock.Slept(), tt.tried, tt.slept)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Match: "*", Retries: 8, Deployments: []DeploymentConfig{dep("a", "openai", 1)}}},
		FailureThreshold: 100}
	h := newHarness(t, cfg, rand.NewPCG(1, 2))
	p, _ := h.rt.Plan("m", "openai")
	run(t, p, always(status(500)))
	slept := h.clock.Slept()
	if len(slept) != 7 {
		t.Fatalf("slept %v", slept)
	}
	for i, d := range slept {
		full := min(DefaultBackoffBase<<i, DefaultBackoffMax)
		if d < full/2 || d > full {
			t.Errorf("wait %d = %v, want in [%v, %v]", i, d, full/2, full)
		}
	}
	if slept[6] < DefaultBackoffMax/2 {
		t.Errorf("cap not reached: %v", slept)
	}
}

func TestNextHonoursContext(t *testing.T) {
	h := newHarness(t, twoRoutes(), nil)
	p, _ := h.rt.Plan("gpt-4o", "openai")
	if _, err := p.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(context.Background()); err == nil {
		t.Fatal("Next twice without Report")
	}
	if !p.Report(status(500)) {
		t.Fatal("500 not retried")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context = %v", err)
	}
	if _, err := p.Next(context.Background()); !errors.Is(err, ErrPlanDone) {
		t.Fatalf("Next after a cut wait = %v", err)
	}
	if p.Report(status(500)) {
		t.Fatal("Report without an attempt out")
	}
}

func TestShapes(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{
		{Name: "mixed", Match: "*", Deployments: []DeploymentConfig{dep("oai", "openai", 1)}, Fallbacks: []string{"anthropic", "google"}},
		{Name: "anthropic", Match: "claude-*", Deployments: []DeploymentConfig{dep("ant", "anthropic", 1), dep("ant2", "anthropic", 1)}},
		{Name: "google", Match: "gemini-*", Deployments: []DeploymentConfig{dep("gem", "gemini", 1)}},
	}}
	h := newHarness(t, cfg, nil)
	tests := []struct {
		model, api string
		route      string
		tried      []string
	}{
		{"gpt-4o", "openai", "mixed", []string{"oai", "oai"}},
		{"gpt-4o", "azure", "mixed", []string{"oai", "oai"}},
		// "mixed" matches and, through its fallbacks, holds anthropic deployments.
		{"claude-3", "anthropic", "mixed", []string{"ant", "ant", "ant2", "ant2"}},
		{"gemini-pro", "gemini", "mixed", []string{"gem", "gem"}},
	}
	for _, tt := range tests {
		p, err := h.rt.Plan(tt.model, tt.api)
		if err != nil {
			t.Fatalf("%s/%s: %v", tt.model, tt.api, err)
		}
		tried := run(t, p, always(status(502)))
		if p.Route() != tt.route || !slices.Equal(tried, tt.tried) || p.Model() != tt.model {
			t.Errorf("%s/%s: route %s tried %v, want %s %v", tt.model, tt.api, p.Route(), tried, tt.route, tt.tried)
		}
	}
	// Nothing of the shape at all.
	cfg.Routes[0].Fallbacks = nil
	cfg.Routes = cfg.Routes[:1]
	h = newHarness(t, cfg, nil)
	if _, err := h.rt.Plan("claude-3", "anthropic"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("anthropic request with only openai deployments: %v", err)
	}
	if _, err := h.rt.Plan("x", "cohere"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("unknown api: %v", err)
	}
}

func TestFirstMatchWins(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{
		{Name: "mini", Match: "gpt-4o-mini", Deployments: []DeploymentConfig{dep("mini", "openai", 1)}},
		{Name: "4o", Match: "gpt-4o*", Deployments: []DeploymentConfig{dep("four", "openai", 1)}},
		{Name: "all", Match: "*", Deployments: []DeploymentConfig{dep("all", "openai", 1)}},
	}}
	h := newHarness(t, cfg, nil)
	for model, want := range map[string]string{"gpt-4o-mini": "mini", "gpt-4o": "4o", "gpt-4o-2024": "4o", "gpt-4o-mini-x": "4o", "o1": "all"} {
		p, err := h.rt.Plan(model, "openai")
		if err != nil || p.Route() != want {
			t.Errorf("%s: route %v, %v; want %s", model, p, err, want)
		}
	}
}

func TestCooldownAndHalfOpen(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Name: "r", Match: "*", Retries: 1, Cooldown: 30 * time.Second,
		Deployments: []DeploymentConfig{dep("a", "openai", 1), dep("b", "openai", 1)}}}}
	h := newHarness(t, cfg, nil)
	first := func() string {
		t.Helper()
		p, err := h.rt.Plan("m", "openai")
		if err != nil {
			t.Fatal(err)
		}
		return p.next.Name
	}
	failA := func(d string, n int) Outcome {
		if d == "a" {
			return status(500)
		}
		return status(200)
	}
	// Three consecutive failures of a cool it down.
	for i := range 3 {
		p, _ := h.rt.Plan("m", "openai")
		if tried := run(t, p, failA); !slices.Equal(tried, []string{"a", "b"}) {
			t.Fatalf("plan %d tried %v", i, tried)
		}
	}
	if h.count(EventCooldown) != 1 || h.rt.Health()[0].State != StateCooling {
		t.Fatalf("a not cooling: %+v %+v", h.rt.Health(), h.Events())
	}
	if first() != "b" {
		t.Fatal("cooling a chosen first")
	}
	// A plan where b fails too does not go to a while it cools (b is up).
	p, _ := h.rt.Plan("m", "openai")
	if tried := run(t, p, always(status(500))); !slices.Equal(tried, []string{"b"}) {
		t.Fatalf("tried %v", tried)
	}

	// After the cooldown, a is half-open: one probe at a time.
	h.clock.Advance(31 * time.Second)
	probe, _ := h.rt.Plan("m", "openai")
	if d, _ := probe.Next(context.Background()); d.Name != "a" {
		t.Fatalf("probe went to %s", d.Name)
	}
	if first() != "b" {
		t.Fatal("second plan joined the probe")
	}
	if h.rt.Health()[0].State != StateHalfOpen {
		t.Fatalf("health %+v", h.rt.Health())
	}
	// A failed probe cools a again.
	probe.Report(status(500))
	if h.rt.Health()[0].State != StateCooling || h.count(EventCooldown) != 2 {
		t.Fatalf("failed probe: %+v", h.rt.Health())
	}
	// A successful probe closes it.
	h.clock.Advance(31 * time.Second)
	probe, _ = h.rt.Plan("m", "openai")
	if d, _ := probe.Next(context.Background()); d.Name != "a" {
		t.Fatalf("probe went to %s", d.Name)
	}
	probe.Report(status(200))
	if hs := h.rt.Health(); hs[0].State != StateClosed || hs[0].Failures != 0 || h.count(EventRecover) != 1 {
		t.Fatalf("successful probe: %+v %+v", hs, h.Events())
	}
	if first() != "a" {
		t.Fatal("a not back")
	}
	// A probe abandoned without a report frees its slot after a cooldown.
	h.rt.deps["a"].health.fail(h.clock.Now(), 3, true, 0)
	h.clock.Advance(31 * time.Second)
	if first() != "a" || first() != "b" {
		t.Fatal("probe slot not taken")
	}
	h.clock.Advance(31 * time.Second)
	if first() != "a" {
		t.Fatal("stale probe slot not freed")
	}
}

func TestAllCoolingTriesEarliest(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Name: "r", Match: "*", Retries: 1,
		Deployments: []DeploymentConfig{dep("a", "openai", 1), dep("b", "openai", 1), dep("c", "openai", 1)}}}}
	h := newHarness(t, cfg, nil)
	now := h.clock.Now()
	h.rt.deps["a"].health.fail(now, 3, true, 50*time.Second)
	h.rt.deps["b"].health.fail(now, 3, true, 10*time.Second)
	h.rt.deps["c"].health.fail(now, 3, true, 20*time.Second)
	p, _ := h.rt.Plan("m", "openai")
	if tried := run(t, p, always(status(500))); !slices.Equal(tried, []string{"b", "c", "a"}) {
		t.Fatalf("tried %v, want the earliest cooldown end first", tried)
	}
}

func TestCanceledReleasesProbe(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Name: "r", Match: "*", Deployments: []DeploymentConfig{dep("a", "openai", 1), dep("b", "openai", 1)}}}}
	h := newHarness(t, cfg, nil)
	h.rt.deps["a"].health.fail(h.clock.Now(), 3, true, 0)
	h.clock.Advance(time.Minute)
	p, _ := h.rt.Plan("m", "openai")
	p.Next(context.Background())
	if p.Report(Outcome{Err: context.Canceled}) {
		t.Fatal("cancelled request retried")
	}
	p2, _ := h.rt.Plan("m", "openai")
	if p2.next.Name != "a" {
		t.Fatal("probe slot kept by a cancelled request")
	}
}

func TestCloseReleasesProbe(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Name: "r", Match: "*", Deployments: []DeploymentConfig{dep("a", "openai", 1), dep("b", "openai", 1)}}}}
	h := newHarness(t, cfg, nil)
	h.rt.deps["a"].health.fail(h.clock.Now(), 3, true, 0)
	h.clock.Advance(time.Minute)
	// Abandoned before Next.
	p, _ := h.rt.Plan("m", "openai")
	if p.next.Name != "a" {
		t.Fatal("no probe")
	}
	p.Close()
	p.Close()
	if _, err := p.Next(context.Background()); !errors.Is(err, ErrPlanDone) {
		t.Fatalf("Next after Close = %v", err)
	}
	// Abandoned with the attempt out.
	p, _ = h.rt.Plan("m", "openai")
	if d, _ := p.Next(context.Background()); d.Name != "a" {
		t.Fatal("probe slot kept by a closed plan")
	}
	p.Close()
	if p, _ = h.rt.Plan("m", "openai"); p.next.Name != "a" {
		t.Fatal("probe slot kept by a closed plan")
	}
}

func TestWeights(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Match: "*", Deployments: []DeploymentConfig{dep("a", "openai", 3), dep("b", "openai", 1)}}}}
	h := newHarness(t, cfg, rand.NewPCG(42, 7))
	const n = 10000
	count := map[string]int{}
	for range n {
		p, err := h.rt.Plan("m", "openai")
		if err != nil {
			t.Fatal(err)
		}
		count[p.next.Name]++
		// The other one is the failover.
		if len(p.cands) != 2 || p.cands[0] == p.cands[1] {
			t.Fatalf("candidates %v", p.cands)
		}
	}
	if share := float64(count["a"]) / n; share < 0.72 || share > 0.78 {
		t.Fatalf("a got %.3f of first tries, want 0.75±0.03", share)
	}
	// A cooling deployment gets no first tries.
	h.rt.deps["a"].health.fail(h.clock.Now(), 3, true, 0)
	for range 100 {
		if p, _ := h.rt.Plan("m", "openai"); p.next.Name != "b" {
			t.Fatal("cooling deployment chosen")
		}
	}
}

func TestConcurrentPlans(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{
		{Name: "r", Match: "*", Cooldown: time.Second, Fallbacks: []string{"f"},
			Deployments: []DeploymentConfig{dep("a", "openai", 3), dep("b", "openai", 1)}},
		{Name: "f", Match: "f", Deployments: []DeploymentConfig{dep("c", "openai", 1)}},
	}}
	h := newHarness(t, cfg, rand.NewPCG(1, 1))
	var attempts atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 300 {
				p, err := h.rt.Plan("m", "openai")
				if err != nil {
					t.Error(err)
					return
				}
				seen := map[string]int{}
				for {
					d, err := p.Next(context.Background())
					if err != nil {
						break
					}
					seen[d.Name]++
					if seen[d.Name] > DefaultTries {
						t.Errorf("%s tried %d times", d.Name, seen[d.Name])
					}
					attempts.Add(1)
					var o Outcome
					switch r.IntN(6) {
					case 0:
						o = status(429, "Retry-After", "0.01")
					case 1:
						o = status(503)
					case 2:
						o = Outcome{Err: io.ErrUnexpectedEOF}
					default:
						o = status(200)
					}
					if r.IntN(10) == 0 {
						h.clock.Advance(100 * time.Millisecond)
					}
					if !p.Report(o) {
						break
					}
				}
				_ = p.Attempts()
			}
		}()
	}
	wg.Wait()
	if attempts.Load() < 16*300 {
		t.Fatalf("only %d attempts", attempts.Load())
	}
	_ = h.rt.Health()
}

// gateClock's Sleep blocks until released.
type gateClock struct {
	*fakeClock
	sleeping chan struct{}
	release  chan struct{}
}

func (c gateClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeping <- struct{}{}
	<-c.release
	return nil
}

func TestCloseDuringWait(t *testing.T) {
	cfg := Config{Routes: []RouteConfig{{Match: "*", Deployments: []DeploymentConfig{dep("a", "openai", 1)}}}}
	c := gateClock{newFakeClock(), make(chan struct{}), make(chan struct{})}
	rt, err := New(cfg, Options{Getenv: env, Clock: c, Rand: zeroSource{}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := rt.Plan("m", "openai")
	p.Next(context.Background())
	if !p.Report(status(503)) {
		t.Fatal("503 not retried")
	}
	done := make(chan error)
	go func() {
		_, err := p.Next(context.Background())
		done <- err
	}()
	<-c.sleeping
	if _, err := p.Next(context.Background()); err == nil {
		t.Fatal("second Next during the wait")
	}
	p.Close()
	close(c.release)
	if err := <-done; !errors.Is(err, ErrPlanDone) {
		t.Fatalf("Next closed during its wait = %v", err)
	}
}
