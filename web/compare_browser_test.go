package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"llmscope/auth"
	"llmscope/internal/needs"
	"llmscope/sqlite"
	"llmscope/web"
)

// TestCompareBrowser opens the dashboard in headless Chromium, compares two
// experiments of clearly different latency and checks the side-by-side
// tiles, the difference line naming the slower one, the overlaid
// distributions, and that nothing in the view overlaps.
func TestCompareBrowser(t *testing.T) {
	chromium := needs.Binary(t, "chromium", "apt-get install chromium, or run scripts/test-deps.sh")
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cmp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Real calls: through the gateway to the simulator's realistic profile,
	// recorded into the store the dashboard reads. gpt-4.1-nano (median
	// TTFT 250 ms, 140 tokens/s) against gpt-4o (450 ms, 70 tokens/s):
	// demo-b is the slower one. demo-a streams every other call, demo-b
	// never does; demo-c asks for a model the price table does not know
	// (the profile's default speed, 500 ms), so run-c is slower than run-a
	// and its cost unknown.
	began := time.Now()
	outcome := recordSimCalls(t, store, 6,
		simExperiment{experiment: "demo-a", run: "run-a", model: "gpt-4.1-nano", n: 40, streamEvery: 2},
		simExperiment{experiment: "demo-b", run: "run-b", model: "gpt-4o", n: 40},
		simExperiment{experiment: "demo-c", run: "run-c", model: "sim-local-model", n: 30, streamEvery: 3},
	)
	for _, exp := range []string{"demo-a", "demo-b", "demo-c"} {
		o := outcome[exp]
		for status, n := range o.statuses {
			// The profile fails about 1.5 % of requests with 429 or 5xx.
			if status != http.StatusOK && status != http.StatusTooManyRequests && status < 500 {
				t.Errorf("%s: %d answers with status %d", exp, n, status)
			}
		}
		t.Logf("%s: statuses %v", exp, o.statuses)
	}
	t.Logf("recorded 110 simulator calls in %v", time.Since(began).Round(time.Millisecond))
	// Behind the guard, so the dashboard runs under the real
	// Content-Security-Policy.
	const token = "compare-admin-token-0123"
	hash := auth.HashToken(token)
	guard, err := auth.New(auth.Config{AdminTokenHash: &hash})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(guard.Wrap(web.New(store, nil, nil)))
	defer srv.Close()

	artifacts := os.Getenv("LLMSCOPE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t, ctx, chromium)
	bctx, run := b.ctx, b.runner(t)
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open dashboard: %v", err)
	}
	run("log in", chromedp.SendKeys(`#token`, token), chromedp.Submit(`#token`))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
		q, err := chromedp.Run(sctx, chromedp.Evaluate[string](`(document.querySelector('#main') || {dataset: {}}).dataset.query || ''`))
		cancel()
		if err == nil && q != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard did not render after logging in (%v)", err)
		}
	}
	value(t, bctx, "observe policy reports", chromedp.Evaluate[bool](`window.__csp = [];
		window.__obs = new ReportingObserver(rs => window.__csp.push(...rs.map(r => r.body.effectiveDirective + ' ' + r.body.blockedURL)),
			{types: ['csp-violation'], buffered: true});
		window.__obs.observe(); true`))
	run("first refresh", chromedp.Poll[chromedp.Void](`document.querySelector('#main').dataset.query === 'since=1h'`,
		chromedp.WithPollingTimeout(20*time.Second)))

	choices := value(t, bctx, "choices", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#cmp-values input')].map(i => i.value)`))
	if strings.Join(choices, ",") != "demo-a,demo-b,demo-c" {
		t.Fatalf("comparison choices = %q, want the three experiments of recent calls", choices)
	}
	if msg := value(t, bctx, "hint", chromedp.Text(chromedp.CSS(`#cmp-msg`))); !strings.Contains(msg, "pick at least two") {
		t.Errorf("before picking, the comparison says %q", msg)
	}
	run("pick demo-a then demo-b and compare",
		chromedp.Click(chromedp.CSS(`#cmp-values input[value="demo-a"]`)),
		chromedp.Click(chromedp.CSS(`#cmp-values input[value="demo-b"]`)),
		chromedp.Click(chromedp.CSS(`#cmp-go`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#cmp-out').dataset.query !== ''`, chromedp.WithPollingTimeout(20*time.Second)))
	if q := value(t, bctx, "query", chromedp.AttributeValue(chromedp.CSS(`#cmp-out`), "data-query")).Value; q != "by=experiment&values=demo-a%2Cdemo-b&since=1h" {
		t.Errorf("comparison query = %q", q)
	}

	cols := value(t, bctx, "columns", chromedp.Evaluate[map[string]map[string]string](`Object.fromEntries([...document.querySelectorAll('.cmp-col')].map(c =>
		[c.dataset.value, Object.fromEntries([...c.querySelectorAll('[data-k]')].map(t => [t.dataset.k, t.querySelector('.v').textContent]))]))`))
	if len(cols) != 2 {
		t.Fatalf("comparison columns = %v, want demo-a and demo-b", cols)
	}
	for _, exp := range []string{"demo-a", "demo-b"} {
		c := cols[exp]
		if c["calls"] != "40" {
			t.Errorf("%s tile calls = %q, want 40", exp, c["calls"])
		}
		for _, k := range []string{"error_rate", "p50", "p95", "ttft_p50", "cost_per_call", "cost_per_1k"} {
			if c[k] == "" {
				t.Errorf("%s lacks the %s tile: %v", exp, k, c)
			}
		}
	}
	if cols["demo-a"]["ttft_p50"] == "–" || cols["demo-b"]["ttft_p50"] != "–" {
		t.Errorf("TTFT p50 tiles: demo-a %q (streamed), demo-b %q (not streamed)", cols["demo-a"]["ttft_p50"], cols["demo-b"]["ttft_p50"])
	}
	body := value(t, bctx, "compare text", chromedp.Text(chromedp.CSS(`#compare`)))
	if !strings.Contains(body, "no streamed calls: no TTFT") {
		t.Errorf("the comparison does not say demo-b has no TTFT: %q", body)
	}
	diff := value(t, bctx, "difference", chromedp.Text(chromedp.CSS(`#cmp-diffs li[data-value="demo-b"] b`)))
	if !strings.HasPrefix(diff, "demo-b is ") || !strings.Contains(diff, "× slower than demo-a (p < 0.001)") {
		t.Errorf("difference line = %q, want demo-b named slower with p < 0.001", diff)
	}
	drawn := value(t, bctx, "scan canvases", chromedp.Evaluate[map[string]int](`Object.fromEntries([...document.querySelectorAll('#compare canvas')].map(c => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return [c.id, n];
	}))`))
	if len(drawn) != 2 || drawn["cmp-latency"] < 2000 || drawn["cmp-ttft"] < 2000 {
		t.Errorf("comparison charts drew %v, want latency and TTFT distributions", drawn)
	}
	// Nothing overlaps: no two boxes of the view that are siblings intersect,
	// and no tile sticks out of its column.
	checkLayout := func(width string) {
		t.Helper()
		for _, o := range value(t, bctx, "overlaps", chromedp.Evaluate[[]string](overlapJS)) {
			t.Errorf("layout at %s: %s", width, o)
		}
	}
	checkLayout("1400 px")

	shot := func(name string, a chromedp.Action[[]byte]) {
		t.Helper()
		png := value(t, bctx, "screenshot "+name, a)
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	shot("compare-full.png", chromedp.FullScreenshot(100)) // before scrolling: the sticky header stays on top
	// The viewport, scrolled so the comparison starts below the sticky header.
	run("scroll to the comparison", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0,
		document.querySelector('#compare').getBoundingClientRect().top + window.scrollY - document.querySelector('header.top').offsetHeight - 8)`))
	shot("compare.png", chromedp.CaptureScreenshot())
	// A narrow window: the columns stack, still without overlaps.
	run("narrow", chromedp.EmulateViewport(560, 1000))
	time.Sleep(300 * time.Millisecond) // the charts resize on the next frame
	checkLayout("560 px")
	run("scroll to the comparison (narrow)", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0,
		document.querySelector('#cmp-diffs').getBoundingClientRect().top + window.scrollY - document.querySelector('header.top').offsetHeight - 8)`))
	shot("compare-narrow.png", chromedp.CaptureScreenshot())
	run("wide again", chromedp.EmulateViewport(1400, 1000))

	// Clear empties the view and asks again.
	run("clear", chromedp.Click(chromedp.CSS(`#cmp-clear`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#cmp-out').childElementCount === 0`, chromedp.WithPollingTimeout(5*time.Second)))
	if n := value(t, bctx, "checked", chromedp.Evaluate[int](`document.querySelectorAll('#cmp-values input:checked').length`)); n != 0 {
		t.Errorf("after Clear %d values are still picked", n)
	}

	// Runs: run-c (the default speed, slower) against run-a (gpt-4.1-nano); run-c has no price.
	run("compare runs",
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#cmp-by'); s.value = 'run';
			s.dispatchEvent(new Event('change', {bubbles: true})); })()`),
		chromedp.Click(chromedp.CSS(`#cmp-values input[value="run-a"]`)),
		chromedp.Click(chromedp.CSS(`#cmp-values input[value="run-c"]`)),
		chromedp.Click(chromedp.CSS(`#cmp-go`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#cmp-out').dataset.query === 'by=run&values=run-a%2Crun-c&since=1h'`,
			chromedp.WithPollingTimeout(20*time.Second)))
	diff = value(t, bctx, "run difference", chromedp.Text(chromedp.CSS(`#cmp-diffs li[data-value="run-c"]`)))
	if !strings.Contains(diff, "run-c is ") || !strings.Contains(diff, "slower than run-a") || !strings.Contains(diff, "unknown price") {
		t.Errorf("run difference line = %q, want run-c slower than run-a and its cost not comparable", diff)
	}
	if got := value(t, bctx, "run-c cost", chromedp.Text(chromedp.CSS(`.cmp-col[data-value="run-c"] [data-k="cost_per_call"]`))); !strings.Contains(got, "unknown") {
		t.Errorf("run-c cost tile = %q, want unknown", got)
	}
	time.Sleep(300 * time.Millisecond)
	violations := value(t, bctx, "policy reports", chromedp.Evaluate[[]string](
		`window.__csp.concat(window.__obs.takeRecords().map(r => r.body.effectiveDirective + ' ' + r.body.blockedURL))`))
	if len(violations) > 0 {
		t.Errorf("Content-Security-Policy violations: %s", strings.Join(violations, "; "))
	}
	b.checkExceptions(t)
}

// overlapJS lists the boxes of the comparison view that overlap a sibling
// or stick out of their column or tile.
const overlapJS = `(() => {
		const out = [], name = (e) => e.tagName + '.' + e.className + '[' + (e.dataset.k || e.dataset.value || e.id || '') + ']';
		const boxes = ['#cmp-form > *', '#cmp-values label', '#cmp-diffs li', '.cmp-cols > .cmp-col', '.cmp-tiles > .tile', '.cmp-charts > figure'];
		for (const sel of boxes) {
			const els = [...document.querySelectorAll(sel)].filter(e => e.tagName !== 'LEGEND');
			for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
				if (els[i].parentElement !== els[j].parentElement) continue;
				const a = els[i].getBoundingClientRect(), b = els[j].getBoundingClientRect();
				if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) out.push(name(els[i]) + ' overlaps ' + name(els[j]));
			}
		}
		for (const t of document.querySelectorAll('.cmp-tiles .tile, .cmp-tiles .tile .v')) {
			const p = (t.classList.contains('v') ? t.closest('.tile') : t.closest('.cmp-col')).getBoundingClientRect(), r = t.getBoundingClientRect();
			if (r.left < p.left - 0.5 || r.right > p.right + 0.5 || t.scrollWidth > t.clientWidth + 1) out.push(name(t) + ' sticks out of its box');
		}
		return out;
	})()`
