package budget

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock tests set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestPeriodBounds(t *testing.T) {
	for _, tc := range []struct {
		p          Period
		at         string
		start, end string
	}{
		{Day, "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"},
		{Day, "2026-12-31T23:59:59.999999999Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{Day, "2026-06-15T12:00:00+09:00", "2026-06-15T00:00:00Z", "2026-06-16T00:00:00Z"}, // 03:00 UTC
		{Day, "2026-06-15T20:00:00-08:00", "2026-06-16T00:00:00Z", "2026-06-17T00:00:00Z"}, // 04:00 UTC next day
		{Week, "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},     // a Monday
		{Week, "2026-11-29T23:59:59Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},     // a Sunday
		{Week, "2027-01-01T10:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"},     // year end inside a week
		{Week, "2028-02-29T10:00:00Z", "2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z"},
		{Month, "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"}, // 31 days
		{Month, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}, // 28 days
		{Month, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"}, // 29 days
		{Month, "2026-04-30T12:00:00Z", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"}, // 30 days
		{Month, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"}, // year end
		{Month, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"},
	} {
		start, end := tc.p.Bounds(utc(tc.at))
		if !start.Equal(utc(tc.start)) || !end.Equal(utc(tc.end)) {
			t.Errorf("%s at %s: got [%s, %s), want [%s, %s)", tc.p, tc.at, start, end, tc.start, tc.end)
		}
		if tc.p == Week && start.Weekday() != time.Monday {
			t.Errorf("week at %s starts on %s", tc.at, start.Weekday())
		}
	}
	start, end := Total.Bounds(utc("2026-11-30T10:00:00Z"))
	if start.Unix() != 0 || !end.IsZero() {
		t.Errorf("total: got [%s, %s)", start, end)
	}
}

func TestToNanoAndWorstCase(t *testing.T) {
	for _, tc := range []struct {
		usd  float64
		want NanoUSD
	}{{0, 0}, {0.1, 100_000_000}, {1, 1_000_000_000}, {1e-9, 1}, {1.5e-9, 2}, {123.456789012, 123_456_789_012}} {
		if got, err := ToNano(tc.usd); err != nil || got != tc.want {
			t.Errorf("ToNano(%v) = %d, %v; want %d", tc.usd, got, err, tc.want)
		}
	}
	for _, bad := range []float64{-0.01, nan(), 1e300} {
		if _, err := ToNano(bad); err == nil {
			t.Errorf("ToNano(%v): no error", bad)
		}
	}
	// 1,000 input tokens at $2.50/M and 500 output at $10/M.
	if got := WorstCase(1000, 500, InputOutputPrice{Input: 2.5, Output: 10}); got < 0.0075-1e-12 || got > 0.0075+1e-12 {
		t.Errorf("WorstCase = %v, want 0.0075", got)
	}
	if got := WorstCase(-5, -1, InputOutputPrice{Input: 2.5, Output: 10}); got != 0 {
		t.Errorf("WorstCase(negative) = %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Budget{Name: "b", Kind: KindKey, Period: Day, LimitUSD: 1, Soft: 0.8}
	for _, tc := range []struct {
		mod  func(*Budget)
		want string
	}{
		{func(b *Budget) { b.Name = "" }, "empty name"},
		{func(b *Budget) { b.Kind = "org" }, `budget "b": kind "org"`},
		{func(b *Budget) { b.Period = "hour" }, `budget "b": period "hour"`},
		{func(b *Budget) { b.LimitUSD = 0 }, `budget "b": limit_usd 0`},
		{func(b *Budget) { b.LimitUSD = nan() }, `budget "b": limit_usd NaN`},
		{func(b *Budget) { b.Soft = 1 }, `budget "b": soft 1`},
	} {
		b := ok
		tc.mod(&b)
		cfg := Config{Budgets: []Budget{b}}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want it to contain %q", err, tc.want)
		}
	}
	cfg := Config{Budgets: []Budget{ok, ok}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `budget "b": duplicate name`) {
		t.Errorf("duplicate: %v", err)
	}
	cfg = Config{Budgets: []Budget{ok}, Rates: RateLimits{User: KindRates{Names: map[string]Rate{"al": {RPM: -1}}}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `rate_limits user "al": negative limit`) {
		t.Errorf("negative rate: %v", err)
	}
	cfg.Rates = RateLimits{Key: KindRates{Default: Rate{RPM: 60, TPM: 1000}}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestAllowed(t *testing.T) {
	now := utc("2026-11-30T12:00:00Z")
	k := &Key{Name: "ci", User: "alice", Team: "ml", Models: []string{"gpt-4o*", "claude-3-5-*"}, Expires: now.Add(time.Hour)}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key   *Key
		model string
		at    time.Time
		want  error
	}{
		{k, "gpt-4o-mini", now, nil},
		{k, "claude-3-5-sonnet", now, nil},
		{k, "gpt-5", now, ErrModelNotAllowed},
		{k, "gpt-4o", now.Add(time.Hour), ErrExpired},
		{&Key{Name: "x", Revoked: true}, "gpt-4o", now, ErrRevoked},
		{&Key{Name: "x", Revoked: true, Expires: now.Add(-time.Hour)}, "gpt-4o", now, ErrRevoked},
		{nil, "gpt-4o", now, ErrRevoked},
		{&Key{Name: "any"}, "whatever", now, nil},
	} {
		err := Allowed(tc.key, tc.model, tc.at)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Allowed(%v, %q) = %v, want %v", tc.key, tc.model, err, tc.want)
		}
	}
	if err := Allowed(k, "gpt-5", now); err.Error() != `key "ci": model "gpt-5": model not allowed for this key` {
		t.Errorf("message: %v", err)
	}
	if err := (&Key{Name: "bad", Models: []string{"[x"}}).Validate(); err == nil {
		t.Error("bad glob accepted")
	}
	if s := k.Subjects(); s != (Subjects{Key: "ci", User: "alice", Team: "ml"}) {
		t.Errorf("Subjects = %+v", s)
	}
}
