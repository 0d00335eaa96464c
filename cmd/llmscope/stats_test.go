package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/sqlite"
	"llmscope/web"
)

// statsStore writes calls into a new SQLite store and returns its path.
func statsStore(t *testing.T, calls []*llmscope.Call) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "calls.db")
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Write(t.Context(), calls); err != nil {
		t.Fatal(err)
	}
	return db
}

// groupCalls returns calls over experiments × runs (one run empty) with
// random latencies (with ties), TTFTs (some on calls that did not stream,
// which must not count), errors, tokens and costs (some unpriced, some of
// a few nano-dollars).
func groupCalls(n int) []*llmscope.Call {
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var calls []*llmscope.Call
	for i := range n {
		exp := []string{"exp-a", "exp-b", "exp,c \"quoted\""}[rng.IntN(3)]
		run := []string{"r1", "r2", "", "r3"}[rng.IntN(4)]
		c := &llmscope.Call{ID: fmt.Sprintf("call-%04d", i), Start: start.Add(time.Duration(i) * time.Second), Operation: "chat",
			Provider: "openai", Endpoint: "/v1/chat/completions", RequestModel: []string{"gpt-4o-mini", "gpt-4o"}[i%2], Status: 200,
			Experiment: exp, Run: run, DurationMS: math.Round(rng.ExpFloat64()*400_000)/1000 + 1, Tags: map[string]string{}}
		if i%7 == 3 && i > 0 {
			c.DurationMS = calls[i-1].DurationMS // a tie
		}
		c.Stream = rng.IntN(2) == 0
		if i%40 == 0 { // a group that never streams: its TTFT is null
			c.Experiment, c.Run, c.Stream = "batch", "nightly", false
		}
		switch {
		case c.Stream && rng.IntN(4) > 0:
			c.TTFTMS = math.Round(rng.Float64()*100_000)/1000 + 0.5
		case !c.Stream && rng.IntN(3) == 0:
			c.TTFTMS = 5000 // not streamed: not a TTFT
		}
		switch rng.IntN(10) {
		case 0:
			c.Status = 429
		case 1:
			c.Status, c.ErrorType = 0, llmscope.ErrTypeTimeout
		}
		in, out := rng.Int64N(3000), rng.Int64N(1000)
		c.Usage = llmscope.Usage{InputTokens: in, OutputTokens: out, TotalTokens: in + out, Source: llmscope.UsageReported}
		switch rng.IntN(6) {
		case 0: // unpriced
		case 1:
			c.Cost = &llmscope.Cost{TotalUSD: 2.4e-9 * float64(1+rng.IntN(5)), PriceSource: "test"}
		default:
			iu, ou := float64(in)*0.15e-6, float64(out)*0.6e-6
			c.Cost = &llmscope.Cost{InputUSD: iu, OutputUSD: ou, TotalUSD: iu + ou, PriceSource: "test"}
		}
		calls = append(calls, c)
	}
	return calls
}

// pandasPython returns MLflow's venv Python (it has pandas and numpy), or
// stops the test: t.Fatal under CI=true, a loud t.Skip elsewhere.
func pandasPython(t *testing.T) string {
	t.Helper()
	if bin := mlflowtest.Binary(); bin != "" {
		if p := filepath.Join(filepath.Dir(bin), "python"); fileExists(p) {
			return p
		}
	}
	msg := "\n\n*** no Python with pandas (.venv/mlflow/bin/python): run scripts/mlflow-venv.sh ***\n"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + "(skipping; under CI=true this test fails)")
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// pandasGroupBy computes, from the CSV export, what stats --group-by
// experiment,run gives per group. llmscope's percentiles are nearest-rank
// (llmscope.Percentile: the ceil(p/100·n)-th smallest), which is numpy's
// method="inverted_cdf".
const pandasGroupBy = `
import sys, json
import numpy as np, pandas as pd
df = pd.read_csv(sys.argv[1])
for col in ["experiment", "run", "error_type"]:
    df[col] = df[col].fillna("")
assert df["ttft_ms"].dtype == "float64", df["ttft_ms"].dtype
assert df.loc[~df["stream"], "ttft_ms"].isna().all(), "a call that did not stream has a ttft_ms"
df["failed"] = (df["error_type"] != "") | (df["status"] >= 400)
def pct(s, p):
    s = s.dropna()
    return None if len(s) == 0 else float(np.percentile(s.to_numpy(), p, method="inverted_cdf"))
out = []
for (exp, run), g in df.groupby(["experiment", "run"], sort=True, dropna=False):
    ttft = g.loc[g["stream"], "ttft_ms"]
    out.append({"experiment": exp, "run": run, "calls": int(len(g)), "errors": int(g["failed"].sum()),
        "input_tokens": int(g["input_tokens"].sum()), "output_tokens": int(g["output_tokens"].sum()),
        "total_tokens": int(g["total_tokens"].sum()), "cost_usd": float(g["cost_total_usd"].sum()),
        "cost_unknown": int(g["cost_total_usd"].isna().sum()),
        "latency_p50_ms": pct(g["duration_ms"], 50), "latency_p95_ms": pct(g["duration_ms"], 95),
        "latency_p99_ms": pct(g["duration_ms"], 99), "ttft_p50_ms": pct(ttft, 50), "ttft_p95_ms": pct(ttft, 95)})
print(json.dumps(out))
`

