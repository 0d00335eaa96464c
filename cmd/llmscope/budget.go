package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"llmscope"
	"llmscope/budget"
	"llmscope/budget/gate"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/web"
)

// clockOffsetEnv names the test aid that shifts the clock budgets and rate
// limits read (a Go duration, e.g. 23h59m55s), so that a test can cross a
// period boundary in seconds. Never set it in use.
const clockOffsetEnv = "LLMSCOPE_TEST_CLOCK_OFFSET"

// budgetSections are serve's budgets:, rate_limits: and budget_webhook:
// config file sections.
type budgetSections struct {
	budgets, rates, webhook *section
}

// declareBudgetSections declares the sections on s.
func declareBudgetSections(s *settings) budgetSections {
	return budgetSections{budgets: s.section("budgets"), rates: s.section("rate_limits"), webhook: s.section("budget_webhook")}
}

// budgetConfig reads and validates the sections; ok is false when there
// are neither budgets nor rate limits.
//
//	budgets:
//	  - {name: key-daily, kind: key, period: day, limit_usd: 5, soft: 0.8}
//	  - {name: ml-monthly, kind: team, subject: ml, period: month, limit_usd: 500}
//	rate_limits:
//	  key:   {default: {rpm: 60, tpm: 100000}, names: {batch: {rpm: 600}}}
//	  model: {names: {gpt-4o: {tpm: 2000000}}}
//	budget_webhook: https://hooks.example.com/llmscope
func budgetConfig(bs budgetSections) (cfg budget.Config, webhook string, ok bool, err error) {
	if bs.budgets.YAML != nil {
		if err := decodeStrict(bs.budgets.YAML, &cfg.Budgets); err != nil {
			return cfg, "", false, fmt.Errorf("config: budgets: %w", err)
		}
		for i := range cfg.Budgets {
			if err := cfg.Budgets[i].Validate(); err != nil {
				return cfg, "", false, fmt.Errorf("config: budgets: %w", err)
			}
		}
	}
	if bs.rates.YAML != nil {
		if err := decodeStrict(bs.rates.YAML, &cfg.Rates); err != nil {
			return cfg, "", false, fmt.Errorf("config: rate_limits: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", false, fmt.Errorf("config: %w", err)
	}
	if bs.webhook.YAML != nil {
		if err := yaml.Unmarshal(bs.webhook.YAML, &webhook); err != nil {
			return cfg, "", false, fmt.Errorf("config: budget_webhook: want a URL: %w", err)
		}
		if u, err := url.Parse(webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, "", false, fmt.Errorf("config: budget_webhook: %q is not an http(s) URL", webhook)
		}
		if len(cfg.Budgets) == 0 {
			return cfg, "", false, fmt.Errorf("config: budget_webhook is set but there are no budgets:")
		}
	}
	r := cfg.Rates
	hasRates := r.Key.Default != (budget.Rate{}) || len(r.Key.Names) > 0 || r.User.Default != (budget.Rate{}) ||
		len(r.User.Names) > 0 || r.Model.Default != (budget.Rate{}) || len(r.Model.Names) > 0
	return cfg, webhook, len(cfg.Budgets) > 0 || hasRates, nil
}

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// offsetClock is the system clock shifted by d (clockOffsetEnv).
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(c.d) }

// budgetClock returns the clock of budgets and rate limits: the system
// clock, shifted by clockOffsetEnv when it is set.
func budgetClock() (budget.Clock, error) {
	v := os.Getenv(clockOffsetEnv)
	if v == "" {
		return budget.SystemClock{}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", clockOffsetEnv, err)
	}
	return offsetClock{d}, nil
}

// budgets is what serve runs for budgets and rate limits.
type budgets struct {
	gate   *gate.Gate
	stop   func()                                      // ends the syncs (after a last one) and the janitor
	spends func(context.Context) ([]web.Budget, error) // for /api/budgets; nil without budgets
}

// newBudgets builds serve's budget gate from the config file's sections;
// without budgets and rate limits the gate only refuses (403) a model a
// client key may not call. The store is
// the Ledger when it is one (budgets survive restarts and are shared by
// the gateways on one Postgres); rate limit counts live in the store when
// it is shared (Postgres), else in memory (one gateway: exact without a
// write per request). It starts the Enforcer's syncs, a janitor that
// expires silent gateways' allowance and prunes old counts, and the gauge
// updates; stop ends them.
func newBudgets(ctx context.Context, o *serveOptions, store llmscope.Store, prices *pricing.Table, m *prom.Metrics, logger *slog.Logger) (*budgets, error) {
	cfg, webhook, ok, err := budgetConfig(o.budgetSecs)
	if err != nil {
		return nil, err
	}
	if !ok { // only the client keys' models are checked
		return &budgets{gate: gate.New(gate.Options{KeyOf: clientKeyOf}), stop: func() {}}, nil
	}
	clock, err := budgetClock()
	if err != nil {
		return nil, err
	}
	log := logger.With("component", "budget")
	bm, err := prom.NewBudget(m.Registry(), 0)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(cfg.Budgets))
	for i, b := range cfg.Budgets {
		names[i] = b.Name
	}
	bm.Budgets(names)
	// Not serve's context, which ends before the requests in flight do:
	// their spend is committed by the last sync, which stop runs after
	// the gateway drained.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	alerts := startWebhook(ctx, &wg, webhook, log)
	var ledger budget.Ledger = new(budget.MemLedger)
	if l, ok := store.(budget.Ledger); ok {
		ledger = l
	}
	var counter budget.Counter
	if c, ok := store.(budget.Counter); ok && isPostgresURL(o.db.val) {
		counter = c
	}
	var errMu sync.Mutex
	var lastErr time.Time
	onError := func(err error) { // at most one line per 10 s: an outage must not flood the log
		errMu.Lock()
		defer errMu.Unlock()
		if time.Since(lastErr) > 10*time.Second {
			lastErr = time.Now()
			log.Warn("budget store error: admitting requests meanwhile", "err", err)
		}
	}
	enf, err := budget.New(cfg.Budgets, budget.Options{Clock: clock, Ledger: ledger, OnError: onError, OnSoft: func(a budget.Alert) {
		bm.SoftAlert(a.Budget)
		log.Warn("budget soft limit crossed", "budget", a.Budget, "kind", a.Subject.Kind, "subject", a.Subject.Name,
			"spent_usd", a.SpentUSD, "limit_usd", a.LimitUSD, "soft", a.Soft)
		alerts(a)
	}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("config: %w", err)
	}
	lim, err := budget.NewLimiter(cfg.Rates, counter, clock)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("config: %w", err)
	}
	var unpricedWarned sync.Map
	gate := gate.New(gate.Options{
		Enforcer: enf, Limiter: lim, Prices: prices, Clock: clock, OnError: onError, KeyOf: clientKeyOf,
		OnRefused:     bm.Refused,
		OnRateLimited: func(k budget.Kind, u budget.Unit) { bm.RateLimited(string(k), string(u)) },
		OnUnpriced: func(model string) {
			bm.Unpriced()
			if _, seen := unpricedWarned.LoadOrStore(model, true); !seen && unpricedCount(&unpricedWarned) <= 100 {
				log.Warn("no price for model: its calls are admitted without a budget reservation", "model", model)
			}
		},
	})
	wg.Add(3)
	go func() { defer wg.Done(); enf.Run(ctx) }()
	go func() { defer wg.Done(); gate.Run(ctx) }()
	go func() { defer wg.Done(); budgetJanitor(ctx, enf, store, clock, bm, onError) }()
	log.Info("budgets and rate limits on", "budgets", names, "ledger", fmt.Sprintf("%T", ledger), "shared_counter", counter != nil)
	return &budgets{gate: gate, stop: func() { cancel(); wg.Wait() }, spends: budgetSpends(enf, cfg.Budgets, clock)}, nil
}

