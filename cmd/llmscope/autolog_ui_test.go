package main

// The MLflow UI half of TestAutologSideBySide: screenshots of each trace.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"llmscope/internal/needs"
)

// sbsScreenshots opens the MLflow UI's trace view for the trace of each
// kind of each side in headless Chromium and saves a PNG of it
// (mlflow-ui-<side>-<kind>.png).
func sbsScreenshots(t *testing.T, mlflowURL string, docs []*sbsDoc, artifacts string) {
	start := time.Now()
	chromium := needs.Binary(t, "chromium", "run scripts/test-deps.sh (Debian package chromium)")
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1600, 1000)}
	for _, f := range []string{"headless", "no-sandbox", "disable-gpu", "disable-background-networking", "disable-component-update", "disable-sync", "no-first-run"} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// First navigation: no timeout (it starts the browser). Then keep the
	// MLflow Assistant panel closed so it does not cover the trace
	// (localStorage keys are "<key>_v<version>", see the UI bundle).
	if err := chromedp.Do(bctx, chromedp.Navigate(mlflowURL+"/")); err != nil {
		t.Fatalf("chromium: open MLflow UI: %v", err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) error {
		ctx, cancel := context.WithTimeout(bctx, 40*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if err := do("close the assistant", chromedp.Evaluate[chromedp.Void](`localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
		localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");`)); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		for _, kind := range sbsKinds {
			sbsScreenshot(t, bctx, do, mlflowURL, d, kind, artifacts)
		}
	}
	t.Logf("screenshots: %v", time.Since(start).Round(time.Millisecond))
}

// sbsScreenshot saves the trace view of one call. do runs browser steps
// with a time limit in bctx, the browser's context.
func sbsScreenshot(t *testing.T, bctx context.Context, do func(string, ...chromedp.Action[chromedp.Void]) error, mlflowURL string, d *sbsDoc, kind, artifacts string) {
	c := d.Calls[kind]
	if c == nil || c.TraceID == "" || c.Root == nil {
		t.Errorf("screenshot %s %s: no trace", d.Side, kind)
		return
	}
	// The UI's own links to a trace: the experiment's traces tab with
	// selectedEvaluationId (MLflow 3.17 bundle: getExperimentPageTracesTabRoute).
	u := fmt.Sprintf("%s/#/experiments/%s/traces?selectedEvaluationId=%s", mlflowURL, d.ExperimentID, c.TraceID)
	// The drawer shows the trace id's first 8 hex digits and the root span's name.
	short := sbsPrefix(strings.TrimPrefix(c.TraceID, "tr-"), 8)
	err := do("open "+u,
		chromedp.Navigate(u),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.body.innerText.includes(%q) && document.body.innerText.includes(%q)`, short, c.Root.Name),
			chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Sleep(700*time.Millisecond), // the drawer's animation and lazy panels: nothing to poll for
	)
	if err != nil {
		t.Errorf("screenshot %s %s: %v", d.Side, kind, err)
		return
	}
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	cancel()
	if err != nil {
		t.Errorf("screenshot %s %s: %v", d.Side, kind, err)
		return
	}
	p := filepath.Join(artifacts, "mlflow-ui-"+d.Side+"-"+kind+".png")
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	colours, err := sbsColours(shot)
	switch {
	case err != nil:
		t.Errorf("screenshot %s %s: %s: %v", d.Side, kind, p, err)
	case len(shot) < 20<<10 || colours < 16:
		t.Errorf("screenshot %s %s: %s looks empty (%d bytes, %d colours)", d.Side, kind, p, len(shot), colours)
	default:
		t.Logf("screenshot %s %s: %s (%d KB, %d colours)", d.Side, kind, p, len(shot)>>10, colours)
	}
}

// sbsColours decodes a PNG and counts its distinct colours (up to 4096).
func sbsColours(b []byte) (int, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	seen := map[[4]uint32]bool{}
	bounds := img.Bounds()
	step := int(math.Max(1, float64(bounds.Dx()*bounds.Dy())/200000))
	i := 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			i++
			if i%step != 0 {
				continue
			}
			r, g, bl, al := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, al}] = true
			if len(seen) >= 4096 {
				return len(seen), nil
			}
		}
	}
	return len(seen), nil
}
