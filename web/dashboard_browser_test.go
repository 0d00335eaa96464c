package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"llmscope"
	"llmscope/sqlite"
	"llmscope/web"
)

const chromiumPath = "/usr/bin/chromium"

// dashboardCalls returns 30 calls of the last 50 minutes with varied models,
// latencies, usage, errors and streams, plus 3 calls from 3 hours ago that the
// default one-hour window leaves out.
func dashboardCalls(now time.Time) []*llmscope.Call {
	models := []string{"gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "claude-test", "gpt-4o-mini", "gpt-4o"}
	var calls []*llmscope.Call
	for i := range 33 {
		start := now.Add(-time.Duration(50-i) * 100 * time.Second / 2) // spread over ~42 min
		if i >= 30 {
			start = now.Add(-3 * time.Hour).Add(time.Duration(i) * time.Second)
		}
		m := models[i%len(models)]
		temp := 0.2 * float64(i%5)
		c := &llmscope.Call{
			ID: llmscope.NewID(), Start: start, Operation: "chat", Provider: "openai", Endpoint: "/v1/chat/completions",
			RequestModel: m, ResponseModel: m + "-2026", Status: 200, FinishReason: "stop",
			DurationMS: float64(40+(i*i*37)%2900) + 0.25*float64(i),
			Params:     llmscope.Params{Temperature: &temp},
			Usage:      llmscope.Usage{InputTokens: int64(20 + (i*53)%900), OutputTokens: int64(5 + (i*31)%400), Source: "reported"},
			Experiment: []string{"exp-a", "exp-b"}[i%2], Run: fmt.Sprintf("run-%d", i%3),
			Tags: map[string]string{"team": "core"},
		}
		c.Usage.TotalTokens = c.Usage.InputTokens + c.Usage.OutputTokens
		if i%3 == 0 {
			c.Stream = true
			c.TTFTMS = 15 + float64((i*17)%300)
		}
		if i%7 == 3 {
			c.Status, c.ErrorType, c.FinishReason = 500, "server_error", ""
		}
		if i%11 == 5 {
			c.Status, c.ErrorType, c.FinishReason = 429, "rate_limit_error", ""
		}
		if m == "claude-test" {
			c.Provider, c.Endpoint, c.Upstream, c.Attempts = "anthropic", "/v1/messages", "claude-east", 1
		}
		if m != "claude-test" { // claude-test has no known price
			in, out := float64(c.Usage.InputTokens)*2.5e-6, float64(c.Usage.OutputTokens)*1e-5
			c.Cost = &llmscope.Cost{InputUSD: in, OutputUSD: out, TotalUSD: in + out, PriceSource: "test"}
		}
		if i%4 == 0 {
			c.Input = fmt.Sprintf(`[{"role":"user","content":"question %d"}]`, i)
			c.Output = fmt.Sprintf("answer %d", i)
		}
		c.TraceID = llmscope.TraceIDFor(c.ID)
		calls = append(calls, c)
	}
	return calls
}

func TestDashboardBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (CI=true): run scripts/test-deps.sh", chromiumPath)
		}
		t.Skipf("SKIPPING the dashboard browser test: %s is missing (install Debian's chromium, or run scripts/test-deps.sh)", chromiumPath)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dash.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Write(ctx, dashboardCalls(time.Now())); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(store, nil, nil))
	defer srv.Close()

	for _, a := range []string{"/assets/app.js", "/assets/style.css", "/assets/vendor/chart.umd.min.js"} {
		resp, err := http.Get(srv.URL + a)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s (web.New must route GET /assets/ to (*Handler).asset)", a, resp.Status)
		}
	}

	artifacts := os.Getenv("LLMSCOPE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	stats := func(q string) llmscope.Stats {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/stats?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s llmscope.Stats
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	b := startBrowser(t, ctx, chromiumPath)
	bctx, run := b.ctx, b.runner(t)
	shot := func(name string, full bool) {
		t.Helper()
		a := chromedp.CaptureScreenshot() // the viewport, as a user sees it
		if full {
			a = chromedp.FullScreenshot(100) // the whole page, as PNG
		}
		png := value(t, bctx, "screenshot "+name, a)
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	// waitQuery waits until a refresh for exactly the query q has rendered.
	waitQuery := func(q string) {
		t.Helper()
		run("wait for refresh "+q, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('#main').dataset.query === %q`, q),
			chromedp.WithPollingTimeout(20*time.Second)))
	}
	tiles := func() map[string]float64 {
		t.Helper()
		return value(t, bctx, "read tiles", chromedp.Evaluate[map[string]float64](`Object.fromEntries([...document.querySelectorAll('[data-tile]')].map(
			t => [t.dataset.tile, Number(t.querySelector('.v').dataset.value)]))`))
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("tile %s = %v, want %v (from /api/stats)", name, got, want)
		}
	}
	attr := func(sel, name string) string {
		t.Helper()
		return value(t, bctx, "attribute "+name+" of "+sel, chromedp.AttributeValue(chromedp.CSS(sel), name)).Value
	}
	text := func(sel string) string {
		t.Helper()
		return value(t, bctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")); err != nil { // first run: no timeout, see chromedp.Run
		t.Fatalf("open dashboard: %v", err)
	}
	waitQuery("since=1h")

	// Tiles show exactly what /api/stats says for the same window.
	want := stats("since=1h&group_by=model").Totals
	if want.Calls != 30 {
		t.Fatalf("fixture: /api/stats since=1h has %d calls, want 30", want.Calls)
	}
	got := tiles()
	near("calls", got["calls"], float64(want.Calls))
	near("error_rate", got["error_rate"], float64(want.Errors)/float64(want.Calls))
	near("p50", got["p50"], want.LatencyP50MS)
	near("p95", got["p95"], want.LatencyP95MS)
	near("p99", got["p99"], want.LatencyP99MS)
	near("ttft_p50", got["ttft_p50"], want.TTFTP50MS)
	near("rpm", got["rpm"], float64(want.Calls)/60)
	near("tpm", got["tpm"], float64(want.TotalTokens)/60)
	near("cost", got["cost"], want.CostUSD)
	if want.Errors == 0 || want.TTFTP50MS == 0 || want.CostUnknown == 0 {
		t.Errorf("fixture lacks errors, streams or unpriced calls: %+v", want)
	}
	// The per-model table has one row per group.
	rows := value(t, bctx, "read model table", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#models tbody tr')].map(r => r.dataset.model)`))
	if len(rows) != 3 {
		t.Errorf("per-model table rows = %q, want 3 models", rows)
	}
	// The per-provider table: one row per provider and upstream.
	prov := value(t, bctx, "read provider table", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#providers tbody tr')].map(r => r.dataset.provider + '|' + r.dataset.upstream + '|' + r.cells[2].textContent)`))
	slices.Sort(prov)
	if len(prov) != 2 || !strings.HasPrefix(prov[0], "anthropic|claude-east|") || !strings.HasPrefix(prov[1], "openai||") {
		t.Errorf("per-provider table rows = %q, want anthropic via claude-east and openai", prov)
	}

	// Every chart canvas has drawn (non-transparent) pixels.
	drawn := value(t, bctx, "scan canvases", chromedp.Evaluate[map[string]int](`Object.fromEntries([...document.querySelectorAll('canvas')].map(c => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return [c.id, n];
	}))`))
	if len(drawn) != 4 {
		t.Errorf("canvases = %v, want 4 charts", drawn)
	}
	for id, n := range drawn {
		if n < 2000 {
			t.Errorf("canvas %s has %d drawn pixels, want a chart", id, n)
		}
	}
	shot("dashboard.png", true)

	// Clicking a recent call opens the drill-down for that call.
	id := attr(`#calls tbody tr:nth-child(3)`, "data-id")
	if id == "" {
		t.Fatal("recent calls row has no data-id")
	}
	run("click row", chromedp.Click(chromedp.CSS(`#calls tbody tr:nth-child(3)`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#drill[data-call-id=%q]`, id))))
	title, body := text(`#drill-title`), text(`#drill-body`)
	if !strings.Contains(title, id) || !strings.Contains(body, id) {
		t.Errorf("drill-down title %q / body does not show call id %s", title, id)
	}
	for _, s := range []string{"Timing", "Usage", "Cost", "Parameters", "input tokens"} {
		if !strings.Contains(body, s) {
			t.Errorf("drill-down lacks %q", s)
		}
	}
	shot("dashboard-drilldown.png", false)
	// Escape closes it and focus returns to the row.
	run("escape", chromedp.KeyEvent(kb.Escape),
		chromedp.Poll[chromedp.Void](`!document.querySelector('#drill').open`, chromedp.WithPollingTimeout(5*time.Second)))
	if got := value(t, bctx, "focus", chromedp.Evaluate[string](`document.activeElement.dataset.id || ''`)); got != id {
		t.Errorf("after Escape focus is on %q, want the row of %s", got, id)
	}
	// Keyboard: Enter on a focused row opens that call.
	id = attr(`#calls tbody tr:nth-child(1)`, "data-id")
	run("enter on row", chromedp.Focus(chromedp.CSS(`#calls tbody tr:nth-child(1)`)), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#drill[data-call-id=%q]`, id))))
	if !value(t, bctx, "dialog open", chromedp.Evaluate[bool](`document.querySelector('#drill').open`)) {
		t.Error("Enter on a row did not open the drill-down")
	}
	run("escape again", chromedp.KeyEvent(kb.Escape),
		chromedp.Poll[chromedp.Void](`!document.querySelector('#drill').open`, chromedp.WithPollingTimeout(5*time.Second)))

	// Selecting a model shows that model's call count.
	const model = "gpt-4o"
	mq := url.Values{"since": {"1h"}, "model": {model}}
	wantM := stats(mq.Encode()).Totals
	if wantM.Calls == 0 || wantM.Calls == want.Calls {
		t.Fatalf("fixture: model %s has %d of %d calls", model, wantM.Calls, want.Calls)
	}
	run("select model", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector('#f-model');
		s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, model)))
	waitQuery("since=1h&model=" + model)
	got = tiles()
	near("calls (model filter)", got["calls"], float64(wantM.Calls))
	near("p95 (model filter)", got["p95"], wantM.LatencyP95MS)
	models := value(t, bctx, "row models", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#calls tbody tr')].map(r => r.children[2].textContent)`))
	if int64(len(models)) != wantM.Calls {
		t.Errorf("recent calls rows = %d, want %d for model %s", len(models), wantM.Calls, model)
	}
	for _, m := range models {
		if m != model {
			t.Errorf("recent calls row of model %q under filter %s", m, model)
		}
	}

	// A wider window includes the older calls.
	run("select 24h", chromedp.Evaluate[chromedp.Void](`(() => {
		document.querySelector('#f-model').value = '';
		const s = document.querySelector('#f-since'); s.value = '24h';
		s.dispatchEvent(new Event('change', {bubbles: true})) })()`))
	waitQuery("since=24h")
	near("calls (24h)", tiles()["calls"], float64(stats("since=24h").Totals.Calls))

	if status := text(`#status`); strings.Contains(status, "failed") {
		t.Errorf("dashboard status: %s", status)
	}
	b.checkExceptions(t)
}

// value runs one action that returns a value, with a time limit.
func value[T any](t *testing.T, bctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}
