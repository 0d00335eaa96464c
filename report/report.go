// Package report draws charts of recorded calls (PNG and SVG, with
// gonum/plot) and writes a summary.md with the same figures. Legends and
// notes are drawn below the plot area, never over data; a chart without
// data says why in its data area.
package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"llmscope"
)

// Files lists the charts Write draws; each is written as .png and .svg.
var Files = []string{"tokens", "latency", "latency_ecdf", "ttft", "requests_over_time", "tokens_over_time", "cost_over_time", "models_latency", "models_cost"}

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	red    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	purple = color.RGBA{R: 148, G: 103, B: 189, A: 255}
)

// Palette colours the runs of a comparison, one colour each.
var Palette = []color.RGBA{blue, orange, green, red, purple,
	{R: 140, G: 86, B: 75, A: 255}, {R: 227, G: 119, B: 194, A: 255}, {R: 127, G: 127, B: 127, A: 255},
	{R: 188, G: 189, B: 34, A: 255}, {R: 23, G: 190, B: 207, A: 255}}

// Why a chart is empty, drawn in its data area.
const (
	EmptyCalls  = "no calls in this range"
	EmptyTokens = "no calls with token usage in this range"
	EmptyTTFT   = "no streamed calls in this range: no time to first token"
	EmptyCost   = "no calls in this range"
)

// Write draws every chart of calls into dir, with summary.md built from
// stats (the store's figures for the same calls).
func Write(dir string, calls []*llmscope.Call, stats *llmscope.Stats, title string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := saveAll(dir, Charts(calls, stats), title); err != nil {
		return err
	}
	return writeSummary(filepath.Join(dir, "summary.md"), stats, title)
}

