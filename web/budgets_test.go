package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBudgetsAPI(t *testing.T) {
	start := time.Now().Add(-2 * time.Hour)
	rows := []Budget{
		// $1 of $4 in 2 h: $0.50/h, runs out in 6 h, before the reset in 22 h.
		{Budget: "team-day", Kind: "team", Subject: "search", Period: "day", PeriodStart: start, ResetsAt: start.Add(24 * time.Hour), LimitUSD: 4, SpentUSD: 1},
		// $1 of $100 in 2 h: would run out after the reset: no exhaustion.
		{Budget: "key-day", Kind: "key", Subject: "ci", Period: "day", PeriodStart: start, ResetsAt: start.Add(24 * time.Hour), LimitUSD: 100, SpentUSD: 1},
		// A total budget has no period and no reset: no rate, no projection.
		{Budget: "all", Kind: "experiment", Subject: "e", Period: "total", LimitUSD: 1, SpentUSD: 1.5},
	}
	var fail bool
	h := New(nil, nil, nil)
	h.MountBudgets(func(context.Context) ([]Budget, error) {
		if fail {
			return nil, errors.New("db down")
		}
		return rows, nil
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/budgets", nil))
	var got struct {
		Budgets []struct {
			Budget     string
			Share      float64
			Rate       float64    `json:"rate_usd_per_hour"`
			ExhaustsAt *time.Time `json:"exhausts_at"`
			ResetsAt   *time.Time `json:"resets_at"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || len(got.Budgets) != 3 {
		t.Fatalf("%d %s (%v)", rec.Code, rec.Body, err)
	}
	b := got.Budgets[0]
	if b.Share != 0.25 || b.Rate < 0.49 || b.Rate > 0.51 || b.ExhaustsAt == nil ||
		b.ExhaustsAt.Sub(time.Now().Add(6*time.Hour)).Abs() > time.Minute {
		t.Errorf("team-day: %+v, want 25%% used, $0.50/h, out in 6 h", b)
	}
	if got.Budgets[1].ExhaustsAt != nil {
		t.Errorf("key-day runs out after its reset, yet exhausts_at = %v", got.Budgets[1].ExhaustsAt)
	}
	if c := got.Budgets[2]; c.ResetsAt != nil || c.ExhaustsAt != nil || c.Rate != 0 || c.Share != 1.5 {
		t.Errorf("total budget over its limit: %+v", c)
	}
	fail = true
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/budgets", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d %s", rec.Code, rec.Body)
	}
}
