package budget_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"llmscope/budget"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// Example shows the calls the gateway makes around one upstream request.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := fixedClock(time.Date(2026, 11, 30, 12, 0, 30, 0, time.UTC))
	cfg := budget.Config{
		Budgets: []budget.Budget{{Name: "key-daily", Kind: budget.KindKey, Period: budget.Day, LimitUSD: 0.005, Soft: 0.8}},
		Rates:   budget.RateLimits{Key: budget.KindRates{Default: budget.Rate{RPM: 60, TPM: 100000}}},
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	enf, _ := budget.New(cfg.Budgets, budget.Options{Clock: clock}) // Options.Ledger: the store's, with N gateways
	lim, _ := budget.NewLimiter(cfg.Rates, nil, clock)              // a store's Counter with N gateways
	go enf.Run(ctx)

	key := &budget.Key{Name: "ci", User: "alice", Team: "ml", Models: []string{"gpt-4o*"}}
	model, inputTokens, maxTokens := "gpt-4o-mini", int64(1200), int64(4000)
	price := budget.InputOutputPrice{Input: 0.15, Output: 0.6}

	for i := range 4 {
		if err := budget.Allowed(key, model, clock.Now()); err != nil {
			fmt.Println("401/403:", err)
			return
		}
		h := http.Header{}
		ticket, status, rref, err := lim.Take(ctx, budget.RateSubjects{Key: key.Name, User: key.User, Model: model}, inputTokens+maxTokens)
		if err != nil {
			panic(err) // the store is down: fail open or closed
		}
		status.Set(h)
		if rref != nil {
			fmt.Println("429 rate limit, Retry-After:", rref.RetryAfterSeconds())
			continue
		}
		res, ref, err := enf.Reserve(ctx, key.Subjects(), budget.WorstCase(inputTokens, maxTokens, price))
		if err != nil {
			panic(err)
		}
		if ref != nil {
			// 429 {"error":{"type":"budget_exceeded",...}} with x-should-retry: false
			fmt.Printf("call %d: 429 budget_exceeded: %s\n", i+1, ref.Error())
			_ = lim.Settle(ctx, ticket, 0) // not forwarded: no tokens used
			continue
		}
		// ... forward upstream; when the call ends, with its recorded cost and usage:
		enf.Settle(res, budget.WorstCase(inputTokens, 3000, price))
		_ = lim.Settle(ctx, ticket, inputTokens+3000)
		fmt.Printf("call %d: forwarded, x-ratelimit-remaining-tokens %s, reset in %s\n", i+1,
			h.Get("x-ratelimit-remaining-tokens"), h.Get("x-ratelimit-reset-tokens"))
	}
	// Output:
	// call 1: forwarded, x-ratelimit-remaining-tokens 94800, reset in 30s
	// call 2: forwarded, x-ratelimit-remaining-tokens 90600, reset in 30s
	// call 3: 429 budget_exceeded: budget "key-daily" of key "ci" exceeded: $0.003960 of $0.005000 day budget spent or reserved, this call may cost up to $0.002580; resets at 2026-12-01T00:00:00Z
	// call 4: 429 budget_exceeded: budget "key-daily" of key "ci" exceeded: $0.003960 of $0.005000 day budget spent or reserved, this call may cost up to $0.002580; resets at 2026-12-01T00:00:00Z
}
