package budget

import "context"

// Shared reports whether l counts in a Counter other than its own memory
// (a store shared by gateways), where a correction costs a round trip.
func (l *Limiter) Shared() bool { return l.mem == nil }

// AddTokens adds d tokens (negative to subtract) to the counts of keys in
// l's Counter, without a limit: a batched correction of token estimates.
func (l *Limiter) AddTokens(ctx context.Context, keys []CounterKey, d int64) error {
	return l.counter.Add(ctx, keys, d)
}

// Correction returns what settling t with the call's actual tokens would
// add to which counts: keys (valid until t changes) and the difference d
// from the estimate. ok is false when there is nothing to correct.
func (t *RateTicket) Correction(tokens int64) (keys []CounterKey, d int64, ok bool) {
	if t.n == 0 || tokens < 0 || tokens == t.tokens {
		return nil, 0, false
	}
	return t.keys[:t.n], tokens - t.tokens, true
}
