package budget

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func nan() float64 { return math.NaN() }

var bg = context.Background()

func newEnforcer(t testing.TB, clock Clock, led Ledger, budgets ...Budget) *Enforcer {
	t.Helper()
	e, err := New(budgets, Options{Clock: clock, Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustReserve(t *testing.T, e *Enforcer, s Subjects, usd float64) *Reservation {
	t.Helper()
	r, ref, err := e.Reserve(bg, s, usd)
	if err != nil || ref != nil {
		t.Fatalf("Reserve(%+v, %v): %v, %v", s, usd, ref, err)
	}
	return r
}

func mustRefuse(t *testing.T, e *Enforcer, s Subjects, usd float64) *Refusal {
	t.Helper()
	r, ref, err := e.Reserve(bg, s, usd)
	if err != nil || ref == nil || r != nil {
		t.Fatalf("Reserve(%+v, %v) passed: %v", s, usd, err)
	}
	return ref
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestReserveSettleRefusal(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T15:04:05Z")}
	e := newEnforcer(t, clock, nil, Budget{Name: "key-daily", Kind: KindKey, Period: Day, LimitUSD: 1})
	k1 := Subjects{Key: "k1", User: "alice"}

	r1 := mustReserve(t, e, k1, 0.6)
	if r1.Cost() != 0.6 {
		t.Errorf("Cost = %v", r1.Cost())
	}
	ref := mustRefuse(t, e, k1, 0.5)
	want := Refusal{Budget: "key-daily", Subject: Subject{KindKey, "k1"}, Period: Day, Limit: 1, Spent: 0.6, Cost: 0.5, ResetsAt: utc("2026-12-01T00:00:00Z")}
	if *ref != want {
		t.Errorf("refusal:\n got %+v\nwant %+v", *ref, want)
	}
	if msg := ref.Error(); !strings.Contains(msg, `budget "key-daily" of key "k1" exceeded: $0.600000 of $1.000000 day budget`) || !strings.Contains(msg, "resets at 2026-12-01T00:00:00Z") {
		t.Errorf("message: %s", msg)
	}
	if got := ref.RetryAfter(clock.Now()); got != 8*time.Hour+55*time.Minute+55*time.Second || ref.RetryAfter(clock.Now().Add(-time.Millisecond)) != 8*time.Hour+55*time.Minute+56*time.Second {
		t.Errorf("RetryAfter = %v", got)
	}
	// Another key has its own spend; a call with no key is not limited.
	mustReserve(t, e, Subjects{Key: "k2"}, 0.9)
	mustReserve(t, e, Subjects{User: "alice"}, 5)

	e.Settle(r1, 0.3) // actual below the worst case frees the rest
	e.Settle(r1, 0.9) // again: no effect
	r2 := mustReserve(t, e, k1, 0.7)
	ref = mustRefuse(t, e, k1, 0.01)
	if !near(ref.Spent, 1.0) {
		t.Errorf("Spent = %v, want 1 (0.3 settled + 0.7 reserved)", ref.Spent)
	}
	e.Release(r2)
	e.Release(r2)
	r3 := mustReserve(t, e, k1, 0.7)
	e.Settle(r3, UnknownCost) // unknown: the worst case stays
	ref = mustRefuse(t, e, k1, 0.01)
	if !near(ref.Spent, 1.0) {
		t.Errorf("Spent = %v after unknown cost, want 1", ref.Spent)
	}
	if err := e.Sync(bg); err != nil {
		t.Fatal(err)
	}
	tot, _ := e.ledger.Totals(bg, LedgerKey{"key-daily", "k1", utc("2026-11-30T00:00:00Z").Unix()})
	if tot.Spent != 1_000_000_000 {
		t.Errorf("ledger spent = %d, want 1e9", tot.Spent)
	}
	if _, _, err := e.Reserve(bg, k1, -1); err == nil {
		t.Error("negative worst case accepted")
	}
	e.Settle(nil, 1)
	e.Release(nil)
}

func TestAllBudgetsOrNone(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T15:00:00Z")}
	e := newEnforcer(t, clock, nil,
		Budget{Name: "key", Kind: KindKey, Period: Month, LimitUSD: 10},
		Budget{Name: "ml", Kind: KindTeam, Subject: "ml", Period: Week, LimitUSD: 1},
		Budget{Name: "exp", Kind: KindExperiment, Period: Total, LimitUSD: 3},
	)
	s := Subjects{Key: "k", Team: "ml", Experiment: "x"}
	mustReserve(t, e, s, 0.8)
	ref := mustRefuse(t, e, s, 0.5)
	if ref.Budget != "ml" || ref.Subject != (Subject{KindTeam, "ml"}) || !ref.ResetsAt.Equal(utc("2026-12-07T00:00:00Z")) {
		t.Errorf("refusal = %+v", ref)
	}
	// The refused call reserved nothing in "key" nor "exp": 0.8 + 2.2 fits exp's 3.
	mustReserve(t, e, Subjects{Key: "k", Experiment: "x"}, 2.2)
	ref = mustRefuse(t, e, Subjects{Experiment: "x"}, 0.01)
	if ref.Budget != "exp" || !ref.ResetsAt.IsZero() || ref.RetryAfter(clock.Now()) != 0 || !strings.Contains(ref.Error(), "never resets") {
		t.Errorf("total refusal = %+v", ref)
	}
	// Team "other" has no budget; its key still does.
	mustReserve(t, e, Subjects{Key: "k2", Team: "other"}, 9)
}

// TestRollover spends each budget's whole limit just before its period
// ends, is refused, and gets the whole limit again at the boundary.
func TestRollover(t *testing.T) {
	for _, tc := range []struct {
		p        Period
		boundary string
	}{
		{Day, "2026-12-01T00:00:00Z"},
		{Day, "2027-01-01T00:00:00Z"},
		{Week, "2026-12-07T00:00:00Z"},
		{Week, "2027-01-04T00:00:00Z"},
		{Month, "2026-02-01T00:00:00Z"}, // after January's 31 days
		{Month, "2026-03-01T00:00:00Z"}, // after 28 days
		{Month, "2028-03-01T00:00:00Z"}, // after 29 days
		{Month, "2026-05-01T00:00:00Z"}, // after 30 days
		{Month, "2027-01-01T00:00:00Z"}, // year end
	} {
		b := utc(tc.boundary)
		clock := &fakeClock{t: b.Add(-time.Nanosecond)}
		led := new(MemLedger)
		e := newEnforcer(t, clock, led, Budget{Name: "u", Kind: KindUser, Period: tc.p, LimitUSD: 2})
		s := Subjects{User: "al"}
		mustReserve(t, e, s, 1.5)
		inflight := mustReserve(t, e, s, 0.5) // made in the old period
		ref := mustRefuse(t, e, s, 0.1)
		if !ref.ResetsAt.Equal(b) {
			t.Errorf("%s %s: ResetsAt %s", tc.p, tc.boundary, ref.ResetsAt)
		}
		clock.Set(b)
		mustReserve(t, e, s, 1.9) // the new period starts from 0
		e.Settle(inflight, 0.4)   // settles into the old period
		mustReserve(t, e, s, 0.1)
		mustRefuse(t, e, s, 0.01)
		if err := e.Sync(bg); err != nil {
			t.Fatal(err)
		}
		oldStart, _ := tc.p.Bounds(b.Add(-time.Nanosecond))
		tot, _ := led.Totals(bg, LedgerKey{"u", "al", oldStart.Unix()})
		if tot.Spent != 400_000_000 {
			t.Errorf("%s %s: old period spent %d, want 0.4 USD", tc.p, tc.boundary, tot.Spent)
		}
		tot, _ = led.Totals(bg, LedgerKey{"u", "al", b.Unix()})
		if tot.Spent != 0 {
			t.Errorf("%s %s: new period spent %d", tc.p, tc.boundary, tot.Spent)
		}
	}
}

func TestSoftAlertOnce(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T10:00:00Z")}
	led := new(MemLedger)
	var alerts []Alert
	var mu sync.Mutex
	budgets := []Budget{{Name: "team", Kind: KindTeam, Period: Day, LimitUSD: 1, Soft: 0.8}}
	var es []*Enforcer
	for range 2 { // two gateways: still one alert
		e, err := New(budgets, Options{Clock: clock, Ledger: led, OnSoft: func(a Alert) {
			mu.Lock()
			alerts = append(alerts, a)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	s := Subjects{Team: "ml"}
	spend := func(e *Enforcer, usd float64) {
		e.Settle(mustReserve(t, e, s, usd), usd)
		for _, e := range es {
			if err := e.Sync(bg); err != nil {
				t.Fatal(err)
			}
		}
	}
	spend(es[0], 0.5)
	spend(es[1], 0.2)
	if len(alerts) != 0 {
		t.Fatalf("alert at 0.7: %+v", alerts)
	}
	spend(es[0], 0.15) // 0.85 crosses 0.8
	spend(es[1], 0.1)
	spend(es[0], 0.03) // (es[1] holds an idle lease of 0.02 until its next Sync)
	if len(alerts) != 1 {
		t.Fatalf("alerts = %+v, want one", alerts)
	}
	want := Alert{Budget: "team", Subject: Subject{KindTeam, "ml"}, Period: Day, PeriodStart: utc("2026-11-30T00:00:00Z"), Soft: 0.8, LimitUSD: 1, SpentUSD: 0.85}
	if alerts[0] != want {
		t.Errorf("alert:\n got %+v\nwant %+v", alerts[0], want)
	}
	clock.Set(utc("2026-12-01T00:00:00Z")) // next period: once again
	spend(es[1], 0.9)
	if len(alerts) != 2 || !alerts[1].PeriodStart.Equal(utc("2026-12-01T00:00:00Z")) {
		t.Errorf("alerts = %+v", alerts)
	}
}

func TestConcurrentReserveSettle(t *testing.T) {
	e := newEnforcer(t, &fakeClock{t: utc("2026-11-30T10:00:00Z")}, nil,
		Budget{Name: "k", Kind: KindKey, Period: Day, LimitUSD: 5},
		Budget{Name: "u", Kind: KindUser, Period: Month, LimitUSD: 100})
	var settled atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = e.Sync(bg)
			}
		}
	}()
	for g := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				s := Subjects{Key: []string{"a", "b"}[rng.IntN(2)], User: "u"}
				w := rng.Float64() * 0.01
				r, ref, err := e.Reserve(bg, s, w)
				if err != nil {
					t.Error(err)
					return
				}
				if ref != nil {
					continue
				}
				if rng.IntN(10) == 0 {
					e.Release(r)
					continue
				}
				a := w * rng.Float64()
				n, _ := ToNano(a)
				settled.Add(int64(n))
				e.Settle(r, a)
			}
		})
	}
	wg.Wait()
	close(stop)
	for range 2 {
		if err := e.Sync(bg); err != nil {
			t.Fatal(err)
		}
	}
	var spent NanoUSD
	for _, k := range []string{"a", "b"} {
		tot, _ := e.ledger.Totals(bg, LedgerKey{"k", k, utc("2026-11-30T00:00:00Z").Unix()})
		if tot.Spent > 5e9 || tot.Held != 0 {
			t.Errorf("key %s: %+v", k, tot)
		}
		spent += tot.Spent
	}
	u, _ := e.ledger.Totals(bg, LedgerKey{"u", "u", utc("2026-11-01T00:00:00Z").Unix()})
	if int64(spent) != settled.Load() || int64(u.Spent) != settled.Load() {
		t.Errorf("ledger keys %d, user %d, settled %d", spent, u.Spent, settled.Load())
	}
}

// TestOvershoot runs 3 Enforcers (3 gateways) on one ledger with
// concurrent calls of random worst cases and actual costs, some above
// their worst case, and checks the package doc's bound: total settled
// spend ≤ limit + Σ max(0, actual − worst case).
func TestOvershoot(t *testing.T) {
	for _, excessShare := range []int{0, 10} { // % of calls costing more than reserved
		led := new(MemLedger)
		base := time.Now()
		clock := clockFunc(func() time.Time { return utc("2026-11-30T10:00:00Z").Add(time.Since(base)) })
		const limit = 5.0
		budgets := []Budget{{Name: "b", Kind: KindKey, Period: Day, LimitUSD: limit}}
		var (
			settled, excess atomic.Int64
			calls, refused  atomic.Int64
			wg              sync.WaitGroup
		)
		ctx, cancel := context.WithCancel(bg)
		var runs sync.WaitGroup
		var es []*Enforcer
		for g := range 3 {
			e, err := New(budgets, Options{Clock: clock, Ledger: led, Holder: string(rune('A' + g)), SyncInterval: time.Millisecond,
				OnError: func(err error) { t.Error(err) }})
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
			runs.Go(func() { e.Run(ctx) })
			for w := range 6 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), uint64(w)))
					for range 3000 {
						worst := 0.0005 + rng.Float64()*0.01
						r, ref, err := e.Reserve(bg, Subjects{Key: "shared"}, worst)
						if err != nil {
							t.Error(err)
							return
						}
						if ref != nil {
							refused.Add(1)
							if ref.Spent+ref.Cost <= ref.Limit {
								t.Errorf("refused within the limit: %+v", ref)
							}
							continue
						}
						calls.Add(1)
						wn, _ := ToNano(worst)
						switch x := rng.IntN(100); {
						case x < 5:
							e.Release(r)
						case x < 10:
							e.Settle(r, UnknownCost)
							settled.Add(int64(wn))
						default:
							a := worst * rng.Float64()
							if x < 10+excessShare {
								a = worst * (1 + rng.Float64())
							}
							an, _ := ToNano(a)
							settled.Add(int64(an))
							excess.Add(int64(max(an-wn, 0)))
							e.Settle(r, a)
						}
					}
				})
			}
		}
		wg.Wait()
		cancel()
		runs.Wait() // Run syncs once more on the way out
		for _, e := range es {
			if err := e.Sync(bg); err != nil { // returns the idle allowance
				t.Fatal(err)
			}
		}
		tot, _ := led.Totals(bg, LedgerKey{"b", "shared", utc("2026-11-30T00:00:00Z").Unix()})
		limitN, _ := ToNano(limit)
		bound := limitN + NanoUSD(excess.Load())
		t.Logf("excess %d%%: %d calls, %d refused, spent %.6f of %.2f, bound %.6f, held %d",
			excessShare, calls.Load(), refused.Load(), tot.Spent.USD(), limit, bound.USD(), tot.Held)
		if int64(tot.Spent) != settled.Load() {
			t.Errorf("ledger spent %d, settled %d", tot.Spent, settled.Load())
		}
		if tot.Spent > bound {
			t.Errorf("spent %d > bound %d", tot.Spent, bound)
		}
		if tot.Held != 0 {
			t.Errorf("held %d after the last sync", tot.Held)
		}
		if refused.Load() == 0 || tot.Spent < limitN*9/10 {
			t.Errorf("the budget was not used up: spent %d, %d refused", tot.Spent, refused.Load())
		}
	}
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// failLedger fails every call.
type failLedger struct{ MemLedger }

