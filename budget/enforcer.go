package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSyncInterval is how often Run commits settled spend to the ledger
// and returns unused allowance.
const DefaultSyncInterval = 100 * time.Millisecond

// DefaultLeaseShare is the share of a budget's limit an Enforcer takes from
// the ledger beyond what a reservation needs, so that the next reservations
// of a warm subject are local.
const DefaultLeaseShare = 0.02

// UnknownCost, given to Settle, says the call's cost is unknown (no usage,
// no price): the reservation's worst case is kept as its spend.
const UnknownCost = -1.0

// Options configure an Enforcer; the zero value is usable.
type Options struct {
	Clock Clock // nil: SystemClock
	// Ledger is the spend shared with other gateways; nil gives the
	// Enforcer a MemLedger of its own (one gateway).
	Ledger Ledger
	// Holder names this Enforcer in the ledger (a gateway id); "" picks a
	// random one.
	Holder string
	// LeaseShare is the allowance taken from the ledger beyond a
	// reservation's need, as a share of the budget's limit (0: the
	// default, DefaultLeaseShare; negative: none, every allowance is
	// exactly what a reservation needs; at most 1). It trades ledger round trips
	// against allowance held idle, which other gateways count as spent.
	LeaseShare float64
	// SyncInterval is Run's period (0: DefaultSyncInterval). Within it a
	// refused subject is refused again from the local view without asking
	// the ledger.
	SyncInterval time.Duration
	// OnSoft is called when a budget's settled spend (all gateways)
	// crosses its Soft share, once per subject and period across every
	// Enforcer sharing the ledger: by the one whose commit crossed it. It
	// runs in Sync, never on the request path.
	OnSoft func(Alert)
	// OnError receives the errors of Run's syncs (nil: dropped).
	OnError func(error)
}

// Alert is a soft limit crossing.
type Alert struct {
	Budget      string
	Subject     Subject
	Period      Period
	PeriodStart time.Time // the Unix epoch for a Total budget
	Soft        float64   // the budget's soft share
	LimitUSD    float64
	SpentUSD    float64 // settled spend of all gateways after the crossing
}

// Refusal says why Reserve refused a call: its Budget would be crossed. The
// gateway answers 429 with error type "budget_exceeded" and these figures.
type Refusal struct {
	Budget  string
	Subject Subject
	Period  Period
	Limit   float64 // USD
	// Spent is the period's spend in USD as this Enforcer sees it: settled
	// spend of all gateways (committed to the ledger, plus its own
	// uncommitted), its own in-flight reservations, and the allowance
	// other gateways hold for theirs.
	Spent float64
	Cost  float64 // the refused call's worst case, USD
	// ResetsAt is the end of the period, when the spend restarts from 0;
	// zero for a Total budget.
	ResetsAt time.Time
}

