package budget

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Rate limits count in fixed windows of one minute aligned on the minute
// (UTC): a subject with rpm N gets N requests in [hh:mm:00, hh:mm+1:00),
// exactly, whatever the number of gateways (the counts live in one
// Counter), and its count restarts from 0 at the next minute. A fixed
// window is exact to the request with one counter per subject and one
// atomic step per request (a sliding window needs a log of timestamps to be
// exact); its price is that a client may send up to 2N requests in one
// minute straddling a boundary, N on each side.
const Window = time.Minute

// Unit is what a rate limit counts.
type Unit string

// The units of rate limits.
const (
	Requests Unit = "requests"
	Tokens   Unit = "tokens"
)

// CounterKey names one rate-limit count: a subject's requests or tokens in
// the window starting at Window (Unix seconds, a multiple of 60).
type CounterKey struct {
	Subject Subject
	Unit    Unit
	Window  int64
}

// CounterOp asks to add N to a count whose limit is Limit.
type CounterOp struct {
	Key   CounterKey
	N     int64
	Limit int64
}

// Counter holds rate-limit counts shared by the gateways: the stores
// implement it (Postgres for N gateways), MemCounter in memory. Each
// method is one atomic step and one round trip; implementations are safe
// for concurrent use and may forget the counts of windows that ended more
// than a minute ago.
type Counter interface {
	// Take adds every op's N to its count if each count + N ≤ its Limit
	// (all or nothing) and reports whether it did. It writes each count
	// into vals (len(vals) ≥ len(ops)): after the addition when it took,
	// as found when it did not.
	Take(ctx context.Context, ops []CounterOp, vals []int64) (bool, error)
	// Add adds n (negative to subtract) to each key's count, without a
	// limit: it corrects a token estimate with the actual usage.
	Add(ctx context.Context, keys []CounterKey, n int64) error
}

// MemCounter is a Counter in memory, for one gateway and for tests. The
// zero value is ready; it is safe for concurrent use.
type MemCounter struct {
	mu     sync.Mutex
	counts map[CounterKey]*int64
	latest int64 // the latest window seen
}

var _ Counter = (*MemCounter)(nil)

// Take implements Counter.
func (m *MemCounter) Take(_ context.Context, ops []CounterOp, vals []int64) (bool, error) {
	return m.take(ops, vals), nil
}

func (m *MemCounter) take(ops []CounterOp, vals []int64) bool {
	var buf [6]*int64
	ptrs := buf[:0]
	m.mu.Lock()
	defer m.mu.Unlock()
	ok := true
	for i := range ops {
		p := m.count(ops[i].Key)
		ptrs = append(ptrs, p)
		vals[i] = *p
		if vals[i]+ops[i].N > ops[i].Limit {
			ok = false
		}
	}
	if ok {
		for i, p := range ptrs {
			*p += ops[i].N
			vals[i] = *p
		}
	}
	return ok
}

// count returns the count of k, creating it. m.mu is held.
func (m *MemCounter) count(k CounterKey) *int64 {
	if p := m.counts[k]; p != nil {
		return p
	}
	if m.counts == nil {
		m.counts = make(map[CounterKey]*int64)
	}
	m.forget(k.Window)
	p := new(int64)
	m.counts[k] = p
	return p
}

// Add implements Counter.
func (m *MemCounter) Add(_ context.Context, keys []CounterKey, n int64) error {
	m.add(keys, n)
	return nil
}

func (m *MemCounter) add(keys []CounterKey, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if k.Window < m.latest-int64(Window/time.Second) {
			continue // forgotten already
		}
		*m.count(k) += n
	}
}

// forget drops the counts of windows before the previous one when window
// is a new one. m.mu is held.
func (m *MemCounter) forget(window int64) {
	if window <= m.latest {
		return
	}
	m.latest = window
	for k := range m.counts {
		if k.Window < window-int64(Window/time.Second) {
			delete(m.counts, k)
		}
	}
}

// RateSubjects are what one request is rate limited by; empty fields are
// absent.
type RateSubjects struct {
	Key, User, Model string
}

