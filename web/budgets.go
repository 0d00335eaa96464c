package web

import (
	"context"
	"net/http"
	"time"
)

// Budget is one budget's spend for one subject in the current period, as
// /api/budgets shows it.
type Budget struct {
	Budget      string    `json:"budget"`
	Kind        string    `json:"kind"`         // key, user, team or experiment
	Subject     string    `json:"subject"`      // the key, user, team or experiment
	Period      string    `json:"period"`       // day, week, month or total
	PeriodStart time.Time `json:"period_start"` // zero for a total budget
	ResetsAt    time.Time `json:"resets_at"`    // zero for a total budget (null in JSON)
	LimitUSD    float64   `json:"limit_usd"`
	SpentUSD    float64   `json:"spent_usd"` // settled by every gateway
}

// budgetJSON is Budget with the figures the dashboard derives: the share
// spent, the spend rate over the period so far, and when the budget runs
// out at that rate (null when it does not within the period).
type budgetJSON struct {
	Budget
	ResetsAt    *time.Time `json:"resets_at"`
	Share       float64    `json:"share"`
	RateUSDHour float64    `json:"rate_usd_per_hour"`
	ExhaustsAt  *time.Time `json:"exhausts_at"`
}

// MountBudgets serves GET /api/budgets: {"budgets":[…]} from spends, the
// spend of every budget and subject seen, with the share spent, the
// average spend rate of the period so far and the time the budget runs
// out at that rate when that is before the period ends (the guard in
// front asks for the admin token). Call it before serving.
func (h *Handler) MountBudgets(spends func(context.Context) ([]Budget, error)) {
	h.mux.HandleFunc("GET /api/budgets", func(w http.ResponseWriter, r *http.Request) {
		bs, err := spends(r.Context())
		if err != nil {
			h.log.Warn("budgets", "err", err)
			writeError(w, http.StatusServiceUnavailable, "server_error", "the budgets could not be read: the store did not answer")
			return
		}
		out := make([]budgetJSON, len(bs))
		now := time.Now()
		for i, b := range bs {
			out[i] = exhaustion(b, now)
		}
		writeJSON(w, http.StatusOK, map[string]any{"budgets": out})
	})
}

// exhaustion derives b's share, rate and exhaustion time at now.
func exhaustion(b Budget, now time.Time) budgetJSON {
	j := budgetJSON{Budget: b}
	if !b.ResetsAt.IsZero() {
		j.ResetsAt = &b.ResetsAt
	}
	if b.LimitUSD > 0 {
		j.Share = b.SpentUSD / b.LimitUSD
	}
	elapsed := now.Sub(b.PeriodStart)
	if b.PeriodStart.IsZero() || elapsed <= 0 || b.SpentUSD <= 0 {
		return j // a total budget has no period to average over
	}
	j.RateUSDHour = b.SpentUSD / elapsed.Hours()
	left := b.LimitUSD - b.SpentUSD
	if left <= 0 {
		j.ExhaustsAt = &now
		return j
	}
	at := now.Add(time.Duration(left / b.SpentUSD * float64(elapsed)))
	if b.ResetsAt.IsZero() || at.Before(b.ResetsAt) {
		j.ExhaustsAt = &at
	}
	return j
}