// TestStatsGroupByMatchesPandas: `stats --group-by experiment,run --json`
// equals pandas' groupby over `export --format csv` of the same store:
// counts, errors, token sums, cost sum, latency and TTFT percentiles (to a
// relative 1e-9), and the same groups.
func TestStatsGroupByMatchesPandas(t *testing.T) {
	python := pandasPython(t)
	calls := groupCalls(600)
	db := statsStore(t, calls)
	csvPath := filepath.Join(t.TempDir(), "calls.csv")
	if _, errs, code := runCmd(t, "", "export", "--db", db, "--format", "csv", "--out", csvPath); code != 0 {
		t.Fatalf("export csv: %s", errs)
	}
	out, errs, code := runCmd(t, "", "stats", "--db", db, "--group-by", "experiment,run", "--json")
	if code != 0 {
		t.Fatalf("stats --json (exit %d): %s", code, errs)
	}
	var st llmscope.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	res, err := exec.Command(python, "-c", pandasGroupBy, csvPath).CombinedOutput()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, res)
	}
	type group struct {
		Experiment, Run                                       string
		Calls, Errors, InputTokens, OutputTokens, TotalTokens int64
		CostUSD                                               float64
		CostUnknown                                           int64
		LatencyP50MS, LatencyP95MS, LatencyP99MS              float64
		TTFTP50MS, TTFTP95MS                                  *float64
	}
	var raw []map[string]any
	if err := json.Unmarshal(res, &raw); err != nil {
		t.Fatalf("pandas output %q: %v", res, err)
	}
	want := make([]group, len(raw))
	for i, r := range raw {
		num := func(k string) float64 { v, _ := r[k].(float64); return v }
		opt := func(k string) *float64 {
			if v, ok := r[k].(float64); ok {
				return &v
			}
			return nil
		}
		want[i] = group{Experiment: r["experiment"].(string), Run: r["run"].(string), Calls: int64(num("calls")), Errors: int64(num("errors")),
			InputTokens: int64(num("input_tokens")), OutputTokens: int64(num("output_tokens")), TotalTokens: int64(num("total_tokens")),
			CostUSD: num("cost_usd"), CostUnknown: int64(num("cost_unknown")), LatencyP50MS: num("latency_p50_ms"),
			LatencyP95MS: num("latency_p95_ms"), LatencyP99MS: num("latency_p99_ms"), TTFTP50MS: opt("ttft_p50_ms"), TTFTP95MS: opt("ttft_p95_ms")}
	}
	if len(want) != 13 || len(st.Groups) != len(want) || st.Truncated {
		t.Fatalf("%d groups from stats (truncated %v), %d from pandas; want 13", len(st.Groups), st.Truncated, len(want))
	}
	if strings.Join(st.GroupBy, ",") != "experiment,run" {
		t.Errorf("group_by %v", st.GroupBy)
	}
	close := func(a, b float64) bool { return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	closeOpt := func(got float64, want *float64) bool { // null in JSON reads as 0
		if want == nil {
			return got == 0
		}
		return close(got, *want)
	}
	byKey := map[[2]string]llmscope.Summary{}
	for _, g := range st.Groups {
		byKey[[2]string{g.Values.Experiment, g.Values.Run}] = g
	}
	nullTTFT := 0
	for _, w := range want {
		g, ok := byKey[[2]string{w.Experiment, w.Run}]
		if !ok {
			t.Errorf("pandas group (%q, %q) is missing from stats", w.Experiment, w.Run)
			continue
		}
		if g.Calls != w.Calls || g.Errors != w.Errors || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens ||
			g.TotalTokens != w.TotalTokens || g.CostUnknown != w.CostUnknown || !close(g.CostUSD, w.CostUSD) ||
			!close(g.LatencyP50MS, w.LatencyP50MS) || !close(g.LatencyP95MS, w.LatencyP95MS) || !close(g.LatencyP99MS, w.LatencyP99MS) ||
			!closeOpt(g.TTFTP50MS, w.TTFTP50MS) || !closeOpt(g.TTFTP95MS, w.TTFTP95MS) {
			t.Errorf("group (%q, %q):\n stats  %+v\n pandas %+v", w.Experiment, w.Run, g, w)
		}
		if w.TTFTP50MS == nil {
			nullTTFT++
		}
	}
	var tot llmscope.Summary
	for _, c := range calls {
		tot.Calls++
		if c.Failed() {
			tot.Errors++
		}
	}
	if st.Totals.Calls != tot.Calls || st.Totals.Errors != tot.Errors || tot.Errors == 0 {
		t.Errorf("totals %+v; the fixture has %d calls, %d errors", st.Totals, tot.Calls, tot.Errors)
	}
	if nullTTFT != 1 {
		t.Errorf("%d groups without a TTFT, want 1 (batch, nightly)", nullTTFT)
	}
}