// clientKeyOf returns the client key that authenticated the request of
// ctx when it limits its models or expires (revoked keys never get this
// far: package auth refuses them).
func clientKeyOf(ctx context.Context) (*budget.Key, bool) {
	k, ok := llmscope.ClientKeyFrom(ctx)
	if !ok || len(k.Models) == 0 && k.Expires.IsZero() {
		return nil, false
	}
	return &budget.Key{Name: k.Name, User: k.User, Team: k.Team, Models: k.Models, Expires: k.Expires}, true
}

func unpricedCount(m *sync.Map) (n int) {
	m.Range(func(any, any) bool { n++; return n <= 100 })
	return n
}

// budgetJanitor, until ctx ends: every 5 s sets the spend gauges; every
// minute gives back the allowance of gateways silent for 10 minutes and
// deletes the rate counts of windows before the previous one.
func budgetJanitor(ctx context.Context, enf *budget.Enforcer, store llmscope.Store, clock budget.Clock, bm *prom.Budget, onError func(error)) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		spends, err := enf.Spends(ctx, prom.DefaultSubjectCap)
		if err != nil && ctx.Err() == nil {
			onError(err)
		}
		for _, s := range spends {
			bm.SetSpend(s.Budget, s.Subject.String(), s.SpentUSD, s.LimitUSD)
		}
		if time.Since(last) < time.Minute {
			continue
		}
		last = time.Now()
		if hx, ok := store.(budget.HolderExpirer); ok {
			if _, err := hx.ExpireHolders(ctx, 10*time.Minute); err != nil && ctx.Err() == nil {
				onError(fmt.Errorf("expire holders: %w", err))
			}
		}
		if cp, ok := store.(budget.CounterPruner); ok {
			sec := clock.Now().Unix()
			if _, err := cp.PruneCounters(ctx, sec-sec%60-60); err != nil && ctx.Err() == nil {
				onError(fmt.Errorf("prune counters: %w", err))
			}
		}
	}
}

