package budget

import (
	"context"
	"sync"
)

// LedgerKey names the spend of one budget for one subject in one period.
type LedgerKey struct {
	Budget  string // Budget.Name
	Subject string // the subject's name (the budget's Kind is implied)
	Start   int64  // the period's start, Unix seconds (0 for Total)
}

// Totals are a LedgerKey's shared figures, summed over all gateways.
type Totals struct {
	// Spent is the settled spend committed so far.
	Spent NanoUSD
	// Held is the allowance currently granted to gateways and not yet
	// committed as spend or returned: it covers their in-flight
	// reservations, their settled but uncommitted spend and their unused
	// local allowance.
	Held NanoUSD
}

// Ledger is the spend shared by the gateways that enforce the same
// budgets: the SQLite store (one gateway), the Postgres store (N gateways)
// and MemLedger implement it. Each method is one atomic step on one key
// (one round trip, e.g. a single UPDATE … RETURNING); implementations are
// safe for concurrent use.
//
// The invariant the Enforcer relies on: Acquire never lets Spent + Held
// exceed the limit it is given, and Commit changes Spent + Held by
// spent − release only.
type Ledger interface {
	// Acquire grants holder allowance against key: want if
	// Spent + Held + want ≤ limit, else need if Spent + Held + need ≤ limit,
	// else nothing. It adds the grant to Held (and to holder's share of
	// it) and returns the grant and the totals after it.
	Acquire(ctx context.Context, holder string, key LedgerKey, need, want, limit NanoUSD) (granted NanoUSD, t Totals, err error)
	// Commit adds spent to Spent and takes release (≤ holder's share)
	// from Held, atomically, and returns the totals after it.
	Commit(ctx context.Context, holder string, key LedgerKey, spent, release NanoUSD) (Totals, error)
	// Totals returns key's totals (zero for a key never used).
	Totals(ctx context.Context, key LedgerKey) (Totals, error)
}

// MemLedger is a Ledger in memory: for one gateway (with the SQLite store,
// the caller loads each period's recorded spend at start with Load) and for
// tests of N gateways in one process. It keeps one entry per key used. The
// zero value is ready; it is safe for concurrent use.
type MemLedger struct {
	mu   sync.Mutex
	keys map[LedgerKey]*memEntry
}

type memEntry struct {
	Totals
	held map[string]NanoUSD // per holder
}

var _ Ledger = (*MemLedger)(nil)

func (l *MemLedger) entry(key LedgerKey) *memEntry {
	if l.keys == nil {
		l.keys = make(map[LedgerKey]*memEntry)
	}
	e := l.keys[key]
	if e == nil {
		e = &memEntry{held: make(map[string]NanoUSD, 1)}
		l.keys[key] = e
	}
	return e
}

// Acquire implements Ledger.
func (l *MemLedger) Acquire(_ context.Context, holder string, key LedgerKey, need, want, limit NanoUSD) (NanoUSD, Totals, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key)
	used := e.Spent + e.Held
	var g NanoUSD
	switch {
	case used+want <= limit:
		g = want
	case used+need <= limit:
		g = need
	}
	if g > 0 {
		e.Held += g
		e.held[holder] += g
	}
	return g, e.Totals, nil
}

// Commit implements Ledger.
func (l *MemLedger) Commit(_ context.Context, holder string, key LedgerKey, spent, release NanoUSD) (Totals, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key)
	release = min(release, e.held[holder])
	e.held[holder] -= release
	if e.held[holder] == 0 {
		delete(e.held, holder)
	}
	e.Held -= release
	e.Spent += spent
	return e.Totals, nil
}

// Totals implements Ledger.
func (l *MemLedger) Totals(_ context.Context, key LedgerKey) (Totals, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.keys[key]; e != nil {
		return e.Totals, nil
	}
	return Totals{}, nil
}

// Load sets key's settled spend, as a gateway starting on the SQLite store
// reads it back from the recorded calls; it keeps the held allowance.
func (l *MemLedger) Load(key LedgerKey, spent NanoUSD) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(key).Spent = spent
}
