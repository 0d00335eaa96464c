package sweep

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"llmscope"
	"llmscope/report"
)

// palette colours the models of a chart.
var palette = []color.Color{
	color.NRGBA{R: 31, G: 119, B: 180, A: 210}, color.NRGBA{R: 255, G: 127, B: 14, A: 210},
	color.NRGBA{R: 44, G: 160, B: 44, A: 210}, color.NRGBA{R: 214, G: 39, B: 40, A: 210},
	color.NRGBA{R: 148, G: 103, B: 189, A: 210}, color.NRGBA{R: 140, G: 86, B: 75, A: 210},
}

// ChartFile is the chart's file name without extension; Chart writes it as
// .png and .svg.
const ChartFile = "cost_vs_accuracy"

// Size of the chart's plot area; the legend and the numbered labels add
// rows below it.
const (
	chartW = 9 * vg.Inch
	chartH = 5 * vg.Inch
)

// Chart draws cost against accuracy, one point per configuration, its size
// growing with the configuration's p50 latency and its label giving that
// latency. Configurations with no score, or (when others have one) without
// a known cost, are left out. When no cost is known at all, tokens stand in
// for cost. Labels never overprint: one that finds no free spot near its
// point is replaced by a number, listed with its text below the plot.
func (res *Results) Chart(dir string) error {
	f, _, err := res.chartFigure()
	if err != nil {
		return err
	}
	for _, ext := range []string{".png", ".svg"} {
		if err := f.Save(filepath.Join(dir, ChartFile+ext), chartW, chartH); err != nil {
			return fmt.Errorf("chart %s: %w", ext, err)
		}
	}
	return nil
}

// chartPoint is one configuration on the chart.
type chartPoint struct {
	xy    plotter.XY
	label string
	r     vg.Length // glyph radius
}

func labelStyle() text.Style {
	return text.Style{Font: font.From(plot.DefaultFont, 9), Handler: plot.DefaultTextHandler, Color: color.Black}
}

// chartFigure builds the chart and the label placement it draws.
func (res *Results) chartFigure() (*report.Figure, *placedLabels, error) {
	useCost := false
	for _, r := range res.Rows {
		if _, ok := r.metric("cost"); ok {
			useCost = true
		}
	}
	byModel := map[string][]chartPoint{}
	var models []string
	maxLat := 0.0
	for _, r := range res.Rows {
		maxLat = max(maxLat, r.Calls.LatencyP50MS)
	}
	unpriced := 0
	var all []chartPoint
	for _, r := range res.Rows {
		if r.Accuracy == nil {
			continue
		}
		if _, priced := r.metric("cost"); useCost && !priced {
			unpriced++ // at cost 0 it would look best
			continue
		}
		x := float64(r.Calls.TotalTokens)
		if useCost {
			x = r.Calls.CostUSD
		}
		if _, ok := byModel[r.Model]; !ok {
			models = append(models, r.Model)
		}
		rad := vg.Points(4)
		if maxLat > 0 {
			rad += vg.Points(10 * r.Calls.LatencyP50MS / maxLat)
		}
		pt := chartPoint{plotter.XY{X: finite(x), Y: *r.Accuracy * 100}, fmt.Sprintf("%s · p50 %s", r.Config, llmscope.FormatMS(r.Calls.LatencyP50MS)), rad}
		byModel[r.Model] = append(byModel[r.Model], pt)
		all = append(all, pt)
	}
	p := plot.New()
	p.Title.Text = "Sweep " + res.Sweep + ": cost vs accuracy (point size: latency p50)"
	p.X.Label.Text = "cost of the run"
	p.X.Tick.Marker = humanTicks{llmscope.FormatUSD}
	if !useCost {
		p.X.Label.Text = "tokens of the run (no price known)"
		p.X.Tick.Marker = humanTicks{llmscope.FormatCount}
	}
	if unpriced > 0 {
		p.X.Label.Text += fmt.Sprintf(" — %d configurations without a known price left out", unpriced)
	}
	p.Y.Label.Text = "accuracy (%)"
	p.Y.Min, p.Y.Max = 0, 105
	p.Add(plotter.NewGrid())
	f := &report.Figure{Plot: p}
	for i, m := range models {
		pts := byModel[m]
		xys := make(plotter.XYs, len(pts))
		for j, pt := range pts {
			xys[j] = pt.xy
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, nil, fmt.Errorf("chart: %w", err)
		}
		col := palette[i%len(palette)]
		sc.GlyphStyleFunc = func(j int) draw.GlyphStyle {
			return draw.GlyphStyle{Color: col, Radius: pts[j].r, Shape: draw.CircleGlyph{}}
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(5), Shape: draw.CircleGlyph{}}
		p.Add(sc)
		f.Legend = append(f.Legend, report.LegendEntry{Text: m, Thumb: sc})
	}
	if len(all) == 0 {
		f.Empty = "no configuration has a score yet: nothing to compare"
		p.X.Min, p.X.Max = 0, 1
		return f, nil, nil
	}
	p.X.Min = 0
	p.X.Max = max(p.X.Max*1.1, 1e-9)
	pl := placeChartLabels(all, f.Layout(chartW, chartH).Data, p)
	for i, k := range pl.numbered {
		note := fmt.Sprintf("%d: %s", i+1, all[k].label)
		if slices.Contains(pl.hidden, i) {
			note += " (point under the others, no room for its number)"
		}
		f.Notes = append(f.Notes, note)
	}
	p.Add(pl)
	return f, pl, nil
}

