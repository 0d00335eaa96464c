package report

import (
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"

	"llmscope"
)

// artifacts is where a test saves its charts: $LLMSCOPE_ARTIFACTS/name if
// set, else a temporary directory; the path is logged.
func artifacts(t *testing.T, name string) string {
	dir := os.Getenv("LLMSCOPE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("charts written to %s", dir)
	return dir
}

// fakeCalls makes n calls over span starting at start, of the given run;
// streamed ones when stream is set.
func fakeCalls(n int, start time.Time, span time.Duration, run string, stream bool, slow float64, seed uint64) []*llmscope.Call {
	r := rand.New(rand.NewPCG(seed, 1))
	models := []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}
	var calls []*llmscope.Call
	for i := range n {
		in, out := 200+r.IntN(1800), 50+r.IntN(900)
		c := &llmscope.Call{
			ID: fmt.Sprint(run, i), Start: start.Add(time.Duration(float64(span) * (float64(i) + r.Float64()*3) / float64(n+3))),
			DurationMS: slow * (200 + r.ExpFloat64()*400), Run: run, Experiment: "exp-" + run,
			RequestModel: models[i%3], Stream: stream && i%3 != 2, Status: 200,
			Usage: llmscope.Usage{InputTokens: int64(in), OutputTokens: int64(out), TotalTokens: int64(in + out), Source: llmscope.UsageReported},
			Cost:  &llmscope.Cost{TotalUSD: float64(in)*1.5e-7 + float64(out)*6e-7},
		}
		if c.Stream {
			c.TTFTMS = 40 + r.ExpFloat64()*60
		}
		if i%17 == 16 {
			c.Status = 500
		}
		calls = append(calls, c)
	}
	return calls
}

// checkPNG fails unless path is a PNG of sane size with more than a few colours.
func checkPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("%s is %dx%d", path, b.Dx(), b.Dy())
	}
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bb, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bb, a}] = true
		}
	}
	if len(colors) < 5 {
		t.Errorf("%s has %d colours: blank", path, len(colors))
	}
	return img
}

// checkLayout fails when a legend entry or note intersects the data area,
// another entry, or leaves the image.
func checkLayout(t *testing.T, name string, f *Figure) {
	t.Helper()
	l := f.Layout(Width, Height)
	img := vg.Rectangle{Max: l.Size}
	boxes := append(append([]vg.Rectangle{}, l.Legend...), l.Notes...)
	for i, r := range boxes {
		if Overlaps(r, l.Data) || Overlaps(r, l.Plot) {
			t.Errorf("%s: legend box %d %v intersects the plot %v (data %v)", name, i, r, l.Plot, l.Data)
		}
		if !inside(r, img) {
			t.Errorf("%s: legend box %d %v leaves the image %v", name, i, r, img)
		}
		for j := range i {
			if Overlaps(r, boxes[j]) {
				t.Errorf("%s: legend boxes %d and %d intersect", name, i, j)
			}
		}
	}
	if len(f.Legend) == 0 && f.Empty == "" {
		t.Errorf("%s: neither a legend nor a reason for being empty", name)
	}
}

func TestReportCharts(t *testing.T) {
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	calls := fakeCalls(120, start, 2*time.Minute, "a", true, 1, 1)
	stats := &llmscope.Stats{Groups: []llmscope.Summary{{Key: "gpt-4o-mini", Calls: 40, LatencyP50MS: 420, LatencyP95MS: 1750, CostUSD: 0.0042},
		{Key: "text-embedding-3-small", Calls: 40, LatencyP50MS: 90, LatencyP95MS: 130, CostUSD: 2.4e-7}}}
	dir := artifacts(t, "report")
	for name, f := range Charts(calls, stats) {
		checkLayout(t, name, f)
	}
	if err := Write(dir, calls, stats, "run a"); err != nil {
		t.Fatal(err)
	}
	for _, name := range Files {
		checkPNG(t, filepath.Join(dir, name+".png"))
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "$0.00000024") || strings.Contains(string(md), "0.000000 ") {
		t.Errorf("summary.md does not format small costs:\n%s", md)
	}
}

func TestReportEmptyTTFT(t *testing.T) {
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	calls := fakeCalls(30, start, 10*time.Minute, "plain", false, 1, 2)
	charts := Charts(calls, &llmscope.Stats{})
	f := charts["ttft"]
	if f.Empty != EmptyTTFT {
		t.Errorf("ttft chart without streams says %q", f.Empty)
	}
	dir := artifacts(t, "report-no-streams")
	if err := Write(dir, calls, &llmscope.Stats{}, ""); err != nil {
		t.Fatal(err)
	}
	img := checkPNG(t, filepath.Join(dir, "ttft.png"))
	// The sentence is drawn in the data area: dark pixels near its centre row.
	l := f.Layout(Width, Height)
	scale := float64(img.Bounds().Dy()) / float64(l.Size.Y)
	cy := img.Bounds().Dy() - int(float64((l.Data.Min.Y+l.Data.Max.Y)/2)*scale)
	dark := 0
	for y := cy - 8; y <= cy+8; y++ {
		for x := int(float64(l.Data.Min.X)*scale) + 2; x < int(float64(l.Data.Max.X)*scale)-2; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			}
		}
	}
	if dark < 50 {
		t.Errorf("ttft.png: no text in the empty data area (%d dark pixels)", dark)
	}
}