var errDown = errors.New("store down")

func (*failLedger) Acquire(context.Context, string, LedgerKey, NanoUSD, NanoUSD, NanoUSD) (NanoUSD, Totals, error) {
	return 0, Totals{}, errDown
}

func (*failLedger) Commit(context.Context, string, LedgerKey, NanoUSD, NanoUSD) (Totals, error) {
	return Totals{}, errDown
}

func TestLedgerErrors(t *testing.T) {
	e := newEnforcer(t, &fakeClock{t: utc("2026-11-30T10:00:00Z")}, &failLedger{}, Budget{Name: "b", Kind: KindKey, Period: Day, LimitUSD: 1})
	_, _, err := e.Reserve(bg, Subjects{Key: "k"}, 0.1)
	if !errors.Is(err, errDown) || !strings.Contains(err.Error(), `budget "b": acquire: store down`) {
		t.Errorf("Reserve error = %v", err)
	}

	// A commit that fails keeps the spend for the next Sync.
	led := &flakyLedger{}
	e = newEnforcer(t, &fakeClock{t: utc("2026-11-30T10:00:00Z")}, led, Budget{Name: "b", Kind: KindKey, Period: Day, LimitUSD: 1})
	e.Settle(mustReserve(t, e, Subjects{Key: "k"}, 0.1), 0.05)
	led.fail.Store(true)
	if err := e.Sync(bg); !errors.Is(err, errDown) {
		t.Errorf("Sync error = %v", err)
	}
	led.fail.Store(false)
	if err := e.Sync(bg); err != nil {
		t.Fatal(err)
	}
	tot, _ := led.Totals(bg, LedgerKey{"b", "k", utc("2026-11-30T00:00:00Z").Unix()})
	if tot.Spent != 50_000_000 {
		t.Errorf("spent %d after a failed and a good commit", tot.Spent)
	}
}