// Error describes the refusal in one line, fit for the 429 body's message.
func (r *Refusal) Error() string {
	reset := "never resets"
	if !r.ResetsAt.IsZero() {
		reset = "resets at " + r.ResetsAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("budget %q of %s %q exceeded: $%.6f of $%.6f %s budget spent or reserved, this call may cost up to $%.6f; %s",
		r.Budget, r.Subject.Kind, r.Subject.Name, r.Spent, r.Limit, r.Period, r.Cost, reset)
}

// RetryAfter returns the time from now to ResetsAt, rounded up to whole
// seconds (0 for a Total budget, which never resets).
func (r *Refusal) RetryAfter(now time.Time) time.Duration {
	if r.ResetsAt.IsZero() {
		return 0
	}
	return ceilSecond(r.ResetsAt.Sub(now))
}

// ceilSecond rounds d up to whole seconds (0 for d ≤ 0).
func ceilSecond(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// Reservation is the worst-case cost of one call held against each budget
// that applies to it, until Settle or Release.
type Reservation struct {
	cost   NanoUSD
	done   atomic.Bool
	accs   []*account
	inline [4]*account
}

// Cost returns the reserved worst case in USD.
func (r *Reservation) Cost() float64 { return r.cost.USD() }

// Enforcer checks and accounts budgets for one gateway. It is safe for
// concurrent use; Run (or periodic Sync calls) must run beside it.
type Enforcer struct {
	clock    Clock
	ledger   Ledger
	holder   string
	lease    float64
	interval time.Duration
	onSoft   func(Alert)
	onError  func(error)
	rules    [4]kindRules // by kindIndex

	mu       sync.RWMutex
	accounts map[acctKey]*account
	old      []*account // accounts of ended periods, until drained

	syncMu  sync.Mutex // serialises Syncs, guards syncBuf
	syncBuf []*account
}

type kindRules struct {
	all   []*rule            // budgets on every subject of the kind
	named map[string][]*rule // budgets on one subject
}

type rule struct {
	b     Budget
	kind  Kind
	limit NanoUSD
	lease NanoUSD
	soft  NanoUSD // 0: none
}

type acctKey struct {
	rule    *rule
	subject string
}

// account is one budget's state for one subject and period at this
// Enforcer. Invariant (without settled excess over reservations):
// reserved + pending ≤ allow, the allowance the ledger granted.
type account struct {
	rule    *rule
	subject string
	key     LedgerKey
	end     int64 // period end, Unix nanoseconds (MaxInt64: never)
	endTime time.Time

	mu       sync.Mutex
	allow    NanoUSD // granted by the ledger, not yet released
	reserved NanoUSD // in-flight reservations
	pending  NanoUSD // settled spend not yet committed
	inflight int
	dropped  bool    // forgotten by Sync (an ended period, drained): reserve elsewhere
	used     bool    // reserved since the last sync
	others   NanoUSD // ledger Spent + Held minus our allowance, as last seen
	seenAt   int64   // when others was read, Unix nanoseconds (0: never)
	gen      uint64  // counts acquisitions
}

func kindIndex(k Kind) int {
	switch k {
	case KindKey:
		return 0
	case KindUser:
		return 1
	case KindTeam:
		return 2
	}
	return 3
}

// New returns an Enforcer of budgets, after validating them.
func New(budgets []Budget, opt Options) (*Enforcer, error) {
	cfg := Config{Budgets: budgets}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Enforcer{
		clock: opt.Clock, ledger: opt.Ledger, holder: opt.Holder,
		lease: opt.LeaseShare, interval: opt.SyncInterval,
		onSoft: opt.OnSoft, onError: opt.OnError,
		accounts: make(map[acctKey]*account),
	}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.ledger == nil {
		e.ledger = new(MemLedger)
	}
	if e.holder == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		e.holder = hex.EncodeToString(b[:])
	}
	switch {
	case e.lease == 0:
		e.lease = DefaultLeaseShare
	case e.lease < 0:
		e.lease = 0
	case e.lease > 1:
		e.lease = 1
	}
	if e.interval <= 0 {
		e.interval = DefaultSyncInterval
	}
	for _, b := range budgets {
		r := &rule{b: b, kind: b.Kind}
		r.limit, _ = ToNano(b.LimitUSD)
		r.lease = NanoUSD(float64(r.limit) * e.lease)
		if b.Soft > 0 {
			r.soft = max(NanoUSD(math.Ceil(float64(r.limit)*b.Soft)), 1)
		}
		kr := &e.rules[kindIndex(b.Kind)]
		if b.Subject == "" {
			kr.all = append(kr.all, r)
			continue
		}
		if kr.named == nil {
			kr.named = make(map[string][]*rule)
		}
		kr.named[b.Subject] = append(kr.named[b.Subject], r)
	}
	return e, nil
}

// KeyFor returns the ledger key of budget b's spend for subject in the
// period containing t (for dashboards reading Ledger.Totals).
func KeyFor(b *Budget, subject string, t time.Time) LedgerKey {
	start, _ := b.Period.Bounds(t)
	k := LedgerKey{Budget: b.Name, Subject: subject}
	if b.Period != Total {
		k.Start = start.Unix()
	}
	return k
}

// Reserve checks every budget that applies to the subjects and either
// reserves worstCaseUSD against all of them (a Reservation, which must be
// settled or released exactly once) or against none (a Refusal naming the
// first budget the call would cross: its spend as seen here plus
// worstCaseUSD would exceed its limit). A call no budget applies to gets a
// Reservation too.
//
// On a warm subject it takes only local locks; it asks the ledger when the
// local allowance does not cover the call (with ctx), and returns the
// ledger's error, wrapped, when that fails: the gateway chooses to fail
// open or closed. worstCaseUSD must be finite and ≥ 0.
func (e *Enforcer) Reserve(ctx context.Context, s Subjects, worstCaseUSD float64) (*Reservation, *Refusal, error) {
	c, err := ToNano(worstCaseUSD)
	if err != nil {
		return nil, nil, fmt.Errorf("reserve: %w", err)
	}
	t := e.clock.Now()
	now := t.UnixNano()
	r := &Reservation{cost: c}
	r.accs = r.inline[:0]
	names := [4]string{s.Key, s.User, s.Team, s.Experiment}
	for i, name := range names {
		if name == "" {
			continue
		}
		kr := &e.rules[i]
		for _, rl := range kr.all {
			if ref, err := e.reserveIn(ctx, r, rl, name, t, now); ref != nil || err != nil {
				return nil, ref, err
			}
		}
		if kr.named == nil {
			continue
		}
		for _, rl := range kr.named[name] {
			if ref, err := e.reserveIn(ctx, r, rl, name, t, now); ref != nil || err != nil {
				return nil, ref, err
			}
		}
	}
	return r, nil, nil
}

// reserveIn reserves r.cost in the account of (rl, name), or undoes r's
// earlier reservations and returns why not.
func (e *Enforcer) reserveIn(ctx context.Context, r *Reservation, rl *rule, name string, t time.Time, now int64) (*Refusal, error) {
	a := e.account(rl, name, t, now)
	ref, err := e.reserveOne(ctx, a, r.cost, now)
	for err == errDropped { // a was an ended period's, drained meanwhile
		a = e.account(rl, name, t, now)
		ref, err = e.reserveOne(ctx, a, r.cost, now)
	}
	if ref != nil || err != nil {
		e.undo(r)
		return ref, err
	}
	r.accs = append(r.accs, a)
	return nil, nil
}

// account returns the account of (rl, subject) for the period containing
// t, starting a new one when the current one's period ended.
func (e *Enforcer) account(rl *rule, subject string, t time.Time, now int64) *account {
	k := acctKey{rl, subject}
	e.mu.RLock()
	a := e.accounts[k]
	e.mu.RUnlock()
	if a != nil && now < a.end {
		return a
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a = e.accounts[k]
	if a != nil && now < a.end {
		return a
	}
	if a != nil {
		e.old = append(e.old, a) // settles and syncs into its own period
	}
	start, end := rl.b.Period.Bounds(t)
	a = &account{rule: rl, subject: subject, key: LedgerKey{Budget: rl.b.Name, Subject: subject}, end: math.MaxInt64}
	if rl.b.Period != Total {
		a.key.Start = start.Unix()
		a.end, a.endTime = end.UnixNano(), end
	}
	e.accounts[k] = a
	return a
}

// errDropped tells reserveIn to look its account up again.
var errDropped = errors.New("account dropped")

// reserveOne reserves c in a: locally when its free allowance covers c,
// else after asking the ledger for more.
func (e *Enforcer) reserveOne(ctx context.Context, a *account, c NanoUSD, now int64) (*Refusal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dropped {
		return nil, errDropped
	}
	free := a.allow - a.reserved - a.pending
	if free >= c {
		a.reserved += c
		a.inflight++
		a.used = true
		return nil, nil
	}
	limit := a.rule.limit
	if a.seenAt != 0 && now-a.seenAt < int64(e.interval) && a.others+a.reserved+a.pending+c > limit {
		return e.refusal(a, a.others+a.reserved+a.pending, c), nil // refused within the interval: no round trip
	}
	need := c - free
	g, tot, err := e.ledger.Acquire(ctx, e.holder, a.key, need, need+a.rule.lease, limit)
	if err != nil {
		return nil, fmt.Errorf("budget %q: acquire: %w", a.rule.b.Name, err)
	}
	a.allow += g
	a.gen++
	a.others, a.seenAt = tot.Spent+tot.Held-a.allow, now
	if g >= need {
		a.reserved += c
		a.inflight++
		a.used = true
		return nil, nil
	}
	return e.refusal(a, a.others+a.reserved+a.pending, c), nil
}

func (e *Enforcer) refusal(a *account, spent, c NanoUSD) *Refusal {
	return &Refusal{
		Budget: a.rule.b.Name, Subject: Subject{a.rule.kind, a.subject}, Period: a.rule.b.Period,
		Limit: a.rule.b.LimitUSD, Spent: spent.USD(), Cost: c.USD(), ResetsAt: a.endTime,
	}
}

// undo takes r's reservations back.
func (e *Enforcer) undo(r *Reservation) {
	for _, a := range r.accs {
		a.mu.Lock()
		a.reserved -= r.cost
		a.inflight--
		a.mu.Unlock()
	}
	r.accs = r.accs[:0]
}

// Settle replaces r's worst case by the call's actual cost in every budget
// it was reserved against, in the period it was reserved in. actualUSD < 0
// or NaN (UnknownCost) means the cost is unknown: the worst case is kept,
// so a call whose price or usage is unknown still counts, at most what was
// admitted. An actual cost above the worst case is counted whole (it is the
// only source of overshoot, see the package doc). Settling or releasing r
// again, or a nil r, does nothing.
func (e *Enforcer) Settle(r *Reservation, actualUSD float64) {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return
	}
	actual := r.cost
	if !(actualUSD < 0) && !math.IsNaN(actualUSD) {
		if n, err := ToNano(actualUSD); err == nil {
			actual = n
		}
	}
	for _, a := range r.accs {
		a.mu.Lock()
		a.reserved -= r.cost
		a.pending += actual
		a.inflight--
		a.mu.Unlock()
	}
}

// Release takes r back without any spend: for a call that never went
// upstream. Releasing or settling r again, or a nil r, does nothing.
func (e *Enforcer) Release(r *Reservation) {
	if r == nil || !r.done.CompareAndSwap(false, true) {
		return
	}
	for _, a := range r.accs {
		a.mu.Lock()
		a.reserved -= r.cost
		a.inflight--
		a.mu.Unlock()
	}
}

// Run calls Sync every Options.SyncInterval until ctx ends, then once more
// (with a fresh context) so settled spend is not lost on shutdown. Sync
// errors go to Options.OnError.
func (e *Enforcer) Run(ctx context.Context) {
	tick := time.NewTicker(e.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := e.Sync(context.WithoutCancel(ctx)); err != nil && e.onError != nil {
				e.onError(err)
			}
			return
		case <-tick.C:
			if err := e.Sync(ctx); err != nil && e.onError != nil {
				e.onError(err)
			}
		}
	}
}

