package web_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/auth"
	"llmscope/sqlite"
	"llmscope/web"
)

// compareCalls returns n calls of experiment exp and run run, their
// latencies drawn around median ms (log-normal, spread 30 %), the last
// start one minute ago. Every third call streams when stream is set; every
// tenth fails; cost is known when priced.
func compareCalls(r *rand.Rand, exp, run string, n int, median float64, stream, priced bool) []*llmscope.Call {
	now := time.Now().Add(-time.Minute)
	var calls []*llmscope.Call
	for i := range n {
		lat := median * (1 + 0.3*r.NormFloat64())
		if lat < 1 {
			lat = 1
		}
		c := &llmscope.Call{ID: llmscope.NewID(), Start: now.Add(-time.Duration(i) * time.Second), Operation: "chat", Provider: "openai",
			Endpoint: "/v1/chat/completions", RequestModel: "gpt-4o-mini", Status: 200, DurationMS: lat,
			Usage:      llmscope.Usage{InputTokens: 100, OutputTokens: 50, TotalTokens: 150, Source: "reported"},
			Experiment: exp, Run: run}
		if stream && i%3 == 0 {
			c.Stream, c.TTFTMS = true, lat/4
		}
		if i%10 == 9 {
			c.Status, c.ErrorType = 500, "server_error"
		}
		if priced {
			c.Cost = &llmscope.Cost{InputUSD: 0.001, OutputUSD: 0.002, TotalUSD: 0.003, PriceSource: "test"}
		}
		c.TraceID = llmscope.TraceIDFor(c.ID)
		calls = append(calls, c)
	}
	return calls
}