// TestStatsJSONIsTheAPIAnswer: `stats --json` prints what /api/stats
// answers for the same grouping and filter, byte for byte.
func TestStatsJSONIsTheAPIAnswer(t *testing.T) {
	db := statsStore(t, groupCalls(200))
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(web.New(store, nil, nil))
	defer srv.Close()
	for _, tc := range []struct{ args, query string }{
		{"", ""},
		{"--group-by model", "group_by=model"},
		{"--group-by experiment,run", "group_by=experiment,run"},
		{"--group-by run,provider,operation --experiment exp-a", "group_by=run,provider,operation&experiment=exp-a"},
		{"--group-by user --limit 1", "group_by=user&max_groups=1"},
		{"--group-by run --limit 2", "group_by=run&max_groups=2"},
	} {
		out, errs, code := runCmd(t, "", append([]string{"stats", "--db", db, "--json"}, strings.Fields(tc.args)...)...)
		if code != 0 {
			t.Fatalf("stats %s: %s", tc.args, errs)
		}
		_, body := httpGet(t, srv.URL+"/api/stats?"+tc.query)
		if out != string(body) {
			t.Errorf("stats --json %s:\n%s\n/api/stats?%s:\n%s", tc.args, out, tc.query, body)
		}
	}
}

func httpGet(t *testing.T, url string) (int, []byte) {
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

func TestHumanNumber(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		sig  int
		want string
	}{
		{0, 4, "0"},
		{2.4e-7, 4, "0.00000024"},
		{2.4e-7, 3, "0.00000024"},
		{1.23456e-9, 4, "0.000000001235"},
		{3e-15, 3, "3e-15"},
		{0.012345678, 4, "0.01235"},
		{0.5, 3, "0.5"},
		{812.44, 3, "812"},
		{1234.56, 3, "1235"},
		{99.96, 3, "100"},
		{12.3456, 4, "12.35"},
		{42, 3, "42"},
	} {
		if got := humanNumber(tc.v, tc.sig); got != tc.want {
			t.Errorf("humanNumber(%g, %d) = %q, want %q", tc.v, tc.sig, got, tc.want)
		}
	}
}

