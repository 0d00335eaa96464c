package route

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrPlanDone is returned by Plan.Next once the plan has ended: Report
// returned false (the last outcome is the answer), or a wait was cut short.
var ErrPlanDone = errors.New("plan done")

// errUnreported is returned by Next called again before Report.
var errUnreported = errors.New("route: Next called before the previous attempt was reported")

type planState int

const (
	planReady   planState = iota // next is chosen; Next hands it out
	planWaiting                  // Next is sleeping before handing it out
	planRunning                  // an attempt is out; Report is due
	planDone
)

// Attempt is the record of one try, for the gateway's call record (final
// upstream, attempt count) and one child span per attempt.
type Attempt struct {
	Deployment string
	Fallback   bool // from the route's fallbacks, not its own deployments
	Start      time.Time
	Duration   time.Duration // from Next's return to Report
	Status     int           // HTTP status, 0 without a response
	Kind       Kind          // "" while the attempt is out
	Retried    bool          // another attempt followed
	Wait       time.Duration // wait before the attempt that followed
}

// Plan is the sequence of attempts for one request. Drive it with Next and
// Report, alternately, from one goroutine at a time (it is locked, so
// Attempts may be read from another). A plan never hands out a deployment
// twice except for that deployment's own retries.
type Plan struct {
	rt    *Router
	route string
	model string
	cands []*Deployment // own deployments in choice order, then fallbacks
	nOwn  int

	mu        sync.Mutex
	state     planState
	tried     map[*Deployment]bool
	cur       *Deployment
	curTries  int
	probe     bool // cur holds its half-open probe slot
	next      *Deployment
	nextProbe bool
	wait      time.Duration
	attempts  []Attempt
}

// Route returns the name of the route the plan follows.
func (p *Plan) Route() string { return p.route }

// Model returns the request's model name.
func (p *Plan) Model() string { return p.model }

// String describes the plan without keys.
func (p *Plan) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("route.Plan{route %q, model %q, %d attempts}", p.route, p.model, len(p.attempts))
}

// GoString is String.
func (p *Plan) GoString() string { return p.String() }

// Attempts returns a copy of the attempts made so far, in order.
func (p *Plan) Attempts() []Attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Attempt(nil), p.attempts...)
}

// Last returns the deployment of the latest attempt, nil before the first.
func (p *Plan) Last() *Deployment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// Next returns the deployment for the next attempt, after sleeping the
// backoff the last Report chose (0 before the first attempt and when
// moving to another deployment). The sleep ends early with ctx, and the
// error then wraps ctx.Err(); the plan is over. After Report returned false
// Next returns ErrPlanDone. Each Next must be followed by one Report.
func (p *Plan) Next(ctx context.Context) (*Deployment, error) {
	p.mu.Lock()
	switch p.state {
	case planDone:
		p.mu.Unlock()
		return nil, fmt.Errorf("route: %w", ErrPlanDone)
	case planRunning, planWaiting:
		p.mu.Unlock()
		return nil, errUnreported
	}
	d, wait := p.next, p.wait
	p.state = planWaiting
	p.mu.Unlock()
	var err error
	if wait > 0 {
		err = p.rt.clock.Sleep(ctx, wait)
	}
	if err == nil {
		err = ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != planWaiting { // closed meanwhile
		return nil, fmt.Errorf("route: %w", ErrPlanDone)
	}
	if err != nil {
		p.state = planDone
		if p.nextProbe {
			d.health.release()
			p.nextProbe = false
		}
		return nil, fmt.Errorf("route: before trying %s: %w", d.Name, err)
	}
	if d != p.cur {
		p.cur, p.curTries, p.probe = d, 0, p.nextProbe
		p.tried[d] = true
	}
	p.curTries++
	p.nextProbe = false
	p.attempts = append(p.attempts, Attempt{Deployment: d.Name, Fallback: p.isFallback(d), Start: p.rt.clock.Now()})
	p.state = planRunning
	return d, nil
}

// Close ends the plan. It frees a half-open probe slot the plan took but
// did not report (the next deployment chosen, or an attempt never
// reported), so that a request abandoned mid-plan does not hold it until
// it goes stale. Calling it more than once, or after the plan ended, is
// harmless; the gateway can defer it.
func (p *Plan) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextProbe {
		p.next.health.release()
	}
	if p.state == planRunning && p.probe {
		p.cur.health.release()
	}
	p.state, p.nextProbe, p.probe = planDone, false, false
}

func (p *Plan) isFallback(d *Deployment) bool {
	for _, c := range p.cands[:p.nOwn] {
		if c == d {
			return false
		}
	}
	return true
}