func saveAll(dir string, charts map[string]*Figure, title string) error {
	for _, name := range Files {
		f := charts[name]
		if title != "" {
			f.Plot.Title.Text += " — " + title
		}
		if err := f.SaveAll(dir, name, Width, Height); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

// Charts builds the figures Write saves, by name (see Files).
func Charts(calls []*llmscope.Call, stats *llmscope.Stats) map[string]*Figure {
	var lat, ttft, in, out []float64
	for _, c := range calls {
		lat = append(lat, c.DurationMS)
		if c.Stream && c.TTFTMS > 0 {
			ttft = append(ttft, c.TTFTMS)
		}
		if c.Usage.Source != llmscope.UsageNone {
			in = append(in, float64(c.Usage.InputTokens))
			out = append(out, float64(c.Usage.OutputTokens))
		}
	}
	slices.Sort(lat)
	slices.Sort(ttft)
	charts := map[string]*Figure{
		"tokens":         histograms("Token usage per call", "tokens per call", llmscope.FormatCount, []series{{"input", in, blue}, {"output", out, orange}}, true, EmptyTokens),
		"latency":        marked(histograms("Latency per call", "latency", llmscope.FormatMS, []series{{"calls", lat, blue}}, true, EmptyCalls), lat),
		"latency_ecdf":   marked(ecdf("Latency, cumulative", "latency", []series{{"calls", lat, blue}}, EmptyCalls), lat),
		"ttft":           marked(histograms("Time to first token (streams)", "time to first token", llmscope.FormatMS, []series{{"streamed calls", ttft, green}}, true, EmptyTTFT), ttft),
		"models_latency": modelBars("Latency by model", "latency", llmscope.FormatMS, stats, func(s llmscope.Summary) []float64 { return []float64{s.LatencyP50MS, s.LatencyP95MS} }, []string{"p50", "p95"}),
		"models_cost":    modelBars("Cost by model", "cost", llmscope.FormatUSD, stats, func(s llmscope.Summary) []float64 { return []float64{s.CostUSD} }, []string{"cost"}),
	}
	ts := overTime([]Group{{Name: "calls", Calls: calls}})
	charts["requests_over_time"] = timeLines("Requests over time", "requests "+stepName(ts.step), llmscope.FormatCount, ts, 0, []color.RGBA{purple})
	charts["tokens_over_time"] = timeLines("Tokens over time", "tokens "+stepName(ts.step), llmscope.FormatCount, ts, 1, []color.RGBA{purple})
	charts["cost_over_time"] = timeLines("Cost over time", "USD "+stepName(ts.step), llmscope.FormatUSD, ts, 2, []color.RGBA{purple})
	return charts
}

type series struct {
	name   string
	values []float64
	color  color.RGBA
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

// empty sets up f for a chart with no data: sane axes, and why.
func empty(f *Figure, why string) *Figure {
	f.Plot.X.Min, f.Plot.X.Max = 0, 1
	f.Plot.Y.Min, f.Plot.Y.Max = 0, 1
	f.Plot.X.Tick.Marker = plot.ConstantTicks{}
	f.Plot.Y.Tick.Marker = plot.ConstantTicks{}
	f.Empty = why
	return f
}

func countTicks() plot.Ticker { return humanTicks{llmscope.FormatCount, true} }

// histograms draws one histogram per series on shared bins: filled and
// see-through when fill is set, outlines only (readable when many runs
// overlap) otherwise.
func histograms(title, x string, xfmt func(float64) string, ss []series, fill bool, why string) *Figure {
	p := newPlot(title, x, "calls")
	f := &Figure{Plot: p}
	lo, hi, n := 0.0, 0.0, 0
	for _, s := range ss {
		for _, v := range s.values {
			if n == 0 || v < lo {
				lo = v
			}
			if n == 0 || v > hi {
				hi = v
			}
			n++
		}
	}
	if n == 0 {
		return empty(f, why)
	}
	if hi == lo {
		lo, hi = lo-0.5, hi+0.5
	}
	const bins = 30
	width := (hi - lo) / bins
	for _, s := range ss {
		if len(s.values) == 0 {
			f.Notes = append(f.Notes, s.name+": "+why) // say so rather than drop it silently
			continue
		}
		counts := make([]float64, bins)
		for _, v := range s.values {
			i := min(int((v-lo)/width), bins-1)
			counts[i]++
		}
		if fill {
			h := &plotter.Histogram{Width: width, LineStyle: plotter.DefaultLineStyle}
			for i, c := range counts {
				h.Bins = append(h.Bins, plotter.HistogramBin{Min: lo + float64(i)*width, Max: lo + float64(i+1)*width, Weight: c})
			}
			h.FillColor = color.NRGBA{R: s.color.R, G: s.color.G, B: s.color.B, A: 150} // see-through, so overlaid series both show
			h.LineStyle.Color = s.color
			p.Add(h)
			f.Legend = append(f.Legend, LegendEntry{fmt.Sprintf("%s (n=%d)", s.name, len(s.values)), h})
			continue
		}
		xys := plotter.XYs{{X: lo, Y: 0}}
		for i, c := range counts {
			xys = append(xys, plotter.XY{X: lo + float64(i)*width, Y: c})
		}
		xys = append(xys, plotter.XY{X: hi, Y: counts[bins-1]}, plotter.XY{X: hi, Y: 0})
		l, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		l.StepStyle = plotter.PostStep
		l.Color = s.color
		l.Width = vg.Points(1.5)
		p.Add(l)
		f.Legend = append(f.Legend, LegendEntry{fmt.Sprintf("%s (n=%d)", s.name, len(s.values)), l})
	}
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.05
	p.X.Tick.Marker = humanTicks{xfmt, false}
	p.Y.Tick.Marker = countTicks()
	return f
}

// ecdf draws the empirical cumulative distribution of each series'
// sorted values.
func ecdf(title, x string, ss []series, why string) *Figure {
	p := newPlot(title, x, "share of calls")
	f := &Figure{Plot: p}
	for _, s := range ss {
		if len(s.values) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(s.values))
		for i, v := range s.values {
			pts[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(s.values))}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			continue
		}
		l.StepStyle = plotter.PostStep
		l.Color = s.color
		l.Width = vg.Points(1.5)
		p.Add(l)
		f.Legend = append(f.Legend, LegendEntry{fmt.Sprintf("%s (n=%d)", s.name, len(s.values)), l})
	}
	if len(f.Legend) == 0 {
		return empty(f, why)
	}
	p.Y.Min, p.Y.Max = 0, 1
	p.X.Tick.Marker = humanTicks{llmscope.FormatMS, false}
	p.Y.Tick.Marker = humanTicks{func(v float64) string { return llmscope.FormatSig(v*100, 3) + "%" }, false}
	return f
}

// marked adds vertical lines at the p50, p95 and p99 of sorted values.
func marked(f *Figure, sorted []float64) *Figure {
	if len(sorted) == 0 {
		return f
	}
	for _, m := range []struct {
		q float64
		c color.Color
	}{{50, green}, {95, orange}, {99, red}} {
		v := llmscope.Percentile(sorted, m.q)
		f.Legend = append(f.Legend, LegendEntry{fmt.Sprintf("p%.0f = %s", m.q, llmscope.FormatMS(v)), addVLine(f.Plot, v, m.c)})
	}
	return f
}

// addVLine adds a dashed vertical line at x across the plot.
func addVLine(p *plot.Plot, x float64, c color.Color) *plotter.Line {
	line := &plotter.Line{XYs: plotter.XYs{{X: x, Y: 0}, {X: x, Y: 0}}}
	line.Color = c
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	line.Width = vg.Points(1.5)
	p.Add(vline{line: line, x: x})
	return line
}

// vline is a vertical line across the whole plot.
type vline struct {
	line *plotter.Line
	x    float64
}

func (v vline) Plot(c draw.Canvas, p *plot.Plot) {
	x := p.X.Norm(v.x)*float64(c.Max.X-c.Min.X) + float64(c.Min.X)
	c.StrokeLine2(v.line.LineStyle, vg.Length(x), c.Min.Y, vg.Length(x), c.Max.Y)
}

// timeSeries holds per-bucket requests, tokens and cost of each group on
// one shared bucket grid (Unix seconds of each bucket's start).
type timeSeries struct {
	step   time.Duration
	names  []string
	values [][3]plotter.XYs // per group: requests, tokens, cost
}

// overTime buckets each group's calls on a grid whose step fits the span
// of all calls (about 40 buckets: 5 s for two minutes, 1 min for an hour),
// empty buckets included, so the lines show the shape of the traffic.
func overTime(groups []Group) timeSeries {
	var first, last time.Time
	for _, g := range groups {
		for _, c := range g.Calls {
			if first.IsZero() || c.Start.Before(first) {
				first = c.Start
			}
			if c.Start.After(last) {
				last = c.Start
			}
		}
	}
	ts := timeSeries{step: niceStep(last.Sub(first), 40)}
	s := int64(ts.step / time.Second)
	k0 := first.Unix() / s
	n := int(last.Unix()/s-k0) + 1
	for _, g := range groups {
		ts.names = append(ts.names, g.Name)
		var v [3]plotter.XYs
		if len(g.Calls) == 0 || first.IsZero() {
			ts.values = append(ts.values, v)
			continue
		}
		for i := range v {
			v[i] = make(plotter.XYs, n)
			for j := range n {
				v[i][j].X = float64((k0 + int64(j)) * s)
			}
		}
		for _, c := range g.Calls {
			j := int(c.Start.Unix()/s - k0)
			v[0][j].Y++
			v[1][j].Y += float64(c.Usage.TotalTokens)
			if c.Cost != nil {
				v[2][j].Y += c.Cost.TotalUSD
			}
		}
		ts.values = append(ts.values, v)
	}
	return ts
}

// timeLines draws measure (0 requests, 1 tokens, 2 cost) of each group
// over time, one colour per group.
func timeLines(title, y string, yfmt func(float64) string, ts timeSeries, measure int, colors []color.RGBA) *Figure {
	p := newPlot(title, "time (UTC), "+strings.TrimPrefix(stepName(ts.step), "per ")+" buckets", y)
	f := &Figure{Plot: p}
	for i, v := range ts.values {
		pts := v[measure]
		if len(pts) == 0 {
			continue
		}
		// Steps, one flat segment per bucket: two buckets make two
		// steps, not a diagonal line that suggests a trend.
		steps := append(append(plotter.XYs{}, pts...), plotter.XY{X: pts[len(pts)-1].X + ts.step.Seconds(), Y: pts[len(pts)-1].Y})
		l, err := plotter.NewLine(steps)
		if err != nil {
			continue
		}
		l.StepStyle = plotter.PostStep
		l.Color = colors[i%len(colors)]
		l.Width = vg.Points(1.5)
		p.Add(l)
		f.Legend = append(f.Legend, LegendEntry{ts.names[i], l})
	}
	if len(f.Legend) == 0 {
		return empty(f, EmptyCalls)
	}
	p.Y.Min, p.Y.Max = 0, max(p.Y.Max*1.08, 1e-9) // headroom: a flat line does not hide in the frame
	p.X.Tick.Marker = timeTicks{}
	p.Y.Tick.Marker = humanTicks{yfmt, measure == 0}
	return f
}

// bars draws grouped bars: one bar per name for each category.
func bars(title, x, y string, yfmt func(float64) string, cats, names []string, vals [][]float64, colors []color.RGBA, why string) *Figure {
	p := newPlot(title, x, y)
	f := &Figure{Plot: p}
	if len(cats) == 0 {
		return empty(f, why)
	}
	w := vg.Points(min(18, 120/float64(max(len(names), 1))))
	for i, name := range names {
		b, err := plotter.NewBarChart(plotter.Values(vals[i]), w)
		if err != nil {
			continue
		}
		b.Color = colors[i%len(colors)]
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-float64(len(names)-1)/2) * w
		p.Add(b)
		f.Legend = append(f.Legend, LegendEntry{name, b})
	}
	p.NominalX(cats...)
	p.X.Min, p.X.Max = -0.6, float64(len(cats))-0.4 // room for the outer labels
	p.Y.Min, p.Y.Max = 0, max(p.Y.Max*1.05, 1e-9)
	p.Y.Tick.Marker = humanTicks{yfmt, false}
	return f
}

