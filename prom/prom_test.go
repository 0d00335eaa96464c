package prom

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsExposed(t *testing.T) {
	depth := 7
	m := New(func() int { return depth })
	m.CostUnknown()
	m.CostUnknown()
	m.Dropped("queue_full")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"llmscope_cost_unknown_total 2",
		`llmscope_dropped_total{reason="queue_full"} 1`,
		"llmscope_store_queue_depth 7",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