// startWebhook returns the function that posts a soft alert to url as
// JSON, best effort: alerts wait in a queue of 64 (more are dropped and
// logged), one at a time, each with a 5 s timeout, never on the request
// path. An empty url posts nothing.
func startWebhook(ctx context.Context, wg *sync.WaitGroup, url string, log *slog.Logger) func(budget.Alert) {
	if url == "" {
		return func(budget.Alert) {}
	}
	q := make(chan budget.Alert, 64)
	client := &http.Client{Timeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-q:
				body, _ := json.Marshal(map[string]any{
					"event": "budget_soft_limit", "budget": a.Budget, "kind": a.Subject.Kind, "subject": a.Subject.Name,
					"period": a.Period, "period_start": a.PeriodStart, "soft": a.Soft, "limit_usd": a.LimitUSD, "spent_usd": a.SpentUSD,
				})
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					log.Warn("budget webhook failed", "err", webhookErr(err))
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode >= 300 {
					log.Warn("budget webhook refused the alert", "status", resp.StatusCode)
				}
			}
		}
	}()
	return func(a budget.Alert) {
		select {
		case q <- a:
		default:
			log.Warn("budget webhook queue full: alert dropped", "budget", a.Budget)
		}
	}
}

// webhookErr is err without the URL a *url.Error names: the webhook's
// URL may carry a token.
func webhookErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// maxDashboardBudgets bounds the (budget, subject) pairs /api/budgets lists.
const maxDashboardBudgets = 500

// budgetSpends returns what /api/budgets shows: the spend of every budget
// and subject enf has accounted, in the current period, with the period's
// bounds.
func budgetSpends(enf *budget.Enforcer, defs []budget.Budget, clock budget.Clock) func(context.Context) ([]web.Budget, error) {
	byName := make(map[string]budget.Budget, len(defs))
	for _, b := range defs {
		byName[b.Name] = b
	}
	return func(ctx context.Context) ([]web.Budget, error) {
		spends, err := enf.Spends(ctx, maxDashboardBudgets)
		if err != nil {
			return nil, err
		}
		now := clock.Now()
		out := make([]web.Budget, 0, len(spends))
		for _, s := range spends {
			def := byName[s.Budget]
			start, end := def.Period.Bounds(now)
			if def.Period == budget.Total {
				start = time.Time{} // no period: no rate to project
			}
			out = append(out, web.Budget{Budget: s.Budget, Kind: string(s.Subject.Kind), Subject: s.Subject.Name,
				Period: string(def.Period), PeriodStart: start, ResetsAt: end, LimitUSD: s.LimitUSD, SpentUSD: s.SpentUSD})
		}
		return out, nil
	}
}