// Quota is one unit's figures for the x-ratelimit-* headers: those of the
// most constrained subject (least remaining) among the request's key, user
// and model. Limit 0 means no subject of the request has a limit in this
// unit (send no headers for it).
type Quota struct {
	// Limit is x-ratelimit-limit-{requests,tokens}: the maximum number of
	// requests (tokens) permitted before exhausting the rate limit, per
	// minute.
	Limit int64
	// Remaining is x-ratelimit-remaining-{requests,tokens}: the number of
	// requests (tokens) still permitted before exhausting the rate limit,
	// this request included (its estimated tokens).
	Remaining int64
	// Reset is x-ratelimit-reset-{requests,tokens}: the time until the
	// rate limit resets to its initial state, i.e. the end of the window.
	Reset time.Duration
}

// RateStatus is a request's quotas in both units.
type RateStatus struct {
	Requests, Tokens Quota
}

// Set sets the x-ratelimit-* headers OpenAI sends, for each unit with a
// limit: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
// x-ratelimit-reset-requests and the same for -tokens. Limits and
// remaining counts are integers; resets are durations in Go's notation as
// OpenAI writes them ("1s", "6m0s", "120ms"; see FormatReset).
func (s RateStatus) Set(h http.Header) {
	if q := s.Requests; q.Limit > 0 {
		h.Set("x-ratelimit-limit-requests", strconv.FormatInt(q.Limit, 10))
		h.Set("x-ratelimit-remaining-requests", strconv.FormatInt(q.Remaining, 10))
		h.Set("x-ratelimit-reset-requests", FormatReset(q.Reset))
	}
	if q := s.Tokens; q.Limit > 0 {
		h.Set("x-ratelimit-limit-tokens", strconv.FormatInt(q.Limit, 10))
		h.Set("x-ratelimit-remaining-tokens", strconv.FormatInt(q.Remaining, 10))
		h.Set("x-ratelimit-reset-tokens", FormatReset(q.Reset))
	}
}

// FormatReset writes d as OpenAI's x-ratelimit-reset-* values do: Go's
// duration notation at millisecond precision ("120ms", "1s", "6m0s",
// "59.5s"); "0s" for d ≤ 0.
func FormatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return d.Round(time.Millisecond).String()
}

// RateTicket is what Settle needs of a Take: the window it counted in and
// the token counts it added the estimate to.
type RateTicket struct {
	tokens int64 // the estimate added
	n      int
	keys   [3]CounterKey
}

// RateRefusal says which limit refused a request. The gateway answers 429
// (OpenAI's error type "requests" or "tokens", code
// "rate_limit_exceeded") with the RateStatus headers and Retry-After.
type RateRefusal struct {
	Subject Subject
	Unit    Unit
	Limit   int64 // per minute
	Used    int64 // counted in this window before the request
	Asked   int64 // what the request needed: 1 request, or its estimated tokens
	// RetryAfter is the time until the window ends, in whole seconds
	// rounded up (1–60 s): send it as Retry-After (seconds). When Asked >
	// Limit the request can never pass (TooLarge).
	RetryAfter time.Duration
}

// TooLarge reports whether the request alone exceeds the limit, so that
// waiting does not help.
func (r *RateRefusal) TooLarge() bool { return r.Asked > r.Limit }

// RetryAfterSeconds returns Retry-After's value.
func (r *RateRefusal) RetryAfterSeconds() int64 { return int64(r.RetryAfter / time.Second) }

// Error describes the refusal in one line, fit for the 429 body's message.
func (r *RateRefusal) Error() string {
	return fmt.Sprintf("rate limit reached for %s %q: %s per minute: limit %d, used %d, requested %d; retry after %s",
		r.Subject.Kind, r.Subject.Name, r.Unit, r.Limit, r.Used, r.Asked, r.RetryAfter)
}

// Limiter enforces rate limits. It is safe for concurrent use.
type Limiter struct {
	rates   RateLimits
	counter Counter
	mem     *MemCounter // counter, when it is one (called directly: no allocation)
	clock   Clock
}

// NewLimiter returns a Limiter of rates counting in c (nil: a MemCounter of
// its own, for one gateway), reading clock (nil: SystemClock).
func NewLimiter(rates RateLimits, c Counter, clock Clock) (*Limiter, error) {
	if err := rates.Validate(); err != nil {
		return nil, err
	}
	if c == nil {
		c = new(MemCounter)
	}
	if clock == nil {
		clock = SystemClock{}
	}
	l := &Limiter{rates: rates, counter: c, clock: clock}
	l.mem, _ = c.(*MemCounter)
	return l, nil
}