func near(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func compareServer(t *testing.T, calls ...[]*llmscope.Call) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cmp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, cs := range calls {
		if err := store.Write(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(web.New(store, nil, nil))
	t.Cleanup(srv.Close)
	return srv
}

func getCompare(t *testing.T, srv *httptest.Server, query string, want int) (web.Comparison, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/compare?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET /api/compare?%s = %d, want %d: %s", query, resp.StatusCode, want, raw)
	}
	var c web.Comparison
	if want == http.StatusOK {
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
	}
	return c, string(raw)
}

func TestCompareSlowerExperiment(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	srv := compareServer(t,
		compareCalls(r, "demo-a", "r1", 60, 100, true, true),
		compareCalls(r, "demo-b", "r2", 50, 250, false, true),
		compareCalls(r, "demo-c", "r3", 40, 100, true, false),
		compareCalls(r, "other", "r4", 30, 5000, true, true))
	c, _ := getCompare(t, srv, "by=experiment&values=demo-a,demo-b,demo-c&since=1h", 200)
	if c.By != "experiment" || len(c.Values) != 3 || len(c.Diffs) != 2 || c.Limit != web.DefaultCompareCalls {
		t.Fatalf("comparison = %+v", c)
	}
	a, b, cc := c.Values[0], c.Values[1], c.Values[2]
	for _, v := range []struct {
		cv    *web.CompareValue
		name  string
		calls int
	}{{a, "demo-a", 60}, {b, "demo-b", 50}, {cc, "demo-c", 40}} {
		if v.cv.Value != v.name || v.cv.Calls != v.calls || v.cv.CallsInWindow != int64(v.calls) || v.cv.Truncated || len(v.cv.LatencyMS) != v.calls {
			t.Errorf("%s: value %q, %d calls (%d in window, truncated %v, %d samples), want %d", v.name, v.cv.Value, v.cv.Calls,
				v.cv.CallsInWindow, v.cv.Truncated, len(v.cv.LatencyMS), v.calls)
		}
		if v.cv.Errors != v.calls/10 || *v.cv.ErrorRate != float64(v.calls/10)/float64(v.calls) {
			t.Errorf("%s: %d errors, rate %v", v.name, v.cv.Errors, *v.cv.ErrorRate)
		}
		if *v.cv.InputPerCall != 100 || *v.cv.OutputPerCall != 50 {
			t.Errorf("%s: tokens per call %v / %v, want 100 / 50", v.name, *v.cv.InputPerCall, *v.cv.OutputPerCall)
		}
		if p50, p95, p99 := *v.cv.LatencyP50MS, *v.cv.LatencyP95MS, *v.cv.LatencyP99MS; !(p50 <= p95 && p95 <= p99) {
			t.Errorf("%s: percentiles out of order %v %v %v", v.name, p50, p95, p99)
		}
	}
	if a.TTFTP50MS == nil || a.Streamed != 20 || len(a.TTFTMS) != 20 {
		t.Errorf("demo-a: TTFT p50 %v over %d streamed calls (%d samples), want 20", a.TTFTP50MS, a.Streamed, len(a.TTFTMS))
	}
	if b.TTFTP50MS != nil || b.TTFTP95MS != nil || b.Streamed != 0 || len(b.TTFTMS) != 0 {
		t.Errorf("demo-b streamed nothing, yet TTFT p50 %v, %d streamed", b.TTFTP50MS, b.Streamed)
	}
	if a.CostPerCall == nil || !near(*a.CostPerCall, 0.003) || a.CostPer1KToken == nil || !near(*a.CostPer1KToken, 0.02) {
		t.Errorf("demo-a: cost per call %v, per 1k tokens %v, want 0.003 and 0.02", deref(a.CostPerCall), deref(a.CostPer1KToken))
	}
	if cc.CostPerCall != nil || cc.CostPer1KToken != nil || cc.PricedCalls != 0 {
		t.Errorf("demo-c is unpriced, yet cost per call %v", cc.CostPerCall)
	}

	db := c.Diffs[0]
	if db.Value != "demo-b" || db.Base != "demo-a" || db.Verdict != "slower" || db.PValue == nil || *db.PValue >= 0.05 {
		t.Errorf("demo-b against demo-a: %+v, want slower with p < 0.05", db)
	}
	if r := *db.LatencyP50Ratio; r < 2 || r > 3.2 {
		t.Errorf("p50 ratio %v, want about 2.5", r)
	}
	if !strings.HasPrefix(db.Text, "demo-b is ") || !strings.Contains(db.Text, "× slower than demo-a (p < 0.001)") {
		t.Errorf("text %q", db.Text)
	}
	if !near(*db.CostPerCallRatio, 1) || !near(*db.ErrorRateDiff, 0) {
		t.Errorf("cost ratio %v, error rate difference %v, want 1 and 0", *db.CostPerCallRatio, *db.ErrorRateDiff)
	}
	if dc := c.Diffs[1]; dc.Value != "demo-c" || dc.CostPerCallRatio != nil || dc.PValue == nil {
		t.Errorf("demo-c (unpriced) against demo-a: %+v", dc)
	}

	// The other way round: demo-a is faster than demo-b.
	c, _ = getCompare(t, srv, "by=experiment&values=demo-b,demo-a", 200)
	if d := c.Diffs[0]; d.Verdict != "faster" || !strings.Contains(d.Text, "demo-a is ") || !strings.Contains(d.Text, "× faster than demo-b") {
		t.Errorf("demo-a against demo-b: %+v", d)
	}
	// By run.
	c, _ = getCompare(t, srv, "by=run&values=r2,r1&since=1h", 200)
	if c.By != "run" || c.Values[0].Calls != 50 || c.Values[1].Calls != 60 || c.Diffs[0].Verdict != "faster" {
		t.Errorf("by run: %+v %+v", c.Values[0], c.Diffs[0])
	}
}

func TestCompareEqualDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	a := compareCalls(r, "same-a", "", 200, 300, false, true)
	b := compareCalls(r, "same-b", "", 200, 300, false, true)
	// Identical latencies, in another order: p is 1.
	c := compareCalls(r, "copy", "", 200, 0, false, true)
	for i := range c {
		c[i].DurationMS = a[len(a)-1-i].DurationMS
	}
	srv := compareServer(t, a, b, c)
	cmp, _ := getCompare(t, srv, "by=experiment&values=same-a,same-b,copy", 200)
	for _, d := range cmp.Diffs {
		if d.Verdict != "no significant difference" || *d.PValue < 0.05 || !strings.Contains(d.Text, "no significant difference") {
			t.Errorf("%s against same-a: %+v", d.Value, d)
		}
	}
	if p := *cmp.Diffs[1].PValue; p < 0.999 {
		t.Errorf("identical latencies: p = %v, want 1", p)
	}
}