type flakyLedger struct {
	MemLedger
	fail atomic.Bool
}

func (l *flakyLedger) Commit(ctx context.Context, h string, k LedgerKey, s, r NanoUSD) (Totals, error) {
	if l.fail.Load() {
		return Totals{}, errDown
	}
	return l.MemLedger.Commit(ctx, h, k, s, r)
}

// countingLedger counts Acquire calls.
type countingLedger struct {
	MemLedger
	acquires atomic.Int64
}

func (l *countingLedger) Acquire(ctx context.Context, h string, k LedgerKey, need, want, limit NanoUSD) (NanoUSD, Totals, error) {
	l.acquires.Add(1)
	return l.MemLedger.Acquire(ctx, h, k, need, want, limit)
}

// TestRefusalCached: a refused subject is refused again from the local view
// for one sync interval, without a ledger round trip; warm calls make none.
func TestRefusalCached(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T10:00:00Z")}
	led := &countingLedger{}
	e, err := New([]Budget{{Name: "b", Kind: KindKey, Period: Day, LimitUSD: 1}}, Options{Clock: clock, Ledger: led, LeaseShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	s := Subjects{Key: "k"}
	for range 5 { // 0.1 + a lease of 0.5 covers five calls of 0.1
		e.Settle(mustReserve(t, e, s, 0.1), 0.1)
	}
	if n := led.acquires.Load(); n != 1 {
		t.Errorf("%d acquisitions for 5 warm calls, want 1", n)
	}
	mustReserve(t, e, s, 0.5)
	n := led.acquires.Load()
	for range 10 {
		mustRefuse(t, e, s, 0.2)
	}
	if got := led.acquires.Load(); got != n {
		t.Errorf("%d acquisitions for 10 refusals within the interval, want 0", got-n)
	}
	clock.Set(clock.Now().Add(DefaultSyncInterval))
	mustRefuse(t, e, s, 0.2)
	if got := led.acquires.Load(); got != n+1 {
		t.Errorf("%d acquisitions after the interval, want 1", got-n)
	}
}

// TestDroppedAccount: a Reserve holding an ended period's account that
// Sync drained and forgot meanwhile reserves in the current one.
func TestDroppedAccount(t *testing.T) {
	clock := &fakeClock{t: utc("2026-11-30T23:59:59Z")}
	e := newEnforcer(t, clock, nil, Budget{Name: "b", Kind: KindKey, Period: Day, LimitUSD: 1})
	s := Subjects{Key: "k"}
	e.Settle(mustReserve(t, e, s, 0.5), 0.5)
	rl := e.rules[0].all[0]
	before := clock.Now()
	a0 := e.account(rl, "k", before, before.UnixNano())
	clock.Set(utc("2026-12-01T00:00:00Z"))
	mustReserve(t, e, s, 0.1) // moves a0 to the ended ones
	for range 2 {
		if err := e.Sync(bg); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.old) != 0 || !a0.dropped {
		t.Fatalf("old %d, dropped %v", len(e.old), a0.dropped)
	}
	if _, err := e.reserveOne(bg, a0, 1, before.UnixNano()); err != errDropped {
		t.Fatalf("reserveOne on a dropped account: %v", err)
	}
	r := &Reservation{cost: 100_000_000}
	if ref, err := e.reserveIn(bg, r, rl, "k", before, before.UnixNano()); ref != nil || err != nil || len(r.accs) != 1 || r.accs[0] == a0 {
		t.Fatalf("reserveIn: %v %v %v", ref, err, r.accs)
	}
}
