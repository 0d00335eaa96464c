package prom

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSubjectCap is how many (budget, subject) pairs the budget gauges
// keep when NewBudget's cap is 0.
const DefaultSubjectCap = 100

// Budget holds the collectors of budgets and rate limits: spend and limit
// gauges per budget and subject (at most a cap of pairs: the first ones
// set; later pairs are counted in llmscope_budget_subjects_dropped_total
// instead), refusals, soft alerts, rate limit refusals and calls admitted
// without a price. Its methods are safe for concurrent use.
type Budget struct {
	spent, limit    *prometheus.GaugeVec
	refused, soft   *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	unpriced        prometheus.Counter
	subjectsDropped prometheus.Counter

	mu    sync.Mutex
	pairs map[[2]string]bool
	cap   int
}

// NewBudget registers the budget collectors on reg, keeping at most
// subjectCap (budget, subject) pairs in the gauges (0: DefaultSubjectCap).
func NewBudget(reg prometheus.Registerer, subjectCap int) (*Budget, error) {
	if subjectCap <= 0 {
		subjectCap = DefaultSubjectCap
	}
	b := &Budget{
		spent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmscope_budget_spent_usd",
			Help: "Settled spend of a budget's subject in its current period, all gateways together, in USD.",
		}, []string{"budget", "subject"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmscope_budget_limit_usd",
			Help: "A budget's limit per subject and period, in USD.",
		}, []string{"budget", "subject"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_budget_refused_total",
			Help: "Requests refused (429 budget_exceeded) because they would cross a budget.",
		}, []string{"budget"}),
		soft: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_budget_soft_alerts_total",
			Help: "Soft limit crossings of a budget (once per subject and period).",
		}, []string{"budget"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmscope_rate_limited_total",
			Help: "Requests refused (429 rate_limit_exceeded) by a rate limit, by subject kind (key, user, model) and unit (requests, tokens).",
		}, []string{"kind", "unit"}),
		unpriced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmscope_budget_unpriced_total",
			Help: "Requests admitted without a budget reservation because their model has no known price.",
		}),
		subjectsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmscope_budget_subjects_dropped_total",
			Help: "Budget gauge updates dropped because the (budget, subject) pair cap was reached.",
		}),
		pairs: make(map[[2]string]bool),
		cap:   subjectCap,
	}
	for _, c := range []prometheus.Collector{b.spent, b.limit, b.refused, b.soft, b.rateLimited, b.unpriced, b.subjectsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prom: register budget metrics: %w", err)
		}
	}
	return b, nil
}

// SetSpend sets the spend and limit gauges of budget's subject, unless the
// pair is new and the cap is reached (then it is counted as dropped).
func (b *Budget) SetSpend(budget, subject string, spentUSD, limitUSD float64) {
	k := [2]string{budget, subject}
	b.mu.Lock()
	ok := b.pairs[k]
	if !ok && len(b.pairs) < b.cap {
		b.pairs[k], ok = true, true
	}
	b.mu.Unlock()
	if !ok {
		b.subjectsDropped.Inc()
		return
	}
	b.spent.WithLabelValues(budget, subject).Set(spentUSD)
	b.limit.WithLabelValues(budget, subject).Set(limitUSD)
}

// Refused counts one budget refusal.
func (b *Budget) Refused(budget string) { b.refused.WithLabelValues(budget).Inc() }

// SoftAlert counts one soft limit crossing.
func (b *Budget) SoftAlert(budget string) { b.soft.WithLabelValues(budget).Inc() }

// RateLimited counts one rate limit refusal; kind and unit come from the
// config's fixed sets (key, user, model; requests, tokens).
func (b *Budget) RateLimited(kind, unit string) { b.rateLimited.WithLabelValues(kind, unit).Inc() }

// Unpriced counts one request admitted without a budget reservation.
func (b *Budget) Unpriced() { b.unpriced.Inc() }

// Budgets declares the refusal and soft alert series of each budget at 0,
// so that rate() and alerts see them from the start.
func (b *Budget) Budgets(names []string) {
	for _, n := range names {
		b.refused.WithLabelValues(n)
		b.soft.WithLabelValues(n)
	}
}