// Report records the outcome of the attempt Next handed out, updates the
// deployment's health, and decides what follows. It returns true when the
// gateway should drop this answer and call Next for another attempt, and
// false when this answer is final: a success, a non-retryable answer, a
// failure after bytes reached the client, or a retryable failure with
// nothing left to try (the gateway then relays it, or its own error when
// there was no response). Call it once per attempt; see the package doc
// for when. Report without an attempt out returns false.
func (p *Plan) Report(o Outcome) bool {
	rt := p.rt
	now := rt.clock.Now()
	k := Classify(o)
	p.mu.Lock()
	if p.state != planRunning {
		p.mu.Unlock()
		return false
	}
	d := p.cur
	a := &p.attempts[len(p.attempts)-1]
	a.Duration, a.Status, a.Kind = now.Sub(a.Start), o.Status, k
	ra, hasRA := RetryAfter(o.Header, now)

	var evs []Event
	switch {
	case k == KindCanceled:
		if p.probe {
			d.health.release()
		}
	case k.failure():
		if until := d.health.fail(now, rt.cfg.FailureThreshold, o.Status == 429, ra); !until.IsZero() {
			evs = append(evs, Event{Kind: EventCooldown, Route: p.route, Deployment: d.Name, Reason: k, Until: until})
		}
	default:
		if d.health.succeed() {
			evs = append(evs, Event{Kind: EventRecover, Route: p.route, Deployment: d.Name})
		}
	}
	p.probe = false

	var next *Deployment
	var wait time.Duration
	if !o.Committed {
		next, wait = p.decide(d, k, o.Status, ra, hasRA, now)
	}
	if next == nil {
		p.state = planDone
		p.mu.Unlock()
		rt.emit(evs)
		return false
	}
	a.Retried, a.Wait = true, wait
	p.next, p.wait, p.state = next, wait, planReady
	ev := Event{Kind: EventRetry, Route: p.route, Deployment: next.Name, From: d.Name, Reason: k, Wait: wait}
	switch {
	case next == d:
	case p.isFallback(next):
		ev.Kind = EventFallback
	default:
		ev.Kind = EventFailover
	}
	evs = append(evs, ev)
	p.mu.Unlock()
	rt.emit(evs)
	return true
}

// decide returns the deployment of the next attempt and the wait before
// it, or nil when the plan ends. Called with p.mu held.
func (p *Plan) decide(d *Deployment, k Kind, status int, ra time.Duration, hasRA bool, now time.Time) (*Deployment, time.Duration) {
	if !k.retryable() {
		return nil, 0
	}
	// The same deployment again only when it has tries left and the
	// server does not ask for a wait beyond MaxWait.
	same := p.curTries < d.tries && !(hasRA && ra > p.rt.cfg.MaxWait)
	cooling, _ := d.health.cooling(now)
	if same && status != 429 && !cooling {
		return d, p.backoff(ra, hasRA)
	}
	if n, probe := p.pick(now, false); n != nil {
		p.nextProbe = probe
		return n, 0
	}
	if same {
		return d, p.backoff(ra, hasRA)
	}
	if n, _ := p.pick(now, true); n != nil {
		return n, 0
	}
	return nil, 0
}

// backoff returns the wait before trying the current deployment again:
// the server's ask when there is one, else BackoffBase doubled per try
// made, capped at BackoffMax, with equal jitter (half fixed, half random).
func (p *Plan) backoff(ra time.Duration, hasRA bool) time.Duration {
	if hasRA {
		return ra
	}
	c := p.rt.cfg
	d := c.BackoffBase
	for i := 1; i < p.curTries && d < c.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.BackoffMax)
	return d/2 + time.Duration(p.rt.float64()*float64(d/2))
}

// pick returns the first untried candidate that is available now, taking
// its probe slot when it is half-open. With force, when no candidate of
// the plan is available at all, it returns the untried one whose cooldown
// ends first instead. Called with p.mu held (or before the plan is shared).
func (p *Plan) pick(now time.Time, force bool) (*Deployment, bool) {
	if !force {
		for _, d := range p.cands {
			if p.tried[d] {
				continue
			}
			if ok, probe := d.health.acquire(now); ok {
				return d, probe
			}
		}
		return nil, false
	}
	var best *Deployment
	var bestUntil time.Time
	for _, d := range p.cands {
		if d.health.available(now) {
			return nil, false // something is up: cooling ones stay skipped
		}
		if p.tried[d] {
			continue
		}
		if _, until := d.health.cooling(now); best == nil || until.Before(bestUntil) {
			best, bestUntil = d, until
		}
	}
	return best, false
}
