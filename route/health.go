package route

import (
	"sync"
	"time"
)

// health is one deployment's circuit, shared by every plan:
//
//	closed    — failures < threshold; the deployment takes traffic.
//	cooling   — now < until; skipped (unless a whole plan is cooling).
//	half-open — until has passed; one attempt at a time goes through as a
//	            probe. Success closes the circuit, failure cools it again.
//
// A probe whose plan never reports frees its slot after cooldown.
type health struct {
	mu       sync.Mutex
	fails    int       // consecutive failures
	until    time.Time // end of the cooldown; zero when closed
	probing  bool      // a half-open probe is in flight
	probeAt  time.Time // when it started
	cooldown time.Duration
}

// States of a deployment's circuit, in Health.
const (
	StateClosed   = "closed"
	StateCooling  = "cooling"
	StateHalfOpen = "half-open"
)

func (h *health) state(now time.Time) string {
	switch {
	case h.until.IsZero():
		return StateClosed
	case now.Before(h.until):
		return StateCooling
	}
	return StateHalfOpen
}

// cooling reports whether the deployment is in its cooldown at now, and
// when it ends.
func (h *health) cooling(now time.Time) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state(now) == StateCooling, h.until
}

// available reports whether an attempt may go to the deployment now
// without taking anything (a half-open probe slot is only looked at).
func (h *health) available(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freeLocked(now)
}

func (h *health) freeLocked(now time.Time) bool {
	switch h.state(now) {
	case StateClosed:
		return true
	case StateCooling:
		return false
	}
	return !h.probing || now.Sub(h.probeAt) >= h.cooldown
}

// acquire takes the deployment for one attempt if it is available: in
// half-open state this takes the probe slot (probe is then true). It
// reports whether it did.
func (h *health) acquire(now time.Time) (ok, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.freeLocked(now) {
		return false, false
	}
	if h.state(now) == StateHalfOpen {
		h.probing, h.probeAt = true, now
		return true, true
	}
	return true, false
}

// release frees a probe slot without a verdict (the client went away).
func (h *health) release() {
	h.mu.Lock()
	h.probing = false
	h.mu.Unlock()
}

// succeed records a success; it reports whether this closed a cooling or
// half-open circuit.
func (h *health) succeed() (recovered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	recovered = !h.until.IsZero()
	h.fails, h.until, h.probing = 0, time.Time{}, false
	return recovered
}

// fail records a failure at now. throttled (a 429) cools at once, for the
// longer of the cooldown and wait (at most ten cooldowns); otherwise the
// deployment cools after threshold consecutive failures, or at once when
// it was not closed (a failed probe). It returns the cooldown's end when
// this failure started one, else the zero time.
func (h *health) fail(now time.Time, threshold int, throttled bool, wait time.Duration) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails++
	wasOpen := !h.until.IsZero()
	h.probing = false
	if !throttled && !wasOpen && h.fails < threshold {
		return time.Time{}
	}
	d := h.cooldown
	if throttled && wait > d {
		d = min(wait, 10*h.cooldown)
	}
	h.until = now.Add(d)
	return h.until
}

// Health is a snapshot of one deployment's circuit.
type Health struct {
	Deployment string
	State      string    // StateClosed, StateCooling or StateHalfOpen
	Failures   int       // consecutive failures
	Until      time.Time // end of the cooldown (zero when closed)
}
