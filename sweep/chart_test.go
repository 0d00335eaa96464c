package sweep

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"llmscope"
	"llmscope/report"
)

// crowdedResults has many configurations on nearly the same cost and
// accuracy, the case where labels used to overprint.
func crowdedResults() *Results {
	res := &Results{Sweep: "crowded", Experiment: "e", SortBy: "accuracy"}
	i := 0
	for _, m := range []string{"gpt-4o-mini", "gpt-4o", "o4-mini"} {
		for _, temp := range []string{"0", "0.3", "0.7", "1"} {
			for _, top := range []string{"0.9", "1"} {
				acc := 0.8 + float64(i%3)*0.02
				if m == "gpt-4o" {
					acc = 0.95
				}
				res.Rows = append(res.Rows, Row{
					Run: fmt.Sprintf("crowded-%d", i), Config: fmt.Sprintf("model=%s temperature=%s top_p=%s", m, temp, top), Model: m,
					Units: 10, Done: 10, Scored: 10, Accuracy: &acc,
					Calls: llmscope.Summary{Calls: 10, CostUSD: 0.0012 + float64(i%4)*0.00001, LatencyP50MS: 300 + float64(i*37%500), TotalTokens: 4000},
				})
				i++
			}
		}
	}
	res.Rows = append(res.Rows, Row{Run: "embed", Config: "model=text-embedding-3-small", Model: "text-embedding-3-small", Units: 1, Done: 1, Scored: 1,
		Accuracy: ptr(0.5), Calls: llmscope.Summary{Calls: 1, CostUSD: 2.4e-7, LatencyP50MS: 90, TotalTokens: 12}})
	return res
}

func ptr(v float64) *float64 { return &v }

// TestChartLabelsDoNotOverlap: with crowded points, the labels drawn in the
// plot never intersect each other, any point, or leave the data area; the
// rest are numbered and listed below the plot, outside the data area.
func TestChartLabelsDoNotOverlap(t *testing.T) {
	res := crowdedResults()
	f, pl, err := res.chartFigure()
	if err != nil {
		t.Fatal(err)
	}
	l := f.Layout(chartW, chartH)
	data := vg.Rectangle{Max: vg.Point{X: l.Data.Max.X - l.Data.Min.X, Y: l.Data.Max.Y - l.Data.Min.Y}}
	for i, b := range pl.boxes {
		if b.Min.X < 0 || b.Min.Y < 0 || b.Max.X > data.Max.X || b.Max.Y > data.Max.Y {
			t.Errorf("label %q at %v leaves the data area %v", pl.texts[i], b, data)
		}
		for j := range i {
			if report.Overlaps(b, pl.boxes[j]) {
				t.Errorf("labels %q and %q intersect", pl.texts[i], pl.texts[j])
			}
		}
	}
	if len(pl.numbered) == 0 || len(f.Notes) != len(pl.numbered) {
		t.Errorf("crowded chart: %d numbered labels, %d notes", len(pl.numbered), len(f.Notes))
	}
	if len(pl.texts) < 5 {
		t.Errorf("only %d labels drawn", len(pl.texts))
	}
	for _, r := range append(append([]vg.Rectangle{}, l.Legend...), l.Notes...) {
		if report.Overlaps(r, l.Plot) {
			t.Errorf("legend or note %v intersects the plot %v", r, l.Plot)
		}
	}
	dir := os.Getenv("LLMSCOPE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "sweep")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("chart written to %s", dir)
	if err := res.Chart(dir); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(filepath.Join(dir, ChartFile+".png"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
		t.Errorf("chart is %v", b)
	}
	var md strings.Builder
	_ = res.Markdown(&md)
	if !strings.Contains(md.String(), "$0.00000024") || strings.Contains(md.String(), "0.000000 ") {
		t.Errorf("results.md does not show small costs:\n%s", md.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