// Sync commits every account's settled spend to the ledger, returns the
// allowance of accounts not used since the previous Sync (and of ended
// periods) and fires soft alerts. It visits every account this Enforcer
// knows (one per budget and subject seen), with one ledger round trip for
// each that has something to commit or return. It returns the first error
// after trying every account; an account whose commit failed keeps its
// figures for the next Sync. Syncs run one at a time.
func (e *Enforcer) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.mu.RLock()
	accs := e.syncBuf[:0]
	for _, a := range e.accounts {
		accs = append(accs, a)
	}
	nCur := len(accs)
	accs = append(accs, e.old...)
	e.mu.RUnlock()
	var first error
	for i, a := range accs {
		if err := e.syncOne(ctx, a, i >= nCur); err != nil && first == nil {
			first = err
		}
	}
	clear(accs)
	e.syncBuf = accs[:0]
	// Forget ended periods that hold nothing any more.
	e.mu.Lock()
	kept := e.old[:0]
	for _, a := range e.old {
		a.mu.Lock()
		busy := a.inflight > 0 || a.allow > 0 || a.pending > 0
		a.dropped = !busy
		a.mu.Unlock()
		if busy {
			kept = append(kept, a)
		}
	}
	clear(e.old[len(kept):])
	e.old = kept
	e.mu.Unlock()
	return first
}

