package postgres

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"llmscope/budget"
	"llmscope/internal/storetest"
)

func TestLedger(t *testing.T) {
	storetest.RunLedger(t, func(t *testing.T) func() storetest.LedgerStore {
		open := openShared(t)
		return func() storetest.LedgerStore { return open() }
	})
}

func BenchmarkLedgerAcquireCommit(b *testing.B) {
	b.Run("serial", func(b *testing.B) { storetest.BenchLedgerAcquireCommit(b, openTemp(b), false) })
	b.Run("parallel", func(b *testing.B) { storetest.BenchLedgerAcquireCommit(b, openTemp(b), true) })
}

func BenchmarkCounterTake(b *testing.B) {
	b.Run("serial", func(b *testing.B) { storetest.BenchCounterTake(b, openTemp(b), false) })
	b.Run("parallel", func(b *testing.B) { storetest.BenchCounterTake(b, openTemp(b), true) })
}

// TestLedgerRefusesUnstorableText: Postgres text holds no NUL byte or
// invalid UTF-8; ledger keys, holders and counter subjects with one are
// refused with an error that says so, and nothing is stored.
func TestLedgerRefusesUnstorableText(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	good := budget.LedgerKey{Budget: "b", Subject: "s"}
	for _, c := range []struct {
		holder string
		key    budget.LedgerKey
	}{
		{"gw\x00", good},
		{"gw", budget.LedgerKey{Budget: "b\xff", Subject: "s"}},
		{"gw", budget.LedgerKey{Budget: "b", Subject: "a\x00b"}},
	} {
		if _, _, err := s.Acquire(ctx, c.holder, c.key, 1, 1, 10); err == nil || !strings.Contains(err.Error(), "NUL byte or invalid UTF-8") {
			t.Errorf("Acquire(%+q, %+q, %+q) = %v, want a NUL/UTF-8 error", c.holder, c.key.Budget, c.key.Subject, err)
		}
		if _, err := s.Commit(ctx, c.holder, c.key, 1, 1); err == nil || !strings.Contains(err.Error(), "NUL byte or invalid UTF-8") {
			t.Errorf("Commit(%+q, %+q, %+q) = %v, want a NUL/UTF-8 error", c.holder, c.key.Budget, c.key.Subject, err)
		}
	}
	bad := budget.CounterKey{Subject: budget.Subject{Kind: budget.KindUser, Name: "al\x00ice"}, Unit: budget.Requests, Window: 60}
	if _, err := s.Take(ctx, []budget.CounterOp{{Key: bad, N: 1, Limit: 5}}, make([]int64, 1)); err == nil || !strings.Contains(err.Error(), "NUL byte or invalid UTF-8") {
		t.Errorf("Take of a NUL subject = %v, want a NUL/UTF-8 error", err)
	}
	bad.Subject.Name = "\xc3("
	if err := s.Add(ctx, []budget.CounterKey{bad}, 1); err == nil || !strings.Contains(err.Error(), "NUL byte or invalid UTF-8") {
		t.Errorf("Add of an invalid UTF-8 subject = %v, want a NUL/UTF-8 error", err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM budget_ledger) + (SELECT count(*) FROM budget_holds) + (SELECT count(*) FROM rate_counts)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows stored: %d, %v; want none", n, err)
	}
}

// TestLedgerNoDeadlock: gateways taking the same counts in opposite
// orders, adding to them, acquiring and committing on two keys in
// opposite orders, while others expire holders and prune counts, never
// deadlock (Postgres would abort one of them with 40P01).
func TestLedgerNoDeadlock(t *testing.T) {
	open := openShared(t)
	stores := []*Store{open(), open(), open()}
	ctx := t.Context()
	const w = 1767225600
	a := budget.CounterKey{Subject: budget.Subject{Kind: budget.KindKey, Name: "a"}, Unit: budget.Requests, Window: w}
	b := budget.CounterKey{Subject: budget.Subject{Kind: budget.KindUser, Name: "b"}, Unit: budget.Tokens, Window: w}
	old := a
	old.Window = w - 120
	k1 := budget.LedgerKey{Budget: "x", Subject: "1"}
	k2 := budget.LedgerKey{Budget: "x", Subject: "2"}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			s := stores[i%3]
			holder := fmt.Sprintf("gw-%d", i%5)
			for j := range 20 {
				var err error
				ops := []budget.CounterOp{{Key: a, N: 1, Limit: 1 << 40}, {Key: b, N: 7, Limit: 1 << 40}, {Key: old, N: 1, Limit: 1 << 40}}
				keys := []budget.LedgerKey{k1, k2}
				if (i+j)%2 == 1 {
					slices.Reverse(ops)
					slices.Reverse(keys)
				}
				switch j % 4 {
				case 0:
					_, err = s.Take(ctx, ops, make([]int64, 3))
				case 1:
					err = s.Add(ctx, []budget.CounterKey{ops[2].Key, ops[0].Key, ops[1].Key}, -1)
				case 2:
					for _, k := range keys {
						if _, _, err = s.Acquire(ctx, holder, k, 1, 5, 1<<40); err != nil {
							break
						}
					}
				case 3:
					for _, k := range keys {
						if _, err = s.Commit(ctx, holder, k, 1, 5); err != nil {
							break
						}
					}
				}
				if err == nil && i%10 == 0 {
					_, err = s.ExpireHolders(ctx, 0)
				}
				if err == nil && i%10 == 5 {
					_, err = s.PruneCounters(ctx, w-60)
				}
				if err != nil {
					t.Errorf("gateway %d step %d: %v", i, j, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