// TestStatsTable: the table has one column per group key, "(none)" for an
// empty value, "–" for a group without a TTFT, costs in significant digits
// (a tiny one is not 0.000000), aligned columns, and a total row.
func TestStatsTable(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := []*llmscope.Call{
		{ID: "a1", Start: start, RequestModel: "m", Experiment: "exp-a", Run: "r1", Status: 200, DurationMS: 812.44, Stream: true, TTFTMS: 143.2,
			Cost: &llmscope.Cost{TotalUSD: 2.4e-7}},
		{ID: "a2", Start: start, RequestModel: "m", Experiment: "exp-a", Run: "r1", Status: 500, DurationMS: 20},
		{ID: "b1", Start: start, RequestModel: "m", Experiment: "exp-b", Status: 200, DurationMS: 1234.56, TTFTMS: 9, // not streamed
			Cost: &llmscope.Cost{TotalUSD: 0.012345678}},
	}
	db := statsStore(t, calls)
	out, errs, code := runCmd(t, "", "stats", "--db", db, "--group-by", "experiment,run")
	if code != 0 {
		t.Fatalf("stats (exit %d): %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header, 2 groups and a total:\n%s", out)
	}
	header := strings.Fields(lines[0])
	if header[0] != "EXPERIMENT" || header[1] != "RUN" || header[2] != "CALLS" {
		t.Errorf("header %v", header)
	}
	for i, want := range [][]string{
		{"exp-a", "r1", "2", "1", "0", "0", "0.00000024", "(+1", "unpriced)", "20", "812", "812", "143"},
		{"exp-b", "(none)", "1", "0", "0", "0", "0.01235", "1235", "1235", "1235", "–"},
		{"total", "3", "1", "0", "0", "0.01235", "(+1", "unpriced)", "812", "1235", "1235", "143"},
	} {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d = %v\n want %v", i+1, got, want)
		}
	}
	// Aligned: every line ends at the same column (right-aligned cells).
	for _, l := range lines[1:] {
		if n := len([]rune(l)); n != len([]rune(lines[0])) {
			t.Errorf("line %q has %d runes, the header %d:\n%s", l, n, len([]rune(lines[0])), out)
		}
	}

	// --limit cuts the groups and says so on stderr; the total stays.
	out, errs, code = runCmd(t, "", "stats", "--db", db, "--group-by", "experiment", "--limit", "1")
	if code != 0 || !strings.Contains(errs, "showing the 1 largest of 2 groups") || strings.Count(out, "\n") != 3 || !strings.Contains(out, "total") {
		t.Errorf("stats --limit 1 (exit %d):\n%s\n%s", code, out, errs)
	}
	// The default grouping keeps the MODEL column.
	out, _, _ = runCmd(t, "", "stats", "--db", db)
	if f := strings.Fields(out); len(f) < 2 || f[0] != "MODEL" || f[1] != "CALLS" {
		t.Errorf("stats:\n%s", out)
	}
}

// TestStatsFlags: bad --limit and --group-by values are refused with a
// message saying what is allowed, before any store is opened.
func TestStatsFlags(t *testing.T) {
	db := statsStore(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--limit", "-1"}, "not a whole number from 0"},
		{[]string{"--limit", "ten"}, "not a whole number from 0"},
		{[]string{"--limit", "1.5"}, "not a whole number from 0"},
		{[]string{"--limit", ""}, "not a whole number from 0"},
		{[]string{"--group-by", "color"}, "allowed: model, experiment, run, user, session, provider, operation"},
		{[]string{"--group-by", "run,run"}, "twice"},
	} {
		_, errs, code := runCmd(t, "", append([]string{"stats", "--db", db}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("stats %v: exit %d, %q; want an error saying %q", tc.args, code, errs, tc.want)
		}
	}
	out, errs, code := runCmd(t, "", "stats", "--db", db, "--limit", "0", "--json", "--group-by", "provider")
	if code != 0 || !strings.Contains(out, `"groups":[]`) || !strings.Contains(out, `"ttft_p50_ms":null`) {
		t.Errorf("stats --limit 0 on an empty store (exit %d): %s %s", code, out, errs)
	}
}

// TestExportTTFT: ttft_ms is an empty CSV cell and a JSON null for a call
// that did not stream (even with a stray TTFT) or streamed without a first
// chunk, and the number otherwise.
func TestExportTTFT(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db := statsStore(t, []*llmscope.Call{
		{ID: "s1", Start: start, RequestModel: "m", Status: 200, DurationMS: 900, Stream: true, TTFTMS: 143.25},
		{ID: "s2", Start: start.Add(time.Second), RequestModel: "m", Status: 200, DurationMS: 900, Stream: true},
		{ID: "n1", Start: start.Add(2 * time.Second), RequestModel: "m", Status: 200, DurationMS: 900, TTFTMS: 12},
	})
	out, errs, code := runCmd(t, "", "export", "--db", db, "--format", "csv")
	if code != 0 {
		t.Fatalf("export csv: %s", errs)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	col := slices.Index(recs[0], "ttft_ms")
	for i, want := range []string{"143.25", "", ""} {
		if got := recs[i+1][col]; got != want {
			t.Errorf("csv row %s: ttft_ms %q, want %q", recs[i+1][0], got, want)
		}
	}
	out, errs, code = runCmd(t, "", "export", "--db", db, "--format", "jsonl")
	if code != 0 {
		t.Fatalf("export jsonl: %s", errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, want := range []string{`"ttft_ms":143.25`, `"ttft_ms":null`, `"ttft_ms":null`} {
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("jsonl line %d lacks %s:\n%s", i, want, out)
		}
	}
}
