package budget

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// benchBudgets are up to 3 budgets that apply to benchSubjects, large
// enough never to refuse.
var benchBudgets = []Budget{
	{Name: "key-daily", Kind: KindKey, Period: Day, LimitUSD: 1e6, Soft: 0.8},
	{Name: "team-monthly", Kind: KindTeam, Period: Month, LimitUSD: 1e6},
	{Name: "user-weekly", Kind: KindUser, Period: Week, LimitUSD: 1e6},
}

var benchSubjects = Subjects{Key: "ci-key", User: "alice", Team: "ml", Experiment: "exp-1"}

// warmEnforcer returns an Enforcer of n budgets with its Run loop going
// and benchSubjects warm.
func warmEnforcer(b *testing.B, n int) *Enforcer {
	e, err := New(benchBudgets[:n], Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go e.Run(ctx)
	r, ref, err := e.Reserve(ctx, benchSubjects, 0.01)
	if err != nil || ref != nil {
		b.Fatal(ref, err)
	}
	e.Settle(r, 0.005)
	return e
}

// BenchmarkReserveSettle is the budget check of one call on a warm key:
// Reserve then Settle, with 1 and 3 budgets applying, alone and from
// parallel goroutines.
func BenchmarkReserveSettle(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("budgets=%d", n), func(b *testing.B) {
			e := warmEnforcer(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r, ref, err := e.Reserve(ctx, benchSubjects, 0.0042)
				if err != nil || ref != nil {
					b.Fatal(ref, err)
				}
				e.Settle(r, 0.0021)
			}
		})
		b.Run(fmt.Sprintf("budgets=%d/parallel", n), func(b *testing.B) {
			e := warmEnforcer(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, ref, err := e.Reserve(ctx, benchSubjects, 0.0042)
					if err != nil || ref != nil {
						b.Fatal(ref, err)
					}
					e.Settle(r, 0.0021)
				}
			})
		})
	}
}

var benchRates = RateLimits{
	Key:   KindRates{Default: Rate{RPM: 1 << 40, TPM: 1 << 50}},
	User:  KindRates{Default: Rate{RPM: 1 << 40, TPM: 1 << 50}},
	Model: KindRates{Default: Rate{RPM: 1 << 40, TPM: 1 << 50}},
}

// BenchmarkRateLimit is the rate check of one call: Take (requests and
// tokens of key, user and model: 6 counts) then Settle with the actual
// tokens, on the in-memory counter.
func BenchmarkRateLimit(b *testing.B) {
	l, err := NewLimiter(benchRates, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s := RateSubjects{Key: "ci-key", User: "alice", Model: "gpt-4o-mini"}
	b.ReportAllocs()
	for b.Loop() {
		t, _, ref, err := l.Take(ctx, s, 1500)
		if err != nil || ref != nil {
			b.Fatal(ref, err)
		}
		if err := l.Settle(ctx, t, 1200); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck is the whole check the gateway adds to a call on a warm
// key: Allowed, Take, WorstCase, Reserve, and both Settles. It reports the
// p50 and p99 of single checks (each timed, so ns/op includes the timer).
func BenchmarkCheck(b *testing.B) {
	e := warmEnforcer(b, 3)
	l, err := NewLimiter(benchRates, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	key := &Key{Name: "ci-key", User: "alice", Team: "ml", Models: []string{"gpt-4o*", "claude-*"}}
	price := InputOutputPrice{Input: 0.15, Output: 0.6}
	ctx := context.Background()
	rs := RateSubjects{Key: key.Name, User: key.User, Model: "gpt-4o-mini"}
	durs := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := Allowed(key, "gpt-4o-mini", t0); err != nil {
			b.Fatal(err)
		}
		t, _, rref, err := l.Take(ctx, rs, 1500)
		if err != nil || rref != nil {
			b.Fatal(rref, err)
		}
		s := key.Subjects()
		s.Experiment = "exp-1"
		r, ref, err := e.Reserve(ctx, s, WorstCase(1000, 500, price))
		if err != nil || ref != nil {
			b.Fatal(ref, err)
		}
		e.Settle(r, 0.0004)
		_ = l.Settle(ctx, t, 1200)
		if len(durs) < cap(durs) {
			durs = append(durs, time.Since(t0))
		}
	}
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
	}
}
