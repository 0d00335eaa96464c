package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope/budget"
)

// LedgerStore is what RunLedger tests: the budget.Ledger and
// budget.Counter of a store, with their housekeeping, that closes.
type LedgerStore interface {
	budget.Ledger
	budget.Counter
	budget.HolderExpirer
	budget.CounterPruner
	Close() error
}

// RunLedger runs the contracts of budget.Ledger and budget.Counter as
// subtests of t: the same random sequences give exactly MemLedger's and
// MemCounter's results; concurrent Acquires from several stores on one
// database (several gateways) never grant past the limit and grant it
// all; concurrent Takes count exactly to the request (3 stores × 50
// goroutines against 100 requests per minute take exactly 100), all or
// nothing across a Take's counts; ExpireHolders gives back exactly the
// shares of silent holders; PruneCounters deletes exactly the old windows.
//
// newDB is as RunKeys'.
func RunLedger(t *testing.T, newDB func(t *testing.T) func() LedgerStore) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, open func() LedgerStore)
	}{
		{"LedgerAsMem", testLedgerAsMem},
		{"LedgerAcquireRace", testLedgerAcquireRace},
		{"LedgerCommitRace", testLedgerCommitRace},
		{"LedgerExpireHolders", testLedgerExpireHolders},
		{"LedgerEnforcers", testLedgerEnforcers},
		{"CounterAsMem", testCounterAsMem},
		{"CounterExact", testCounterExact},
		{"CounterAllOrNothing", testCounterAllOrNothing},
		{"CounterPrune", testCounterPrune},
		{"LimiterGateways", testLimiterGateways},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDB(t)) })
	}
}

// testLedgerAsMem runs one random sequence of Acquire, Commit and Totals
// on MemLedger and on the store, and compares every result.
func testLedgerAsMem(t *testing.T, open func() LedgerStore) {
	stores, mem := ledgerStores(open, 2), new(budget.MemLedger) // two gateways, one database
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(20, 26))
	keys := []budget.LedgerKey{
		{Budget: "daily", Subject: "alice", Start: 1767225600},
		{Budget: "daily", Subject: "alice", Start: 1767312000},
		{Budget: "daily", Subject: "bob", Start: 1767225600},
		{Budget: "total", Subject: "ml", Start: 0},
		{Budget: "monthly", Subject: "é \"q\" ", Start: 1764547200},
	}
	holders := []string{"gw-1", "gw-2", "gw-3"}
	const limit = 1000
	for i := range 1500 {
		s := stores[rng.IntN(len(stores))]
		key, holder := keys[rng.IntN(len(keys))], holders[rng.IntN(len(holders))]
		switch op := rng.IntN(10); {
		case op < 5:
			need := budget.NanoUSD(rng.IntN(60))
			want := need + budget.NanoUSD(rng.IntN(100))
			lim := budget.NanoUSD(limit)
			if rng.IntN(20) == 0 {
				lim = budget.NanoUSD(rng.IntN(limit)) // a lower limit than before
			}
			g, tot, err := s.Acquire(ctx, holder, key, need, want, lim)
			if err != nil {
				t.Fatalf("step %d: Acquire: %v", i, err)
			}
			mg, mtot, _ := mem.Acquire(ctx, holder, key, need, want, lim)
			if g != mg || tot != mtot {
				t.Fatalf("step %d: Acquire(%s, %v, need %d, want %d, limit %d) = %d, %+v; MemLedger: %d, %+v",
					i, holder, key, need, want, lim, g, tot, mg, mtot)
			}
		case op < 9:
			spent, release := budget.NanoUSD(rng.IntN(80)), budget.NanoUSD(rng.IntN(150))
			if rng.IntN(4) == 0 {
				spent = 0
			}
			tot, err := s.Commit(ctx, holder, key, spent, release)
			if err != nil {
				t.Fatalf("step %d: Commit: %v", i, err)
			}
			if mtot, _ := mem.Commit(ctx, holder, key, spent, release); tot != mtot {
				t.Fatalf("step %d: Commit(%s, %v, spent %d, release %d) = %+v; MemLedger: %+v", i, holder, key, spent, release, tot, mtot)
			}
		default:
			tot, err := s.Totals(ctx, key)
			if err != nil {
				t.Fatalf("step %d: Totals: %v", i, err)
			}
			if mtot, _ := mem.Totals(ctx, key); tot != mtot {
				t.Fatalf("step %d: Totals(%v) = %+v; MemLedger: %+v", i, key, tot, mtot)
			}
		}
	}
	// Each holder gives back everything: Held returns to 0 on both.
	s := stores[0]
	for _, key := range keys {
		for _, h := range holders {
			tot, err := s.Commit(ctx, h, key, 0, 1<<40)
			if err != nil {
				t.Fatal(err)
			}
			if mtot, _ := mem.Commit(ctx, h, key, 0, 1<<40); tot != mtot {
				t.Fatalf("final release of %s on %v = %+v; MemLedger: %+v", h, key, tot, mtot)
			}
		}
		if tot, _ := s.Totals(ctx, key); tot.Held != 0 {
			t.Errorf("%v: Held %d after every holder released all", key, tot.Held)
		}
	}
	if tot, _ := s.Totals(ctx, budget.LedgerKey{Budget: "never", Subject: "x"}); tot != (budget.Totals{}) {
		t.Errorf("Totals of a key never used = %+v", tot)
	}
}

