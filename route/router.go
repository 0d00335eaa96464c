package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"
)

// ErrNoRoute is returned by Router.Plan when no route serves the model in
// the request's API shape.
var ErrNoRoute = errors.New("no route")

// Clock is the time source of a Router. Sleep waits d or until ctx ends,
// returning ctx.Err() then.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EventKind says what an Event is about.
type EventKind string

// Events, for metrics. Retry: the same deployment is tried again.
// Failover: another deployment of the route is tried. Fallback: a
// deployment from the route's fallbacks is tried. Cooldown: a deployment
// starts cooling down. Recover: a cooling or half-open deployment answered
// well and is closed again.
const (
	EventRetry    EventKind = "retry"
	EventFailover EventKind = "failover"
	EventFallback EventKind = "fallback"
	EventCooldown EventKind = "cooldown"
	EventRecover  EventKind = "recover"
)

// Event is one routing decision or health change. Events are delivered
// synchronously, on the goroutine calling Report, with no lock held.
type Event struct {
	Kind       EventKind
	Route      string
	Deployment string // the deployment tried next, cooled or recovered
	From       string // Retry, Failover, Fallback: the deployment that failed
	Reason     Kind   // the failure that caused it ("" for Recover)
	Wait       time.Duration
	Until      time.Time // Cooldown: its end
}

// Options are a Router's dependencies; all are optional.
type Options struct {
	// Getenv resolves DeploymentConfig.KeyEnv (default os.Getenv).
	Getenv func(string) string
	// Clock is the time source (default: the real clock).
	Clock Clock
	// Rand is the random source for weighted choice and jitter (default:
	// a randomly seeded PCG). The Router serialises its use.
	Rand rand.Source
	// OnEvent, when set, receives every Event.
	OnEvent func(Event)
}

// Deployment is one resolved upstream. It is immutable and shared by all
// plans. Its key is only returned by Key: String and every fmt verb print
// the name, API and URL without query.
type Deployment struct {
	Name    string
	API     string
	URL     string
	Model   string // upstream model name; "" keeps the request's
	Weight  int
	Timeout time.Duration // time to response headers; 0: the gateway's
	Route   string        // the route that defined it

	tries  int
	key    string
	health *health
}

// Key returns the deployment's API key ("" when it has no key_env).
func (d *Deployment) Key() string { return d.key }

// UpstreamModel returns the model name to send upstream for a request
// that named requested.
func (d *Deployment) UpstreamModel(requested string) string {
	if d.Model != "" {
		return d.Model
	}
	return requested
}

// String returns "name (api url)" with the URL's query removed.
func (d Deployment) String() string {
	return d.Name + " (" + d.API + " " + redactURL(d.URL) + ")"
}

// GoString is String: %#v never shows the key either.
func (d Deployment) GoString() string { return d.String() }

// Format prints String for every verb, so no verb shows the key.
func (d Deployment) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(d.String())) }

type route struct {
	name      string
	match     string
	own       []*Deployment
	fallbacks [][]*Deployment // one group per fallback entry
}

// Router makes plans. It is safe for concurrent use; deployment health is
// shared by all its plans.
type Router struct {
	cfg     Config
	routes  []*route
	deps    map[string]*Deployment
	clock   Clock
	onEvent func(Event)

	rmu sync.Mutex
	rnd *rand.Rand
}

