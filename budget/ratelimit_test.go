package budget

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newLimiter(t testing.TB, rates RateLimits, c Counter, clock Clock) *Limiter {
	t.Helper()
	l, err := NewLimiter(rates, c, clock)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// opaqueCounter hides a MemCounter's type so the Limiter uses the
// Counter interface, as with a store.
type opaqueCounter struct{ c *MemCounter }

func (o opaqueCounter) Take(ctx context.Context, ops []CounterOp, vals []int64) (bool, error) {
	return o.c.Take(ctx, ops, vals)
}

func (o opaqueCounter) Add(ctx context.Context, keys []CounterKey, n int64) error {
	return o.c.Add(ctx, keys, n)
}

func TestRequestsPerMinute(t *testing.T) {
	for _, name := range []string{"mem", "interface"} {
		clock := &fakeClock{t: utc("2026-11-30T12:00:30Z")}
		var c Counter = new(MemCounter)
		if name == "interface" {
			c = opaqueCounter{new(MemCounter)}
		}
		l := newLimiter(t, RateLimits{
			Key:  KindRates{Default: Rate{RPM: 3}, Names: map[string]Rate{"vip": {RPM: 5}}},
			User: KindRates{Default: Rate{RPM: 4}},
		}, c, clock)
		s := RateSubjects{Key: "k", User: "u", Model: "m"}
		for i := range 3 {
			_, st, ref, err := l.Take(bg, s, 0)
			if err != nil || ref != nil {
				t.Fatalf("%s: request %d refused: %v %v", name, i+1, ref, err)
			}
			if st.Requests.Limit != 3 || st.Requests.Remaining != int64(2-i) || st.Requests.Reset != 30*time.Second || st.Tokens.Limit != 0 {
				t.Errorf("%s: request %d status %+v", name, i+1, st)
			}
		}
		_, st, ref, err := l.Take(bg, s, 0)
		if err != nil || ref == nil {
			t.Fatalf("%s: the 4th request passed", name)
		}
		want := RateRefusal{Subject: Subject{KindKey, "k"}, Unit: Requests, Limit: 3, Used: 3, Asked: 1, RetryAfter: 30 * time.Second}
		if *ref != want || ref.RetryAfterSeconds() != 30 || ref.TooLarge() || st.Requests.Remaining != 0 {
			t.Errorf("%s: refusal %+v, status %+v", name, *ref, st)
		}
		if !strings.Contains(ref.Error(), `rate limit reached for key "k": requests per minute: limit 3, used 3`) {
			t.Errorf("message: %s", ref.Error())
		}
		// The user had 3 of 4: a vip key of the same user gets 1 more, then the user limit refuses.
		if _, _, ref, _ := l.Take(bg, RateSubjects{Key: "vip", User: "u"}, 0); ref != nil {
			t.Errorf("%s: vip refused: %+v", name, ref)
		}
		if _, _, ref, _ := l.Take(bg, RateSubjects{Key: "vip", User: "u"}, 0); ref == nil || ref.Subject != (Subject{KindUser, "u"}) || ref.Limit != 4 {
			t.Errorf("%s: user limit: %+v", name, ref)
		}
		clock.Set(utc("2026-11-30T12:00:59.8Z"))
		if _, _, ref, _ := l.Take(bg, s, 0); ref == nil || ref.RetryAfter != time.Second {
			t.Errorf("%s: at :59.8: %+v", name, ref)
		}
		clock.Set(utc("2026-11-30T12:01:00Z")) // the next window: counts restart
		_, st, ref, _ = l.Take(bg, s, 0)
		if ref != nil || st.Requests.Remaining != 2 || st.Requests.Reset != time.Minute {
			t.Errorf("%s: after the reset: %+v %+v", name, ref, st)
		}
		// No limit for the subjects: no status.
		if _, st, ref, _ := l.Take(bg, RateSubjects{Model: "m"}, 100); ref != nil || st != (RateStatus{}) {
			t.Errorf("%s: unlimited: %+v %+v", name, ref, st)
		}
	}
}

func TestTokensPerMinute(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T12:00:00Z")}
	l := newLimiter(t, RateLimits{Model: KindRates{Names: map[string]Rate{"gpt-4o": {TPM: 1000, RPM: 100}}}}, nil, clock)
	s := RateSubjects{Key: "k", Model: "gpt-4o"}
	t1, st, ref, _ := l.Take(bg, s, 600)
	if ref != nil || st.Tokens != (Quota{Limit: 1000, Remaining: 400, Reset: time.Minute}) || st.Requests.Remaining != 99 {
		t.Fatalf("first: %+v %+v", ref, st)
	}
	_, _, ref, _ = l.Take(bg, s, 500)
	if ref == nil || ref.Unit != Tokens || ref.Used != 600 || ref.Asked != 500 || ref.Subject != (Subject{KindModel, "gpt-4o"}) {
		t.Fatalf("over the tokens: %+v", ref)
	}
	if err := l.Settle(bg, t1, 300); err != nil { // used 300 of the 600 estimated
		t.Fatal(err)
	}
	t2, st, ref, _ := l.Take(bg, s, 500)
	if ref != nil || st.Tokens.Remaining != 200 || st.Requests.Remaining != 98 {
		t.Fatalf("after settle: %+v %+v", ref, st)
	}
	_ = l.Settle(bg, t2, 900) // used more than estimated: counted
	if _, st, ref, _ = l.Take(bg, s, 0); ref == nil || ref.Used != 1200 || st.Tokens.Remaining != 0 {
		t.Errorf("over-use counted, and refuses the rest of the minute: %+v %+v", ref, st)
	}
	_ = l.Settle(bg, t2, -1)           // unknown: nothing
	_ = l.Settle(bg, RateTicket{}, 50) // zero ticket: nothing
	clock.Set(utc("2026-11-30T12:01:00Z"))
	_, _, ref, _ = l.Take(bg, s, 1001)
	if ref == nil || !ref.TooLarge() {
		t.Errorf("too large: %+v", ref)
	}
	if _, _, ref, _ = l.Take(bg, s, 1000); ref != nil {
		t.Errorf("a whole minute's tokens: %+v", ref)
	}
	_ = l.Settle(bg, t1, 0) // a ticket of an old window: harmless
}

func TestHeaders(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T12:05:59.88Z")}
	l := newLimiter(t, RateLimits{
		Key:   KindRates{Default: Rate{RPM: 60, TPM: 150000}},
		Model: KindRates{Default: Rate{RPM: 10, TPM: 1000000}},
	}, nil, clock)
	_, st, _, _ := l.Take(bg, RateSubjects{Key: "k", Model: "m"}, 1200)
	h := http.Header{}
	st.Set(h)
	want := map[string]string{
		"x-ratelimit-limit-requests":     "10", // the model's: 9 left beats the key's 59
		"x-ratelimit-remaining-requests": "9",
		"x-ratelimit-reset-requests":     "120ms",
		"x-ratelimit-limit-tokens":       "150000",
		"x-ratelimit-remaining-tokens":   "148800",
		"x-ratelimit-reset-tokens":       "120ms",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers: %v", h)
	}
	for d, s := range map[time.Duration]string{
		6 * time.Minute: "6m0s", time.Second: "1s", 120 * time.Millisecond: "120ms",
		59500 * time.Millisecond: "59.5s", 1234567 * time.Microsecond: "1.235s", 0: "0s", -time.Second: "0s",
	} {
		if got := FormatReset(d); got != s {
			t.Errorf("FormatReset(%v) = %q, want %q", d, got, s)
		}
	}
}

// TestRateLimitExactAcrossGateways: 3 Limiters (gateways) on one counter,
// concurrent requests in one window: exactly the limit pass.
func TestRateLimitExactAcrossGateways(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T12:00:10Z")}
	shared := opaqueCounter{new(MemCounter)}
	rates := RateLimits{Key: KindRates{Default: Rate{RPM: 50, TPM: 10000}}}
	var passed, tokens atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		l := newLimiter(t, rates, shared, clock)
		for range 4 {
			wg.Go(func() {
				for i := range 40 {
					tk, _, ref, err := l.Take(bg, RateSubjects{Key: "k"}, int64(100+i))
					if err != nil {
						t.Error(err)
						return
					}
					if ref == nil {
						passed.Add(1)
						tokens.Add(int64(100 + i))
						_ = l.Settle(bg, tk, int64(100+i))
					}
				}
			})
		}
	}
	wg.Wait()
	vals := make([]int64, 2)
	_, _ = shared.Take(bg, []CounterOp{
		{Key: CounterKey{Subject{KindKey, "k"}, Requests, utc("2026-11-30T12:00:00Z").Unix()}, Limit: 1 << 62},
		{Key: CounterKey{Subject{KindKey, "k"}, Tokens, utc("2026-11-30T12:00:00Z").Unix()}, Limit: 1 << 62},
	}, vals)
	if passed.Load() > 50 || vals[0] != passed.Load() || vals[1] != tokens.Load() || vals[1] > 10000 {
		t.Errorf("passed %d (count %d), tokens %d (count %d)", passed.Load(), vals[0], tokens.Load(), vals[1])
	}
	if passed.Load() != 50 && tokens.Load()+140 <= 10000 {
		t.Errorf("only %d passed with %d tokens", passed.Load(), tokens.Load())
	}
}

func TestMemCounterForgets(t *testing.T) {
	var m MemCounter
	k := func(w int64) CounterKey { return CounterKey{Subject{KindKey, "k"}, Requests, w} }
	vals := make([]int64, 1)
	for _, w := range []int64{0, 60, 120, 180} {
		m.Take(bg, []CounterOp{{Key: k(w), N: 1, Limit: 10}}, vals)
	}
	if len(m.counts) != 2 {
		t.Errorf("%d counts kept, want 2 (this window and the previous)", len(m.counts))
	}
	_ = m.Add(bg, []CounterKey{k(0)}, 5) // forgotten window: ignored
	if len(m.counts) != 2 {
		t.Errorf("add to a forgotten window kept it")
	}
}