// Take counts one request and its estimated tokens (input tokens plus the
// maximum output, as for budgets) against the limits of its key, user and
// model, all or none: with a nil refusal the request may go; with a
// RateRefusal it must not (nothing was counted). The status gives the
// x-ratelimit-* figures in both cases. A shared Counter is asked once
// (one round trip); its error is returned wrapped.
func (l *Limiter) Take(ctx context.Context, s RateSubjects, estTokens int64) (RateTicket, RateStatus, *RateRefusal, error) {
	var (
		ops  [6]CounterOp
		vals [6]int64
		n    int
		t    RateTicket
	)
	estTokens = max(estTokens, 0)
	now := l.clock.Now()
	sec := now.Unix()
	window := sec - ((sec%60)+60)%60
	for _, k := range [3]struct {
		kind Kind
		name string
		kr   *KindRates
	}{{KindKey, s.Key, &l.rates.Key}, {KindUser, s.User, &l.rates.User}, {KindModel, s.Model, &l.rates.Model}} {
		if k.name == "" {
			continue
		}
		r := k.kr.rate(k.name)
		sub := Subject{k.kind, k.name}
		if r.RPM > 0 {
			ops[n] = CounterOp{Key: CounterKey{sub, Requests, window}, N: 1, Limit: r.RPM}
			n++
		}
		if r.TPM > 0 {
			ops[n] = CounterOp{Key: CounterKey{sub, Tokens, window}, N: estTokens, Limit: r.TPM}
			n++
			t.keys[t.n] = ops[n-1].Key
			t.n++
		}
	}
	if n == 0 {
		return RateTicket{}, RateStatus{}, nil, nil
	}
	var ok bool
	if l.mem != nil {
		ok = l.mem.take(ops[:n], vals[:n])
	} else {
		var err error
		if ok, err = l.takeShared(ctx, ops[:n], vals[:n]); err != nil {
			return RateTicket{}, RateStatus{}, nil, fmt.Errorf("rate limit: take: %w", err)
		}
	}
	reset := time.Unix(window+60, 0).Sub(now)
	st := RateStatus{Requests: Quota{Reset: reset}, Tokens: Quota{Reset: reset}}
	var ref *RateRefusal
	for i := range n {
		op := &ops[i]
		q := &st.Requests
		if op.Key.Unit == Tokens {
			q = &st.Tokens
		}
		rem := max(op.Limit-vals[i], 0)
		if q.Limit == 0 || rem < q.Remaining {
			q.Limit, q.Remaining = op.Limit, rem
		}
		if !ok && ref == nil && vals[i]+op.N > op.Limit {
			ref = &RateRefusal{
				Subject: op.Key.Subject, Unit: op.Key.Unit, Limit: op.Limit, Used: vals[i], Asked: op.N,
				RetryAfter: max(ceilSecond(reset), time.Second),
			}
		}
	}
	if !ok {
		return RateTicket{}, st, ref, nil
	}
	t.tokens = estTokens
	return t, st, nil, nil
}

// takeShared calls the shared Counter with copies of ops and vals, so the
// caller's arrays stay on its stack (an interface call lets its arguments
// escape): the in-memory path allocates nothing.
func (l *Limiter) takeShared(ctx context.Context, ops []CounterOp, vals []int64) (bool, error) {
	o, v := slices.Clone(ops), make([]int64, len(vals))
	ok, err := l.counter.Take(ctx, o, v)
	copy(vals, v)
	return ok, err
}

// Settle corrects the token counts of t's Take with the request's actual
// tokens (input + output from the recorded usage): it adds actual −
// estimate in the window the request was counted in, which may take a
// count above its limit (what was used was used). actualTokens < 0 means
// unknown: the estimate stays. A zero ticket does nothing.
func (l *Limiter) Settle(ctx context.Context, t RateTicket, actualTokens int64) error {
	if t.n == 0 || actualTokens < 0 || actualTokens == t.tokens {
		return nil
	}
	d := actualTokens - t.tokens
	if l.mem != nil {
		l.mem.add(t.keys[:t.n], d)
		return nil
	}
	if err := l.counter.Add(ctx, slices.Clone(t.keys[:t.n]), d); err != nil {
		return fmt.Errorf("rate limit: settle: %w", err)
	}
	return nil
}