// syncOne commits a's pending spend and releases what it no longer needs.
func (e *Enforcer) syncOne(ctx context.Context, a *account, ended bool) error {
	a.mu.Lock()
	p := a.pending
	rel := min(p, a.allow)
	if !a.used || ended {
		rel = max(rel, a.allow-a.reserved)
	}
	a.used = false
	if p == 0 && rel <= 0 {
		a.mu.Unlock()
		return nil
	}
	a.pending -= p
	a.allow -= rel
	gen := a.gen
	a.mu.Unlock()

	tot, err := e.ledger.Commit(ctx, e.holder, a.key, p, rel)
	a.mu.Lock()
	if err != nil {
		a.pending += p
		a.allow += rel
		a.mu.Unlock()
		return fmt.Errorf("budget %q: commit: %w", a.rule.b.Name, err)
	}
	if a.gen == gen {
		a.others, a.seenAt = tot.Spent+tot.Held-a.allow, e.clock.Now().UnixNano()
	}
	a.mu.Unlock()
	if s := a.rule.soft; s > 0 && p > 0 && tot.Spent >= s && tot.Spent-p < s && e.onSoft != nil {
		start := time.Unix(a.key.Start, 0).UTC()
		e.onSoft(Alert{
			Budget: a.rule.b.Name, Subject: Subject{a.rule.kind, a.subject}, Period: a.rule.b.Period,
			PeriodStart: start, Soft: a.rule.b.Soft, LimitUSD: a.rule.b.LimitUSD, SpentUSD: tot.Spent.USD(),
		})
	}
	return nil
}