// New validates cfg, applies defaults and resolves every key_env through
// opts.Getenv; a key_env that resolves to "" is an error naming the
// variable (never its value).
func New(cfg Config, opts Options) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("route: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	rt := &Router{cfg: cfg, deps: map[string]*Deployment{}, clock: opts.Clock,
		onEvent: opts.OnEvent, rnd: rand.New(opts.Rand)}
	var errs []error
	for _, rc := range cfg.Routes {
		r := &route{name: rc.RouteName(), match: rc.Match}
		tries := cmp.Or(rc.Retries, DefaultTries)
		cooldown := cmp.Or(rc.Cooldown, DefaultCooldown)
		for _, dc := range rc.Deployments {
			d, ok := rt.deps[dc.Name]
			if !ok {
				d = &Deployment{Name: dc.Name, API: dc.API, URL: dc.URL, Model: dc.Model,
					Weight: cmp.Or(dc.Weight, DefaultWeight), Timeout: dc.Timeout, Route: r.name,
					tries: tries, health: &health{cooldown: cooldown}}
				if dc.KeyEnv != "" {
					if d.key = opts.Getenv(dc.KeyEnv); d.key == "" {
						errs = append(errs, fmt.Errorf("route %q: deployment %q: environment variable %s is empty or unset",
							r.name, dc.Name, dc.KeyEnv))
					}
				}
				rt.deps[dc.Name] = d
			}
			r.own = append(r.own, d)
		}
		rt.routes = append(rt.routes, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	byName := map[string]*route{}
	for _, r := range rt.routes {
		byName[r.name] = r
	}
	for i, rc := range cfg.Routes {
		for _, f := range rc.Fallbacks {
			if fr, ok := byName[f]; ok {
				rt.routes[i].fallbacks = append(rt.routes[i].fallbacks, fr.own)
			} else {
				rt.routes[i].fallbacks = append(rt.routes[i].fallbacks, []*Deployment{rt.deps[f]})
			}
		}
	}
	return rt, nil
}

// String names the router's routes; it never shows keys.
func (rt *Router) String() string {
	return fmt.Sprintf("route.Router{%d routes, %d deployments}", len(rt.routes), len(rt.deps))
}

// GoString is String, so %#v shows no URL query either.
func (rt *Router) GoString() string { return rt.String() }

// Deployment returns the named deployment, or nil.
func (rt *Router) Deployment(name string) *Deployment { return rt.deps[name] }

// Health returns a snapshot of every deployment's circuit, sorted by name.
func (rt *Router) Health() []Health {
	now := rt.clock.Now()
	out := make([]Health, 0, len(rt.deps))
	for _, d := range rt.deps {
		h := d.health
		h.mu.Lock()
		out = append(out, Health{Deployment: d.Name, State: h.state(now), Failures: h.fails, Until: h.until})
		h.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Health) int { return cmp.Compare(a.Deployment, b.Deployment) })
	return out
}

func (rt *Router) float64() float64 {
	rt.rmu.Lock()
	defer rt.rmu.Unlock()
	return rt.rnd.Float64()
}

func (rt *Router) emit(evs []Event) {
	if rt.onEvent == nil {
		return
	}
	for _, e := range evs {
		rt.onEvent(e)
	}
}

// Plan returns the plan for one request: model is the request's model
// name, api its API shape (openai, anthropic, gemini or azure). The first
// route, in config order, whose match fits model and which holds a
// deployment of the request's shape (its own or a fallback) is used;
// deployments of other shapes are left out. It returns an error wrapping
// ErrNoRoute when no route fits.
func (rt *Router) Plan(model, api string) (*Plan, error) {
	shape := Shape(api)
	now := rt.clock.Now()
	for _, r := range rt.routes {
		if !Match(r.match, model) {
			continue
		}
		own := sameShape(r.own, shape, nil)
		seen := map[*Deployment]bool{}
		for _, d := range own {
			seen[d] = true
		}
		var fb []*Deployment
		for _, g := range r.fallbacks {
			g = sameShape(g, shape, seen)
			for _, d := range g {
				seen[d] = true
			}
			fb = append(fb, rt.order(g, now)...)
		}
		if len(own)+len(fb) == 0 {
			continue
		}
		p := &Plan{rt: rt, route: r.name, model: model, tried: map[*Deployment]bool{}, state: planReady}
		p.cands = append(rt.order(own, now), fb...)
		p.nOwn = len(own)
		p.next, p.nextProbe = p.pick(now, false)
		if p.next == nil {
			p.next, _ = p.pick(now, true)
		}
		if p.next == nil { // health changed meanwhile
			p.next = p.cands[0]
		}
		return p, nil
	}
	return nil, fmt.Errorf("route: model %q in %s shape: %w", model, shape, ErrNoRoute)
}

func sameShape(ds []*Deployment, shape string, skip map[*Deployment]bool) []*Deployment {
	var out []*Deployment
	for _, d := range ds {
		if Shape(d.API) == shape && !skip[d] {
			out = append(out, d)
		}
	}
	return out
}

// order returns ds with one deployment chosen at random by weight among
// the available ones first, then the others by weight, heaviest first
// (config order among equals).
func (rt *Router) order(ds []*Deployment, now time.Time) []*Deployment {
	rest := slices.Clone(ds)
	slices.SortStableFunc(rest, func(a, b *Deployment) int { return cmp.Compare(b.Weight, a.Weight) })
	total := 0
	for _, d := range ds {
		if d.health.available(now) {
			total += d.Weight
		}
	}
	if total == 0 {
		return rest
	}
	x := rt.float64() * float64(total)
	for _, d := range ds {
		if !d.health.available(now) {
			continue
		}
		if x -= float64(d.Weight); x < 0 {
			i := slices.Index(rest, d)
			return append(append([]*Deployment{d}, rest[:i]...), rest[i+1:]...)
		}
	}
	return rest
}