// ledgerStores opens n stores on one database.
func ledgerStores[S any](open func() S, n int) []S {
	s := make([]S, n)
	for i := range s {
		s[i] = open()
	}
	return s
}

// testLedgerAcquireRace: 3 stores × 20 goroutines, each its own holder,
// acquire (need 1, want 7) until refused: together they are granted the
// limit exactly, never more, and Held says so.
func testLedgerAcquireRace(t *testing.T, open func() LedgerStore) {
	stores := ledgerStores(open, 3)
	key := budget.LedgerKey{Budget: "b", Subject: "team", Start: 1767225600}
	const limit = 1000
	var (
		granted atomic.Int64
		wg      sync.WaitGroup
	)
	shares := make([]int64, 60)
	for i := range shares {
		wg.Go(func() {
			s, holder := stores[i%3], fmt.Sprintf("gw-%d", i)
			for {
				g, tot, err := s.Acquire(t.Context(), holder, key, 1, 7, limit)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				if tot.Spent+tot.Held > limit {
					t.Errorf("Acquire returned totals %+v over the limit %d", tot, limit)
				}
				if g == 0 {
					return
				}
				granted.Add(int64(g))
				shares[i] += int64(g)
			}
		})
	}
	wg.Wait()
	if g := granted.Load(); g != limit {
		t.Errorf("granted %d in all, want exactly the limit %d", g, limit)
	}
	tot, err := stores[1].Totals(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if tot != (budget.Totals{Held: limit}) {
		t.Errorf("Totals = %+v, want Held %d", tot, limit)
	}
	// Each holder releases its share, and no more.
	for i, sh := range shares {
		if _, err := stores[i%3].Commit(t.Context(), fmt.Sprintf("gw-%d", i), key, 0, budget.NanoUSD(sh+5)); err != nil {
			t.Fatal(err)
		}
	}
	if tot, _ := stores[0].Totals(t.Context(), key); tot != (budget.Totals{}) {
		t.Errorf("after every holder released its share: Totals = %+v, want zero", tot)
	}
}

// testLedgerCommitRace: holders on 3 stores acquire, spend part of it and
// release, concurrently: Spent is the sum of what they committed, Held
// returns to 0, and Spent + Held never exceeds the limit.
func testLedgerCommitRace(t *testing.T, open func() LedgerStore) {
	stores := ledgerStores(open, 3)
	key := budget.LedgerKey{Budget: "b", Subject: "k", Start: 0}
	const limit = 5000
	var (
		spent atomic.Int64
		wg    sync.WaitGroup
	)
	for i := range 24 {
		wg.Go(func() {
			s, holder := stores[i%3], fmt.Sprintf("gw-%d", i%6) // two goroutines per holder
			for range 25 {
				g, _, err := s.Acquire(t.Context(), holder, key, 2, 20, limit)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				p := g / 2
				tot, err := s.Commit(t.Context(), holder, key, p, g)
				if err != nil {
					t.Errorf("Commit: %v", err)
					return
				}
				spent.Add(int64(p))
				if tot.Spent+tot.Held > limit {
					t.Errorf("Commit returned totals %+v over the limit %d", tot, limit)
				}
			}
		})
	}
	wg.Wait()
	tot, err := stores[2].Totals(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if want := (budget.Totals{Spent: budget.NanoUSD(spent.Load())}); tot != want {
		t.Errorf("Totals = %+v, want %+v", tot, want)
	}
}

// testLedgerExpireHolders: the shares of a holder silent for idle are
// given back; those of a holder seen since stay.
func testLedgerExpireHolders(t *testing.T, open func() LedgerStore) {
	s, other := open(), open()
	ctx := t.Context()
	k1 := budget.LedgerKey{Budget: "b", Subject: "x", Start: 0}
	k2 := budget.LedgerKey{Budget: "b", Subject: "y", Start: 0}
	mustAcquire := func(s LedgerStore, holder string, key budget.LedgerKey, want budget.NanoUSD) {
		t.Helper()
		if g, _, err := s.Acquire(ctx, holder, key, want, want, 1000); err != nil || g != want {
			t.Fatalf("Acquire(%s, %v, %d) = %d, %v", holder, key, want, g, err)
		}
	}
	mustAcquire(s, "dead", k1, 100)
	mustAcquire(other, "dead", k2, 30)
	mustAcquire(s, "busy", k1, 50)
	mustAcquire(s, "busy", k2, 1)
	time.Sleep(600 * time.Millisecond)
	mustAcquire(other, "busy", k1, 10) // busy is seen again, on k1 only
	if n, err := other.ExpireHolders(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("ExpireHolders(1h) = %d, %v; want 0", n, err)
	}
	n, err := other.ExpireHolders(ctx, 300*time.Millisecond)
	if err != nil || n != 2 {
		t.Errorf("ExpireHolders(300ms) = %d, %v; want the 2 shares of the silent holder", n, err)
	}
	for key, want := range map[budget.LedgerKey]budget.Totals{k1: {Held: 60}, k2: {Held: 1}} {
		if tot, err := s.Totals(ctx, key); err != nil || tot != want {
			t.Errorf("%v after expiry: Totals = %+v, %v; want %+v", key, tot, err, want)
		}
	}
	// The expired holder comes back: its share is 0, so it releases
	// nothing, but its spend counts.
	if tot, err := s.Commit(ctx, "dead", k1, 40, 100); err != nil || tot != (budget.Totals{Spent: 40, Held: 60}) {
		t.Errorf("Commit of an expired holder = %+v, %v; want Spent 40, Held 60", tot, err)
	}
	if tot, err := s.Commit(ctx, "busy", k1, 0, 1000); err != nil || tot != (budget.Totals{Spent: 40}) {
		t.Errorf("Commit of busy's share = %+v, %v; want Spent 40, Held 0", tot, err)
	}
}

// fixedClock reads the wall clock's progress from a fixed start, so that
// a test never straddles a period boundary.
type fixedClock struct{ start, base time.Time }

func (c fixedClock) Now() time.Time { return c.start.Add(time.Since(c.base)) }

// testLedgerEnforcers: 3 gateways (Enforcers, each on its own store of
// one database) spend a budget of 5 cents with concurrent calls whose
// cost never exceeds their worst case: the spend the ledger records is
// exactly what was settled, never more than the budget, the budget is
// used up, every refusal was right to refuse, and no allowance stays
// held after the last sync.
func testLedgerEnforcers(t *testing.T, open func() LedgerStore) {
	clock := fixedClock{start: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), base: time.Now()}
	const limit = 0.05
	budgets := []budget.Budget{{Name: "cents", Kind: budget.KindTeam, Period: budget.Day, LimitUSD: limit}}
	var (
		settled, calls, refused atomic.Int64
		wg                      sync.WaitGroup
	)
	ens := make([]*budget.Enforcer, 3)
	stores := ledgerStores(open, 3)
	for g := range ens {
		e, err := budget.New(budgets, budget.Options{Clock: clock, Ledger: stores[g], Holder: fmt.Sprintf("gw-%d", g),
			SyncInterval: 5 * time.Millisecond, OnError: func(err error) { t.Error(err) }})
		if err != nil {
			t.Fatal(err)
		}
		ens[g] = e
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(g), uint64(w)))
				for i := range 60 {
					worst := 0.0005 + rng.Float64()*0.001
					r, ref, err := e.Reserve(t.Context(), budget.Subjects{Team: "ml"}, worst)
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
					actual := worst * rng.Float64()
					if i%10 == 0 {
						actual = budget.UnknownCost // the worst case is kept
					}
					n, _ := budget.ToNano(max(actual, 0))
					if actual < 0 {
						n, _ = budget.ToNano(worst)
					}
					settled.Add(int64(n))
					e.Settle(r, actual)
					if i%7 == 0 {
						if err := e.Sync(t.Context()); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	for range 2 { // the first commits, the second returns what was idle since
		for _, e := range ens {
			if err := e.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	key := budget.KeyFor(&budgets[0], "ml", clock.Now())
	tot, err := stores[0].Totals(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	limitN, _ := budget.ToNano(limit)
	t.Logf("%d calls, %d refused, spent %.6f of %.2f USD", calls.Load(), refused.Load(), tot.Spent.USD(), limit)
	switch {
	case int64(tot.Spent) != settled.Load():
		t.Errorf("ledger spent %d, settled %d", tot.Spent, settled.Load())
	case tot.Spent > limitN:
		t.Errorf("spent %d > limit %d", tot.Spent, limitN)
	case tot.Held != 0:
		t.Errorf("held %d after the last syncs", tot.Held)
	case refused.Load() == 0 || tot.Spent < limitN*8/10:
		t.Errorf("the budget was not used up: spent %d of %d, %d refused", tot.Spent, limitN, refused.Load())
	}
}

// testLimiterGateways: 3 gateways (Limiters on their own stores of one
// database) with 100 requests per minute per key take exactly 100 of 150
// concurrent requests, and their x-ratelimit figures agree.
func testLimiterGateways(t *testing.T, open func() LedgerStore) {
	clock := fixedClock{start: time.Date(2026, 11, 30, 10, 0, 1, 0, time.UTC), base: time.Now()}
	rates := budget.RateLimits{Key: budget.KindRates{Default: budget.Rate{RPM: 100, TPM: 1 << 40}}}
	stores := ledgerStores(open, 3)
	var (
		taken atomic.Int64
		wg    sync.WaitGroup
	)
	for g := range 3 {
		l, err := budget.NewLimiter(rates, stores[g], clock)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			wg.Go(func() {
				tk, st, ref, err := l.Take(t.Context(), budget.RateSubjects{Key: "k", Model: "m"}, 300)
				switch {
				case err != nil:
					t.Error(err)
				case ref == nil:
					taken.Add(1)
					if st.Requests.Limit != 100 || st.Requests.Remaining < 0 || st.Requests.Remaining > 99 {
						t.Errorf("status %+v", st.Requests)
					}
					if err := l.Settle(t.Context(), tk, 200); err != nil {
						t.Error(err)
					}
				case ref.Unit != budget.Requests || ref.Used != 100 || st.Requests.Remaining != 0:
					t.Errorf("refusal %+v, status %+v", ref, st.Requests)
				}
			})
		}
	}
	wg.Wait()
	if taken.Load() != 100 {
		t.Errorf("taken %d, want exactly 100", taken.Load())
	}
	w := clock.start.Unix() / 60 * 60
	if n := countOf(t, stores[1], counterKey(budget.KindKey, "k", budget.Tokens, w)); n != 100*200 {
		t.Errorf("tokens counted %d, want %d (estimates corrected by Settle)", n, 100*200)
	}
}

// counterKey is the count of subject's unit in window w.
func counterKey(kind budget.Kind, name string, unit budget.Unit, w int64) budget.CounterKey {
	return budget.CounterKey{Subject: budget.Subject{Kind: kind, Name: name}, Unit: unit, Window: w}
}

// testCounterAsMem runs one random sequence of Takes (1 to 6 counts,
// duplicates included) and Adds on MemCounter and on the store, in two
// adjacent windows, and compares every result.
func testCounterAsMem(t *testing.T, open func() LedgerStore) {
	s, mem := open(), new(budget.MemCounter)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(60, 1))
	const w = 1767225600
	var pool []budget.CounterKey
	for _, win := range []int64{w, w + 60} {
		for _, sub := range []budget.Subject{{Kind: budget.KindKey, Name: "k1"}, {Kind: budget.KindUser, Name: "alice"}, {Kind: budget.KindModel, Name: "gpt-4o"}, {Kind: budget.KindUser, Name: "k1"}} {
			pool = append(pool, budget.CounterKey{Subject: sub, Unit: budget.Requests, Window: win}, budget.CounterKey{Subject: sub, Unit: budget.Tokens, Window: win})
		}
	}
	for i := range 1500 {
		if rng.IntN(4) == 0 {
			keys := make([]budget.CounterKey, 1+rng.IntN(3))
			for j := range keys {
				keys[j] = pool[rng.IntN(len(pool))]
			}
			n := int64(rng.IntN(40) - 20)
			if err := s.Add(ctx, keys, n); err != nil {
				t.Fatalf("step %d: Add: %v", i, err)
			}
			mem.Add(ctx, keys, n)
			continue
		}
		ops := make([]budget.CounterOp, 1+rng.IntN(6))
		for j := range ops {
			k := pool[rng.IntN(len(pool))]
			ops[j] = budget.CounterOp{Key: k, N: 1, Limit: 40}
			if k.Unit == budget.Tokens {
				ops[j].N, ops[j].Limit = int64(rng.IntN(50)), 400
			}
		}
		vals, mvals := make([]int64, len(ops)), make([]int64, len(ops))
		ok, err := s.Take(ctx, ops, vals)
		if err != nil {
			t.Fatalf("step %d: Take: %v", i, err)
		}
		mok, _ := mem.Take(ctx, ops, mvals)
		if ok != mok || fmt.Sprint(vals) != fmt.Sprint(mvals) {
			t.Fatalf("step %d: Take(%+v) = %t, %v; MemCounter: %t, %v", i, ops, ok, vals, mok, mvals)
		}
	}
	// Extreme limits and amounts.
	k := pool[0]
	for _, ops := range [][]budget.CounterOp{
		{{Key: k, N: -1, Limit: math.MaxInt64}},
		{{Key: k, N: 0, Limit: 0}, {Key: pool[1], N: 0, Limit: 1 << 40}},
		{{Key: k, N: 1, Limit: -5}},
		{{Key: k, N: 1, Limit: math.MinInt64 + 1}},
		{{Key: k, N: 5, Limit: 1 << 40}, {Key: k, N: -3, Limit: math.MaxInt64}},
	} {
		vals, mvals := make([]int64, len(ops)), make([]int64, len(ops))
		ok, err := s.Take(ctx, ops, vals)
		if err != nil {
			t.Fatalf("Take(%+v): %v", ops, err)
		}
		if mok, _ := mem.Take(ctx, ops, mvals); ok != mok || fmt.Sprint(vals) != fmt.Sprint(mvals) {
			t.Errorf("Take(%+v) = %t, %v; MemCounter: %t, %v", ops, ok, vals, mok, mvals)
		}
	}
}

// testCounterExact: 3 stores × 50 goroutines take one request each, as
// fast as they can, against a limit of 100 per minute: exactly 100 are
// taken, and the count says 100.
func testCounterExact(t *testing.T, open func() LedgerStore) {
	stores := ledgerStores(open, 3)
	key := counterKey(budget.KindKey, "k", budget.Requests, 1767225600)
	const limit = 100
	var (
		taken, refused atomic.Int64
		wg             sync.WaitGroup
	)
	for i := range 150 {
		wg.Go(func() {
			s := stores[i%3]
			for range 2 {
				vals := make([]int64, 1)
				ok, err := s.Take(t.Context(), []budget.CounterOp{{Key: key, N: 1, Limit: limit}}, vals)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if ok {
					taken.Add(1)
					if vals[0] < 1 || vals[0] > limit {
						t.Errorf("a Take that took reports count %d", vals[0])
					}
				} else {
					refused.Add(1)
					if vals[0] != limit {
						t.Errorf("a refused Take reports count %d, want %d", vals[0], limit)
					}
				}
			}
		})
	}
	wg.Wait()
	if taken.Load() != limit || refused.Load() != 300-limit {
		t.Errorf("taken %d, refused %d; want exactly %d and %d", taken.Load(), refused.Load(), limit, 300-limit)
	}
	if n := countOf(t, stores[0], key); n != limit {
		t.Errorf("count %d, want %d", n, limit)
	}
}

// countOf reads key's count with a Take of 0.
func countOf(t *testing.T, s LedgerStore, key budget.CounterKey) int64 {
	t.Helper()
	vals := make([]int64, 1)
	if _, err := s.Take(t.Context(), []budget.CounterOp{{Key: key, N: 0, Limit: 1 << 62}}, vals); err != nil {
		t.Fatal(err)
	}
	return vals[0]
}

// testCounterAllOrNothing: Takes of a key's requests (limit 100) and
// tokens (limit 600, 10 each) and a model's requests (limit 1000), from
// 3 stores concurrently: the token limit stops them at exactly 60, and
// the other counts stay in step with it. Then Add corrects the tokens.
func testCounterAllOrNothing(t *testing.T, open func() LedgerStore) {
	stores := ledgerStores(open, 3)
	const w = 1767225600
	req := counterKey(budget.KindKey, "k", budget.Requests, w)
	tok := counterKey(budget.KindKey, "k", budget.Tokens, w)
	model := counterKey(budget.KindModel, "m", budget.Requests, w)
	var (
		taken atomic.Int64
		wg    sync.WaitGroup
	)
	for i := range 60 {
		wg.Go(func() {
			for range 2 {
				ok, err := stores[i%3].Take(t.Context(), []budget.CounterOp{
					{Key: model, N: 1, Limit: 1000}, {Key: req, N: 1, Limit: 100}, {Key: tok, N: 10, Limit: 600},
				}, make([]int64, 3))
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if ok {
					taken.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if taken.Load() != 60 {
		t.Errorf("taken %d, want 60", taken.Load())
	}
	for k, want := range map[budget.CounterKey]int64{req: 60, tok: 600, model: 60} {
		if n := countOf(t, stores[1], k); n != want {
			t.Errorf("%v: count %d, want %d", k, n, want)
		}
	}
	if err := stores[2].Add(t.Context(), []budget.CounterKey{tok}, -250); err != nil {
		t.Fatal(err)
	}
	if err := stores[0].Add(t.Context(), []budget.CounterKey{tok, req}, 3); err != nil {
		t.Fatal(err)
	}
	if n := countOf(t, stores[1], tok); n != 353 {
		t.Errorf("tokens after Add(-250), Add(3): %d, want 353", n)
	}
	if n := countOf(t, stores[1], req); n != 63 {
		t.Errorf("requests after Add(3): %d, want 63", n)
	}
}

// testCounterPrune: PruneCounters deletes the counts of windows before
// its argument, and only those.
func testCounterPrune(t *testing.T, open func() LedgerStore) {
	s := open()
	const w = 1767225600
	for i, win := range []int64{w - 120, w - 60, w} {
		for _, name := range []string{"a", "b"} {
			k := counterKey(budget.KindUser, name, budget.Requests, win)
			if err := s.Add(t.Context(), []budget.CounterKey{k}, int64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := s.PruneCounters(t.Context(), w-60); err != nil || n != 2 {
		t.Errorf("PruneCounters(w-60) = %d, %v; want 2", n, err)
	}
	if n, err := s.PruneCounters(t.Context(), w-60); err != nil || n != 0 {
		t.Errorf("a second PruneCounters(w-60) = %d, %v; want 0", n, err)
	}
	for win, want := range map[int64]int64{w - 120: 0, w - 60: 2, w: 3} {
		if n := countOf(t, s, counterKey(budget.KindUser, "b", budget.Requests, win)); n != want {
			t.Errorf("window %d: count %d, want %d", win, n, want)
		}
	}
}

// BenchLedgerAcquireCommit measures one Acquire and one Commit (a
// gateway's lease and its sync), with parallel goroutines when parallel.
func BenchLedgerAcquireCommit(b *testing.B, s LedgerStore, parallel bool) {
	key := budget.LedgerKey{Budget: "daily", Subject: "alice", Start: 1767225600}
	var n atomic.Int64
	step := func(holder string) {
		g, _, err := s.Acquire(b.Context(), holder, key, 10, 100, 1<<60)
		if err != nil || g != 100 {
			b.Fatalf("Acquire = %d, %v", g, err)
		}
		if _, err := s.Commit(b.Context(), holder, key, 60, g); err != nil {
			b.Fatal(err)
		}
	}
	if !parallel {
		for b.Loop() {
			step("gw-1")
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		holder := fmt.Sprintf("gw-%d", n.Add(1))
		for pb.Next() {
			step(holder)
		}
	})
}

// BenchCounterTake measures one Take of a request's three counts (a key's
// requests and tokens, a user's requests), with parallel goroutines when
// parallel.
func BenchCounterTake(b *testing.B, s LedgerStore, parallel bool) {
	const w = 1767225600
	ops := []budget.CounterOp{
		{Key: counterKey(budget.KindKey, "k", budget.Requests, w), N: 1, Limit: 1 << 60},
		{Key: counterKey(budget.KindKey, "k", budget.Tokens, w), N: 500, Limit: 1 << 60},
		{Key: counterKey(budget.KindUser, "alice", budget.Requests, w), N: 1, Limit: 1 << 60},
	}
	step := func(vals []int64) {
		if ok, err := s.Take(b.Context(), ops, vals); err != nil || !ok {
			b.Fatalf("Take = %t, %v", ok, err)
		}
	}
	if !parallel {
		vals := make([]int64, 3)
		for b.Loop() {
			step(vals)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		vals := make([]int64, 3)
		for pb.Next() {
			step(vals)
		}
	})
}
