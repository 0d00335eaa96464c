package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/report"
)

// TestReport: every chart exists as a PNG that decodes with sane dimensions
// and an SVG that parses; summary.md's figures equal the store's stats.
func TestReport(t *testing.T) {
	_, base, db, _ := startServe(t, "--sim-ttft", "15ms", "--sim-tokens-per-second", "3000")
	const n = 30
	for i := range n {
		body := fmt.Sprintf(`{"model":%q,"stream":%t,"max_tokens":%d,"messages":[{"role":"user","content":"call %d"}]}`,
			[]string{"gpt-4o-mini", "gpt-4o", "o4-mini"}[i%3], i%2 == 0, 20+i*3, i)
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if i%10 == 9 {
			req.Header.Set("X-Sim-Fault", "status=500")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	var stats llmscope.Stats
	eventually(t, "calls stored", 30*time.Second, func() bool {
		r, err := http.Get(base + "/api/stats")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		_ = jsonDecode(r.Body, &stats)
		return stats.Totals.Calls == n
	})
	dir := os.Getenv("LLMSCOPE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "report")
	if out, errs, code := runCmd(t, "", "report", "--db", db, "--out", dir); code != 0 || !strings.Contains(out, fmt.Sprint(n)+" calls") {
		t.Fatalf("report (exit %d): %s %s", code, out, errs)
	}
	t.Logf("report written to %s", dir)
	for _, name := range report.Files {
		f, err := os.Open(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
			t.Errorf("%s.png is %dx%d", name, b.Dx(), b.Dy())
		}
		svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ XMLName xml.Name }
		if err := xml.Unmarshal(svg, &doc); err != nil || doc.XMLName.Local != "svg" {
			t.Errorf("%s.svg does not parse as SVG: %v", name, err)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	tt := stats.Totals
	want := fmt.Sprintf("| **total** | %d | %d | %d | %d | %.6f | %d | %.1f | %.1f | %.1f | %.1f |", tt.Calls, tt.Errors, tt.InputTokens, tt.OutputTokens,
		tt.CostUSD, tt.CostUnknown, tt.LatencyP50MS, tt.LatencyP95MS, tt.LatencyP99MS, tt.TTFTP50MS)
	if !strings.Contains(string(md), want) {
		t.Errorf("summary.md lacks the store's totals %q:\n%s", want, md)
	}
	for _, g := range stats.Groups {
		if !strings.Contains(string(md), fmt.Sprintf("| %s | %d | %d |", g.Key, g.Calls, g.Errors)) {
			t.Errorf("summary.md lacks model %s with %d calls", g.Key, g.Calls)
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