func TestReportCompare(t *testing.T) {
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	groups := []Group{
		{Name: "baseline", Calls: fakeCalls(90, start, 20*time.Minute, "baseline", true, 1, 3)},
		{Name: "candidate-long-name", Calls: fakeCalls(60, start.Add(5*time.Minute), 20*time.Minute, "candidate-long-name", true, 1.6, 4)},
		{Name: "no-streams", Calls: fakeCalls(40, start.Add(2*time.Minute), 15*time.Minute, "no-streams", false, 0.7, 5)},
	}
	charts := CompareCharts(groups, "run")
	for name, f := range charts {
		checkLayout(t, name, f)
	}
	if n := charts["ttft"].Notes; len(n) != 1 || n[0] != "no-streams: "+EmptyTTFT {
		t.Errorf("ttft notes %q, want the run without streams named", n)
	}
	dir := artifacts(t, "report-compare")
	table, err := Compare(dir, groups, "run", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table)
	for _, name := range Files {
		checkPNG(t, filepath.Join(dir, name+".png"))
	}
	for _, g := range groups {
		s := Summarize(g)
		row := fmt.Sprintf("| %s | %d | %d | %s | %s |", g.Name, s.Calls, s.Errors, llmscope.FormatMS(s.LatencyP50MS), llmscope.FormatMS(s.LatencyP95MS))
		if !strings.Contains(table, row) {
			t.Errorf("table lacks %q", row)
		}
	}
	if !strings.Contains(table, "| no-streams | 40 | 2 |") || !strings.Contains(table, "| – |") {
		t.Errorf("table: %s", table)
	}
}

func TestTimeTicks(t *testing.T) {
	base := float64(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).Unix())
	for _, span := range []float64{20, 120, 600, 3600, 6 * 3600, 3 * 86400, 60 * 86400} {
		ticks := timeTicks{}.Ticks(base, base+span)
		seen := map[string]bool{}
		labelled := 0
		for _, tk := range ticks {
			if tk.Label == "" {
				continue
			}
			if seen[tk.Label] {
				t.Errorf("span %gs: duplicate label %q", span, tk.Label)
			}
			seen[tk.Label] = true
			labelled++
		}
		if labelled < 2 || labelled > 8 {
			t.Errorf("span %gs: %d labels: %v", span, labelled, ticks)
		}
		if span == 120 && !strings.Contains(ticks[0].Label, ":00:") && len(ticks[0].Label) != len("09:00:00") {
			t.Errorf("two minutes: labels %v lack seconds", ticks)
		}
	}
}

func TestHumanTicks(t *testing.T) {
	for _, tk := range (humanTicks{llmscope.FormatCount, true}).Ticks(0, 7.5) {
		if strings.Contains(tk.Label, ".") {
			t.Errorf("count axis label %q", tk.Label)
		}
	}
	for _, tk := range (humanTicks{llmscope.FormatCount, false}).Ticks(0, 2000) {
		if strings.Contains(tk.Label, ".00") {
			t.Errorf("label %q", tk.Label)
		}
	}
}

// TestPlaceLabels: overlapping inputs never give intersecting placed boxes,
// all of them stay inside the bounds and off the obstacles.
func TestPlaceLabels(t *testing.T) {
	bounds := vg.Rectangle{Max: vg.Point{X: 400, Y: 300}}
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 50 {
		var labels []Label
		var obstacles []vg.Rectangle
		n := 5 + trial
		for i := range n {
			// Many anchors on the same few spots: the worst case.
			a := vg.Point{X: vg.Length(100 + 20*(i%3) + r.IntN(5)), Y: vg.Length(150 + 10*(i%2))}
			labels = append(labels, Label{Anchor: a, R: 5, W: vg.Length(60 + r.IntN(80)), H: 12})
			obstacles = append(obstacles, vg.Rectangle{Min: vg.Point{X: a.X - 5, Y: a.Y - 5}, Max: vg.Point{X: a.X + 5, Y: a.Y + 5}})
		}
		boxes, placed := PlaceLabels(labels, bounds, obstacles)
		count := 0
		for i := range boxes {
			if !placed[i] {
				continue
			}
			count++
			if !inside(boxes[i], bounds) || hitsAny(boxes[i], obstacles) {
				t.Fatalf("trial %d: box %d %v outside or on a point", trial, i, boxes[i])
			}
			for j := range i {
				if placed[j] && Overlaps(boxes[i], boxes[j]) {
					t.Fatalf("trial %d: boxes %d %v and %d %v intersect", trial, i, boxes[i], j, boxes[j])
				}
			}
		}
		if count == 0 {
			t.Fatalf("trial %d: nothing placed", trial)
		}
		if trial == 0 && count != n {
			t.Errorf("5 labels on free space: only %d placed", count)
		}
	}
}
