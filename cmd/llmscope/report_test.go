package main

import (
	"encoding/xml"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		h := map[string]string{}
		if i%10 == 9 {
			h["X-Sim-Fault"] = "status=500"
		}
		sendJSON(t, base+"/v1/chat/completions", body, h)
	}
	stats := waitStats(t, base, n)
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
	want := report.SummaryRow("**total**", tt)
	if !strings.Contains(string(md), want) {
		t.Errorf("summary.md lacks the store's totals %q:\n%s", want, md)
	}
	for _, g := range stats.Groups {
		if !strings.Contains(string(md), fmt.Sprintf("| %s | %d | %d |", g.Key, g.Calls, g.Errors)) {
			t.Errorf("summary.md lacks model %s with %d calls", g.Key, g.Calls)
		}
	}
}

// TestReportCompare: --compare overlays runs (or experiments with
// --compare-by experiment): every chart exists, and the table on stdout
// and in summary.md has one row per run with its calls and errors.
func TestReportCompare(t *testing.T) {
	_, base, db, _ := startServe(t, "--sim-ttft", "15ms", "--sim-tokens-per-second", "3000")
	const n = 24
	for i := range n {
		run := []string{"baseline", "candidate"}[i%2]
		body := fmt.Sprintf(`{"model":%q,"stream":%t,"max_tokens":%d,"messages":[{"role":"user","content":"call %d"}]}`,
			[]string{"gpt-4o-mini", "gpt-4o"}[i%4/2], i%3 != 0, 20+i*5, i)
		h := map[string]string{"X-Llmscope-Run": run, "X-Llmscope-Experiment": "exp-" + run}
		if i == 5 {
			h["X-Sim-Fault"] = "status=500"
		}
		sendJSON(t, base+"/v1/chat/completions", body, h)
	}
	waitStats(t, base, n)
	root := os.Getenv("LLMSCOPE_ARTIFACTS")
	if root == "" {
		root = t.TempDir()
	}
	for _, c := range []struct{ by, names, dir string }{
		{"", "baseline,candidate", "report-compare-run"},
		{"experiment", "exp-baseline,exp-candidate", "report-compare-experiment"},
	} {
		dir := filepath.Join(root, c.dir)
		args := []string{"report", "--db", db, "--out", dir, "--compare", c.names}
		if c.by != "" {
			args = append(args, "--compare-by", c.by)
		}
		out, errs, code := runCmd(t, "", args...)
		if code != 0 {
			t.Fatalf("report --compare (exit %d): %s %s", code, out, errs)
		}
		t.Logf("comparison written to %s:\n%s", dir, out)
		md, err := os.ReadFile(filepath.Join(dir, "summary.md"))
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range strings.Split(c.names, ",") {
			errors := 0
			if i == 1 {
				errors = 1
			}
			row := fmt.Sprintf("| %s | %d | %d |", name, n/2, errors)
			if !strings.Contains(out, row) || !strings.Contains(string(md), row) {
				t.Errorf("table lacks %q:\n%s", row, out)
			}
		}
		for _, name := range report.Files {
			f, err := os.Open(filepath.Join(dir, name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Errorf("%s.png: %v", name, err)
			} else if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
				t.Errorf("%s.png is %dx%d", name, b.Dx(), b.Dy())
			}
		}
	}
	if _, _, code := runCmd(t, "", "report", "--db", db, "--out", t.TempDir(), "--compare", "a", "--compare-by", "model"); code == 0 {
		t.Error("--compare-by model was accepted")
	}
}