// modelBars draws grouped bars per model.
func modelBars(title, y string, yfmt func(float64) string, stats *llmscope.Stats, values func(llmscope.Summary) []float64, names []string) *Figure {
	var cats []string
	vals := make([][]float64, len(names))
	if stats != nil {
		for _, g := range stats.Groups {
			cats = append(cats, g.Key)
			for i, v := range values(g) {
				vals[i] = append(vals[i], v)
			}
		}
	}
	if len(names) == 1 {
		// One bar per model: its value under its name, since a tiny one
		// (an embedding's cost) is too short to see.
		for i := range cats {
			cats[i] += "\n" + yfmt(vals[0][i])
		}
	}
	return bars(title, "model", y, yfmt, cats, names, vals, []color.RGBA{blue, orange}, EmptyCalls)
}

func writeSummary(path string, st *llmscope.Stats, title string) error {
	var b strings.Builder
	heading := "llmscope report"
	if title != "" {
		heading += ": " + title
	}
	fmt.Fprintf(&b, "# %s\n\n", heading)
	b.WriteString("| model | calls | errors | input tokens | output tokens | cost | unpriced calls | latency p50 | p95 | p99 | TTFT p50 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, g := range st.Groups {
		b.WriteString(SummaryRow(g.Key, g) + "\n")
	}
	b.WriteString(SummaryRow("**total**", st.Totals) + "\n")
	b.WriteString("\nCharts: ")
	for i, f := range Files {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[%s](%s.svg)", f, f)
	}
	b.WriteString("\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// SummaryRow is summary.md's row for s, in human formats.
func SummaryRow(name string, s llmscope.Summary) string {
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %s | %d | %s | %s | %s | %s |", name, s.Calls, s.Errors, s.InputTokens, s.OutputTokens,
		llmscope.FormatUSD(s.CostUSD), s.CostUnknown, llmscope.FormatMS(s.LatencyP50MS), llmscope.FormatMS(s.LatencyP95MS), llmscope.FormatMS(s.LatencyP99MS), ttftText(s.TTFTP50MS))
}

func ttftText(v float64) string {
	if v == 0 {
		return "–"
	}
	return llmscope.FormatMS(v)
}
