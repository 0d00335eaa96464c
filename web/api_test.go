package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
	"llmscope/web"
)

func TestParseFilter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	q, _ := url.ParseQuery("limit=7&model=m&run=r&experiment=e&since=1h&until=2026-01-02T03:00:00Z")
	f, err := web.ParseFilter(q, now)
	if err != nil {
		t.Fatal(err)
	}
	want := llmscope.Filter{Limit: 7, Model: "m", Run: "r", Experiment: "e", Since: now.Add(-time.Hour), Until: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	if f != want {
		t.Errorf("ParseFilter = %+v, want %+v", f, want)
	}
	for _, bad := range []string{"limit=-1", "limit=x", "limit=10001", "since=yesterday", "until=5"} {
		q, _ := url.ParseQuery(bad)
		if _, err := web.ParseFilter(q, now); err == nil {
			t.Errorf("ParseFilter(%s) accepted", bad)
		}
	}
}

func TestAPI(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Now().Add(-time.Minute)
	var calls []*llmscope.Call
	for i := range 10 {
		model := "a"
		if i%3 == 0 {
			model = "b"
		}
		calls = append(calls, &llmscope.Call{ID: llmscope.NewID(), Start: start.Add(time.Duration(i) * time.Second), Operation: "chat",
			RequestModel: model, Status: 200, DurationMS: float64(10 * (i + 1)), Usage: llmscope.Usage{InputTokens: int64(i), OutputTokens: 2, TotalTokens: int64(i) + 2}})
	}
	calls[9].Status, calls[9].ErrorType = 500, "500"
	if err := store.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	healthy := errors.New("exporter down")
	srv := httptest.NewServer(web.New(store, map[string]web.Health{"mlflow": func() error { return healthy }}, nil))
	defer srv.Close()

	get := func(path string, want int, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stats llmscope.Stats
	get("/api/stats?group_by=model", 200, &stats)
	if stats.Totals.Calls != 10 || stats.Totals.Errors != 1 || stats.Totals.InputTokens != 45 || stats.Totals.LatencyP50MS != 50 {
		t.Errorf("totals %+v", stats.Totals)
	}
	if len(stats.Groups) != 2 || stats.Groups[0].Key != "a" || stats.Groups[0].Calls != 6 {
		t.Errorf("groups %+v", stats.Groups)
	}
	var list struct{ Calls []llmscope.Call }
	get("/api/calls?model=b&limit=2", 200, &list)
	if len(list.Calls) != 2 || list.Calls[0].ID != calls[9].ID || list.Calls[1].ID != calls[6].ID {
		t.Errorf("list = %+v", list.Calls)
	}
	get("/api/stats?group_by=user", 400, nil)
	var health struct {
		Status string
		Checks map[string]string
	}
	get("/healthz", 503, &health)
	if health.Status != "degraded" || health.Checks["mlflow"] != "exporter down" {
		t.Errorf("healthz = %+v", health)
	}
	healthy = nil
	get("/healthz", 200, &health)
}
