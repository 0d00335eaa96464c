package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
	"llmscope/web"
)

// statsServer serves the API over a SQLite store holding calls.
func statsServer(t *testing.T, calls []*llmscope.Call) *httptest.Server {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Write(t.Context(), calls); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(store, nil, nil))
	t.Cleanup(srv.Close)
	return srv
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// groupedCalls: experiments a and b, runs r1, r2 and none; only some calls
// stream, and group (b, "") never does.
func groupedCalls() []*llmscope.Call {
	start := time.Now().Add(-time.Minute)
	var calls []*llmscope.Call
	for i, g := range []struct{ exp, run string }{
		{"a", "r1"}, {"a", "r1"}, {"a", "r1"}, {"a", "r2"}, {"a", "r2"}, {"b", ""}, {"a", "r1"},
	} {
		c := &llmscope.Call{ID: fmt.Sprintf("c%02d", i), Start: start.Add(time.Duration(i) * time.Second), Operation: "chat", Provider: "openai",
			RequestModel: []string{"m1", "m2"}[i%2], Status: 200, DurationMS: float64(10 * (i + 1)), Experiment: g.exp, Run: g.run, User: "u",
			Usage: llmscope.Usage{InputTokens: int64(i), OutputTokens: 2, TotalTokens: int64(i) + 2}}
		if g.exp == "a" && i%2 == 0 {
			c.Stream, c.TTFTMS = true, float64(i+1)
		}
		calls = append(calls, c)
	}
	return calls
}

// TestStatsGroupBy: /api/stats?group_by=experiment,run gives one group per
// pair with its keys; TTFT is null for a group that never streamed.
func TestStatsGroupBy(t *testing.T) {
	srv := statsServer(t, groupedCalls())
	code, b := getBody(t, srv.URL+"/api/stats?group_by=experiment,run")
	if code != 200 {
		t.Fatalf("status %d: %s", code, b)
	}
	var raw struct {
		GroupBy []string `json:"group_by"`
		Groups  []map[string]any
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if strings.Join(raw.GroupBy, ",") != "experiment,run" || len(raw.Groups) != 3 {
		t.Fatalf("grouped stats: %s", b)
	}
	type want struct {
		exp, run string
		calls    float64
		ttft     any
	}
	for i, w := range []want{{"a", "r1", 4, 3.0}, {"a", "r2", 2, 5.0}, {"b", "", 1, nil}} {
		g := raw.Groups[i]
		keys, _ := g["keys"].(map[string]any)
		if keys["experiment"] != w.exp || keys["run"] != w.run || len(keys) != 2 || g["calls"] != w.calls || g["ttft_p50_ms"] != w.ttft {
			t.Errorf("group %d = %v, want %+v", i, g, w)
		}
		if _, ok := g["key"]; ok {
			t.Errorf("group %d has a \"key\" with two group keys: %v", i, g)
		}
	}
	var st llmscope.Stats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Groups[1].Values != (llmscope.GroupValues{Experiment: "a", Run: "r2"}) || st.Totals.Calls != 7 || st.Truncated || st.GroupsTotal != 3 {
		t.Errorf("decoded: %+v", st)
	}

	// One key other than model: "key" is its value.
	_, b = getBody(t, srv.URL+"/api/stats?group_by=user")
	if !strings.Contains(string(b), `"keys":{"user":"u"},"key":"u","calls":7`) {
		t.Errorf("group_by=user: %s", b)
	}
}

// TestStatsGroupByModelShape: group_by=model and no group_by give the same
// answer, with "key" the model as the dashboard and web.Client read it.
func TestStatsGroupByModelShape(t *testing.T) {
	srv := statsServer(t, groupedCalls())
	_, def := getBody(t, srv.URL+"/api/stats")
	_, byModel := getBody(t, srv.URL+"/api/stats?group_by=model")
	if string(def) != string(byModel) {
		t.Errorf("default and group_by=model differ:\n%s\n%s", def, byModel)
	}
	var raw struct {
		Totals map[string]any
		Groups []map[string]any
	}
	if err := json.Unmarshal(byModel, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"calls", "errors", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens",
		"cost_usd", "cost_unknown", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms"} {
		if _, ok := raw.Totals[f]; !ok {
			t.Errorf("totals lack %s", f)
		}
		if _, ok := raw.Groups[0][f]; !ok {
			t.Errorf("group lacks %s", f)
		}
	}
	if _, ok := raw.Totals["key"]; ok || raw.Groups[0]["key"] != "m1" || len(raw.Groups) != 2 {
		t.Errorf("group_by=model: %s", byModel)
	}
	c := &web.Client{Base: srv.URL}
	st, err := c.Stats(t.Context(), llmscope.Filter{})
	if err != nil || len(st.Groups) != 2 || st.Groups[0].Key != "m1" || st.Groups[0].Calls != 4 {
		t.Errorf("Client.Stats = %+v, %v", st, err)
	}
}

// TestStatsBadGrouping: an unknown key or a bad max_groups is a 400 that
// names what is allowed.
func TestStatsBadGrouping(t *testing.T) {
	srv := statsServer(t, nil)
	for q, want := range map[string]string{
		"group_by=color":        "model, experiment, run, user, session, provider, operation",
		"group_by=run,run":      "twice",
		"group_by=model,":       "allowed",
		"max_groups=0":          "from 1 to",
		"max_groups=-3":         "from 1 to",
		"max_groups=many":       "from 1 to",
		"group_by=run&limit=-1": "limit",
	} {
		code, b := getBody(t, srv.URL+"/api/stats?"+q)
		var e struct {
			Error struct{ Message, Type string }
		}
		_ = json.Unmarshal(b, &e)
		if code != 400 || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, want) {
			t.Errorf("%s: %d %s, want 400 naming %q", q, code, b, want)
		}
	}
}

// TestStatsMaxGroups: the groups are cut to max_groups, largest first, and
// the answer says so; the totals still cover every call.
func TestStatsMaxGroups(t *testing.T) {
	var calls []*llmscope.Call
	start := time.Now().Add(-time.Minute)
	for i := range 30 {
		calls = append(calls, &llmscope.Call{ID: fmt.Sprintf("c%02d", i), Start: start, RequestModel: "m", Status: 200, DurationMS: 1,
			User: fmt.Sprintf("u%02d", i%10+min(i, 3))})
	}
	srv := statsServer(t, calls)
	_, b := getBody(t, srv.URL+"/api/stats?group_by=user&max_groups=2")
	var st llmscope.Stats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Groups) != 2 || !st.Truncated || st.GroupsTotal != 12 || st.Totals.Calls != 30 || st.Groups[0].Calls < st.Groups[1].Calls {
		t.Errorf("max_groups=2: %s", b)
	}
	_, b = getBody(t, srv.URL+"/api/stats?group_by=user")
	if err := json.Unmarshal(b, &st); err != nil || len(st.Groups) != 12 || st.Truncated {
		t.Errorf("uncut: %s", b)
	}
}
