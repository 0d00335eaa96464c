package budget

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Spend is one budget's settled spend for one subject in the current
// period.
type Spend struct {
	Budget   string
	Subject  Subject
	SpentUSD float64 // Ledger Totals.Spent: committed by every gateway
	LimitUSD float64
}

// Spends returns the spend, in the period containing the Enforcer's now,
// of at most max of the (budget, subject) pairs this Enforcer has
// accounted, sorted by budget and subject name: one Ledger.Totals round
// trip each. It is for gauges and dashboards, never the request path.
func (e *Enforcer) Spends(ctx context.Context, max int) ([]Spend, error) {
	e.mu.RLock()
	keys := make([]acctKey, 0, len(e.accounts))
	for k := range e.accounts {
		keys = append(keys, k)
	}
	e.mu.RUnlock()
	slices.SortFunc(keys, func(a, b acctKey) int {
		if c := cmp.Compare(a.rule.b.Name, b.rule.b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.subject, b.subject)
	})
	if len(keys) > max {
		keys = keys[:max]
	}
	now := e.clock.Now()
	out := make([]Spend, 0, len(keys))
	for _, k := range keys {
		tot, err := e.ledger.Totals(ctx, KeyFor(&k.rule.b, k.subject, now))
		if err != nil {
			return out, fmt.Errorf("budget %q: totals: %w", k.rule.b.Name, err)
		}
		out = append(out, Spend{Budget: k.rule.b.Name, Subject: Subject{k.rule.kind, k.subject}, SpentUSD: tot.Spent.USD(), LimitUSD: k.rule.b.LimitUSD})
	}
	return out, nil
}
