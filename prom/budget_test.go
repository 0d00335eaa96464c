package prom_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"llmscope/prom"
)

// The spend gauges keep at most the cap of (budget, subject) pairs: later
// pairs are counted as dropped, known pairs keep updating; budgets'
// refusal and soft alert series exist from the start at 0.
func TestBudgetMetricsCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := prom.NewBudget(reg, 2)
	if err != nil {
		t.Fatal(err)
	}
	b.Budgets([]string{"daily"})
	b.SetSpend("daily", "user:a", 1, 5)
	b.SetSpend("daily", "user:b", 2, 5)
	b.SetSpend("daily", "user:c", 3, 5) // over the cap
	b.SetSpend("daily", "user:a", 4, 5) // known: updated
	b.Refused("daily")
	b.RateLimited("key", "requests")
	b.Unpriced()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"llmscope_budget_spent_usd,budget=daily,subject=user:a": 4,
		"llmscope_budget_spent_usd,budget=daily,subject=user:b": 2,
		"llmscope_budget_limit_usd,budget=daily,subject=user:a": 5,
		"llmscope_budget_limit_usd,budget=daily,subject=user:b": 5,
		"llmscope_budget_subjects_dropped_total":                1,
		"llmscope_budget_refused_total,budget=daily":            1,
		"llmscope_budget_soft_alerts_total,budget=daily":        0,
		"llmscope_rate_limited_total,kind=key,unit=requests":    1,
		"llmscope_budget_unpriced_total":                        1,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %t), want %v", k, g, ok, v)
		}
	}
	if _, err := prom.NewBudget(reg, 2); err == nil {
		t.Error("registering twice on one registry: no error")
	}
}