func TestCompareLimitsAndEmpty(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	srv := compareServer(t, compareCalls(r, "x", "", 50, 100, true, true), compareCalls(r, "y", "", 30, 100, true, true))
	c, _ := getCompare(t, srv, "by=experiment&values=x,y&limit=20", 200)
	x, y := c.Values[0], c.Values[1]
	if x.Calls != 20 || x.CallsInWindow != 50 || !x.Truncated || len(x.LatencyMS) != 20 {
		t.Errorf("limit=20: x has %d calls of %d (truncated %v, %d samples)", x.Calls, x.CallsInWindow, x.Truncated, len(x.LatencyMS))
	}
	if y.Calls != 20 || y.CallsInWindow != 30 || !y.Truncated {
		t.Errorf("limit=20: y has %d calls of %d (truncated %v)", y.Calls, y.CallsInWindow, y.Truncated)
	}
	// A value without calls: nulls and a verdict that says so.
	c, raw := getCompare(t, srv, "by=experiment&values=x,nothing", 200)
	n := c.Values[1]
	if n.Calls != 0 || n.ErrorRate != nil || n.LatencyP50MS != nil || n.CostPerCall != nil || n.LatencyMS == nil {
		t.Errorf("empty value: %+v", n)
	}
	if d := c.Diffs[0]; d.Verdict != "not enough data" || d.PValue != nil || !strings.Contains(d.Text, "no calls of nothing") {
		t.Errorf("empty value's diff: %+v", d)
	}
	if !strings.Contains(raw, `"ttft_p50_ms":null`) || !strings.Contains(raw, `"latency_samples_ms":[]`) {
		t.Errorf("nulls and empty samples not spelled out: %.300s", raw)
	}
	// The window applies.
	c, _ = getCompare(t, srv, "by=experiment&values=x,y&since=1s", 200)
	if c.Values[0].Calls != 0 {
		t.Errorf("since=1s: %d calls", c.Values[0].Calls)
	}
}

func TestCompareBadInput(t *testing.T) {
	srv := compareServer(t)
	seven := strings.Repeat("v,", 6) + "w"
	for q, want := range map[string]string{
		"values=a,b":                          `by must be "experiment" or "run"`,
		"by=model&values=a,b":                 `by must be "experiment" or "run"`,
		"by=experiment":                       "values must name 2 to 6 experiments",
		"by=experiment&values=a":              "values must name 2 to 6 experiments, comma-separated; it names 1",
		"by=run&values=a,,%20":                "values must name 2 to 6 runs",
		"by=run&values=" + seven:              `values names "v" twice`,
		"by=run&values=a,b,c,d,e,f,g":         "it names 7",
		"by=run&values=a,a":                   `values names "a" twice`,
		"by=run&values=a,b&limit=0":           `limit "0" is not an integer from 1 to 20000`,
		"by=run&values=a,b&limit=20001":       `limit "20001"`,
		"by=run&values=a,b&limit=x":           `limit "x"`,
		"by=run&values=a,b&since=yesterday":   "since:",
		"by=experiment&values=a,b&until=soon": "until:",
	} {
		_, raw := getCompare(t, srv, q, http.StatusBadRequest)
		var e struct {
			Error struct{ Message, Type string }
		}
		if err := json.Unmarshal([]byte(raw), &e); err != nil || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, want) {
			t.Errorf("%s: %s, want an invalid_request_error saying %q", q, raw, want)
		}
	}
	// POST is not a route.
	resp, err := http.Post(srv.URL+"/api/compare?by=run&values=a,b", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /api/compare = %d", resp.StatusCode)
	}
}

// TestCompareNeedsAuth: behind the guard, /api/compare answers 401 without
// the admin token and 200 with it, like the rest of /api/*.
func TestCompareNeedsAuth(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hash := auth.HashToken("compare-token-0123456789")
	guard, err := auth.New(auth.Config{AdminTokenHash: &hash})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(guard.Wrap(web.New(store, nil, nil)))
	defer srv.Close()
	for _, c := range []struct {
		header string
		want   int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer compare-token-0123456789", 200}} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/compare?by=run&values=a,b", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET /api/compare with Authorization %q = %d, want %d", c.header, resp.StatusCode, c.want)
		}
	}
}