// placedLabels draws the labels of the chart's points where
// placeChartLabels put them, relative to the data area.
type placedLabels struct {
	texts    []string
	boxes    []vg.Rectangle // relative to the data area's lower left corner
	numbered []int          // points whose label is a number, listed below the plot
	hidden   []int          // indexes into numbered whose number found no room either
}

// gap is the blank kept on each side of a label, so neighbours never touch.
const gap = vg.Length(2)

// placeChartLabels places each point's label next to it without touching
// another label or point; the points whose label found no room get a
// number instead (placed the same way), listed below the plot.
func placeChartLabels(pts []chartPoint, data vg.Rectangle, p *plot.Plot) *placedLabels {
	sty := labelStyle()
	h := sty.Rectangle("Mg").Size().Y
	w, hgt := data.Max.X-data.Min.X, data.Max.Y-data.Min.Y
	var labels []report.Label
	var obstacles []vg.Rectangle
	for _, pt := range pts {
		a := vg.Point{X: vg.Length(p.X.Norm(pt.xy.X)) * w, Y: vg.Length(p.Y.Norm(pt.xy.Y)) * hgt}
		labels = append(labels, report.Label{Anchor: a, R: pt.r, W: sty.Width(pt.label) + 2*gap, H: h})
		obstacles = append(obstacles, vg.Rectangle{Min: vg.Point{X: a.X - pt.r, Y: a.Y - pt.r}, Max: vg.Point{X: a.X + pt.r, Y: a.Y + pt.r}})
	}
	bounds := vg.Rectangle{Max: vg.Point{X: w, Y: hgt}}
	boxes, placed := report.PlaceLabels(labels, bounds, obstacles)
	pl := &placedLabels{}
	var numbers []report.Label
	for i, ok := range placed {
		if ok {
			pl.texts = append(pl.texts, pts[i].label)
			pl.boxes = append(pl.boxes, boxes[i])
			obstacles = append(obstacles, boxes[i])
			continue
		}
		pl.numbered = append(pl.numbered, i)
		n := fmt.Sprint(len(pl.numbered))
		numbers = append(numbers, report.Label{Anchor: labels[i].Anchor, R: labels[i].R, W: sty.Width(n) + 2*gap, H: h})
	}
	nboxes, nplaced := report.PlaceLabels(numbers, bounds, obstacles)
	for i, ok := range nplaced {
		if ok {
			pl.texts = append(pl.texts, fmt.Sprint(i+1))
			pl.boxes = append(pl.boxes, nboxes[i])
		} else {
			pl.hidden = append(pl.hidden, i)
		}
	}
	return pl
}

// Plot implements plot.Plotter.
func (pl *placedLabels) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := labelStyle() // aligned left and bottom: the text fills its box
	for i, t := range pl.texts {
		b := pl.boxes[i]
		c.FillText(sty, vg.Point{X: c.Min.X + b.Min.X + gap, Y: c.Min.Y + b.Min.Y}, t)
	}
}

// humanTicks are gonum's default ticks labelled by format.
type humanTicks struct{ format func(float64) string }

func (h humanTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	seen := map[string]bool{}
	for i, t := range ticks {
		if t.Label == "" {
			continue
		}
		l := h.format(t.Value)
		if seen[l] {
			l = ""
		}
		seen[l] = true
		ticks[i].Label = l
	}
	return ticks
}
