package web_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"llmscope/auth"
	"llmscope/sqlite"
	"llmscope/web"
)

// TestDashboardBehindLogin: behind the guard with an admin token, a browser
// is sent to the login page, logs in with the token and gets the whole
// dashboard, with its strict Content-Security-Policy violated by nothing.
func TestDashboardBehindLogin(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (CI=true): run scripts/test-deps.sh", chromiumPath)
		}
		t.Skipf("SKIPPING the login browser test: %s is missing (install Debian's chromium, or run scripts/test-deps.sh)", chromiumPath)
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
	const token = "dashboard-admin-token-0123"
	hash := auth.HashToken(token)
	guard, err := auth.New(auth.Config{AdminTokenHash: &hash})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(guard.Wrap(web.New(store, nil, nil)))
	defer srv.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	loc := value(t, bctx, "location", chromedp.Evaluate[string](`location.pathname`))
	if loc != "/login" {
		t.Fatalf("an unauthenticated browser is at %q, want the login page", loc)
	}
	// A wrong token: the form again, with a message.
	sctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.SendKeys(`#token`, "not-the-token"), chromedp.Submit(`#token`),
		chromedp.WaitVisible(`.error`)); err != nil {
		t.Fatalf("wrong token: %v", err)
	}
	if err := chromedp.Do(sctx, chromedp.SendKeys(`#token`, token), chromedp.Submit(`#token`)); err != nil {
		t.Fatalf("log in: %v", err)
	}
	// The form navigates twice (POST, then the redirect): ask until the
	// dashboard has rendered once.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, err := chromedp.Run(sctx, chromedp.Evaluate[int](`Number((document.querySelector('#main') || {dataset: {}}).dataset.refreshes || 0)`))
		if err == nil && n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard did not render after logging in (%v)", err)
		}
	}
	// Every chart drew, which needs the vendored chart library and the
	// dashboard's script to run under the policy.
	drawn := value(t, bctx, "scan canvases", chromedp.Evaluate[int](`[...document.querySelectorAll('canvas')].filter(c => {
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
		return false;
	}).length`))
	if drawn != 4 {
		t.Errorf("%d of 4 charts drew behind the login", drawn)
	}
	value(t, bctx, "observe policy reports", chromedp.Evaluate[bool](`window.__csp = [];
		window.__obs = new ReportingObserver(rs => window.__csp.push(...rs.map(r => r.body.effectiveDirective + ' ' + r.body.blockedURL)),
			{types: ['csp-violation'], buffered: true});
		window.__obs.observe(); true`))
	time.Sleep(300 * time.Millisecond)
	violations := value(t, bctx, "policy reports", chromedp.Evaluate[[]string](
		`window.__csp.concat(window.__obs.takeRecords().map(r => r.body.effectiveDirective + ' ' + r.body.blockedURL))`))
	if len(violations) > 0 {
		t.Errorf("Content-Security-Policy violations: %s", strings.Join(violations, "; "))
	}
	// Logging out ends the session.
	if err := chromedp.Do(sctx, chromedp.Click(`form.logout button`), chromedp.WaitVisible(`#token`)); err != nil {
		t.Fatalf("log out: %v", err)
	}
	if err := chromedp.Do(sctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if loc := value(t, bctx, "location", chromedp.Evaluate[string](`location.pathname`)); loc != "/login" {
		t.Errorf("after logging out the dashboard is at %q, want the login page", loc)
	}
}
