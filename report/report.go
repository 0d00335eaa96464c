// Package report draws charts of recorded calls (PNG and SVG, with
// gonum/plot) and writes a summary.md with the same figures.
package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"sort"
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

// Write draws every chart of calls into dir, with summary.md built from
// stats (the store's figures for the same calls).
func Write(dir string, calls []*llmscope.Call, stats *llmscope.Stats, title string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
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
	charts := map[string]*plot.Plot{
		"tokens":         histograms("Token usage per call", "tokens per call", []series{{"input", in, blue}, {"output", out, orange}}),
		"latency":        marked(histograms("Latency per call", "latency (ms)", []series{{"calls", lat, blue}}), lat),
		"latency_ecdf":   marked(ecdf("Latency, cumulative", "latency (ms)", lat), lat),
		"ttft":           marked(histograms("Time to first token (streams)", "TTFT (ms)", []series{{"streamed calls", ttft, green}}), ttft),
		"models_latency": modelBars("Latency by model", "latency (ms)", stats, func(s llmscope.Summary) []float64 { return []float64{s.LatencyP50MS, s.LatencyP95MS} }, []string{"p50", "p95"}),
		"models_cost":    modelBars("Cost by model", "cost (USD)", stats, func(s llmscope.Summary) []float64 { return []float64{s.CostUSD} }, []string{"cost"}),
	}
	req, tok, cost := overTime(calls)
	charts["requests_over_time"] = timeLine("Requests over time", "requests per minute", req)
	charts["tokens_over_time"] = timeLine("Tokens over time", "tokens per minute", tok)
	charts["cost_over_time"] = timeLine("Cost over time", "USD per minute", cost)
	for _, name := range Files {
		p := charts[name]
		if title != "" {
			p.Title.Text += " — " + title
		}
		for _, ext := range []string{".png", ".svg"} {
			if err := p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, name+ext)); err != nil {
				return fmt.Errorf("report: %s%s: %w", name, ext, err)
			}
		}
	}
	return writeSummary(filepath.Join(dir, "summary.md"), stats, title)
}

type series struct {
	name   string
	values []float64
	color  color.Color
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

// histograms draws one histogram per series on shared bins.
func histograms(title, x string, ss []series) *plot.Plot {
	p := newPlot(title, x, "calls")
	for _, s := range ss {
		if len(s.values) == 0 {
			continue
		}
		h, err := plotter.NewHist(plotter.Values(s.values), 30)
		if err != nil {
			continue
		}
		c := s.color.(color.RGBA)
		h.FillColor = color.NRGBA{R: c.R, G: c.G, B: c.B, A: 150} // see-through, so overlaid series both show
		h.LineStyle.Color = s.color
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.name, len(s.values)), h)
	}
	if noData(ss) {
		p.Title.Text += " (no data)"
	}
	return p
}

func noData(ss []series) bool {
	for _, s := range ss {
		if len(s.values) > 0 {
			return false
		}
	}
	return true
}

// ecdf draws the empirical cumulative distribution of sorted values.
func ecdf(title, x string, sorted []float64) *plot.Plot {
	p := newPlot(title, x, "share of calls")
	if len(sorted) == 0 {
		p.Title.Text += " (no data)"
		return p
	}
	pts := make(plotter.XYs, len(sorted))
	for i, v := range sorted {
		pts[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(sorted))}
	}
	l, err := plotter.NewLine(pts)
	if err == nil {
		l.Color = blue
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("calls (n=%d)", len(sorted)), l)
	}
	return p
}

// marked adds vertical lines at the p50, p95 and p99 of sorted values.
func marked(p *plot.Plot, sorted []float64) *plot.Plot {
	if len(sorted) == 0 {
		return p
	}
	for _, m := range []struct {
		q float64
		c color.Color
	}{{50, green}, {95, orange}, {99, red}} {
		v := llmscope.Percentile(sorted, m.q)
		line := &plotter.Line{XYs: plotter.XYs{{X: v, Y: 0}, {X: v, Y: 0}}}
		line.Color = m.c
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Width = vg.Points(1.5)
		p.Add(vline{line: line, x: v})
		p.Legend.Add(fmt.Sprintf("p%.0f = %.1f ms", m.q, v), line)
	}
	return p
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

// overTime buckets calls per minute: requests, tokens and cost.
func overTime(calls []*llmscope.Call) (req, tok, cost plotter.XYs) {
	type bucket struct{ n, tokens, cost float64 }
	m := map[int64]*bucket{}
	for _, c := range calls {
		k := c.Start.Unix() / 60
		b := m[k]
		if b == nil {
			b = &bucket{}
			m[k] = b
		}
		b.n++
		b.tokens += float64(c.Usage.TotalTokens)
		if c.Cost != nil {
			b.cost += c.Cost.TotalUSD
		}
	}
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		x := float64(k * 60)
		req = append(req, plotter.XY{X: x, Y: m[k].n})
		tok = append(tok, plotter.XY{X: x, Y: m[k].tokens})
		cost = append(cost, plotter.XY{X: x, Y: m[k].cost})
	}
	return req, tok, cost
}

func timeLine(title, y string, pts plotter.XYs) *plot.Plot {
	p := newPlot(title, "time (UTC)", y)
	p.X.Tick.Marker = plot.TimeTicks{Format: "01-02 15:04", Time: func(t float64) time.Time { return time.Unix(int64(t), 0).UTC() }}
	if len(pts) == 0 {
		p.Title.Text += " (no data)"
		return p
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err == nil {
		l.Color, s.Color = purple, purple
		p.Add(l, s)
		p.Legend.Add(y, l)
	}
	return p
}

// modelBars draws grouped bars per model.
func modelBars(title, y string, stats *llmscope.Stats, values func(llmscope.Summary) []float64, names []string) *plot.Plot {
	p := newPlot(title, "model", y)
	if stats == nil || len(stats.Groups) == 0 {
		p.Title.Text += " (no data)"
		return p
	}
	var labels []string
	cols := []color.Color{blue, orange}
	w := vg.Points(18)
	for i, name := range names {
		var vals plotter.Values
		for _, g := range stats.Groups {
			vals = append(vals, values(g)[i])
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			continue
		}
		b.Color = cols[i%len(cols)]
		b.Offset = vg.Length(float64(i)-float64(len(names)-1)/2) * w
		p.Add(b)
		p.Legend.Add(name, b)
	}
	for _, g := range stats.Groups {
		labels = append(labels, g.Key)
	}
	p.NominalX(labels...)
	return p
}

func writeSummary(path string, st *llmscope.Stats, title string) error {
	var b strings.Builder
	heading := "llmscope report"
	if title != "" {
		heading += ": " + title
	}
	fmt.Fprintf(&b, "# %s\n\n", heading)
	b.WriteString("| model | calls | errors | input tokens | output tokens | cost (USD) | unpriced calls | latency p50 (ms) | p95 (ms) | p99 (ms) | TTFT p50 (ms) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, s llmscope.Summary) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.6f | %d | %.1f | %.1f | %.1f | %.1f |\n", name, s.Calls, s.Errors, s.InputTokens, s.OutputTokens,
			s.CostUSD, s.CostUnknown, s.LatencyP50MS, s.LatencyP95MS, s.LatencyP99MS, s.TTFTP50MS)
	}
	for _, g := range st.Groups {
		row(g.Key, g)
	}
	row("**total**", st.Totals)
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
