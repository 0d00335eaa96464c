package sweep

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
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

// Chart draws cost against accuracy, one point per configuration, its size
// growing with the configuration's p50 latency and its label giving that
// latency. Configurations with no score, or (when others have one) without
// a known cost, are left out. When no cost is known at all, tokens stand in
// for cost.
func (res *Results) Chart(dir string) error {
	useCost := false
	for _, r := range res.Rows {
		if _, ok := r.metric("cost"); ok {
			useCost = true
		}
	}
	type point struct {
		xy    plotter.XY
		label string
		lat   float64
	}
	byModel := map[string][]point{}
	var models []string
	maxLat := 0.0
	unpriced := 0
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
		byModel[r.Model] = append(byModel[r.Model], point{plotter.XY{X: finite(x), Y: *r.Accuracy * 100},
			fmt.Sprintf("%s · p50 %.0f ms", r.Config, r.Calls.LatencyP50MS), r.Calls.LatencyP50MS})
		maxLat = max(maxLat, r.Calls.LatencyP50MS)
	}
	p := plot.New()
	p.Title.Text = "Sweep " + res.Sweep + ": cost vs accuracy (point size: latency p50)"
	p.X.Label.Text = "cost of the run (USD)"
	if !useCost {
		p.X.Label.Text = "tokens of the run (no price known)"
	}
	if unpriced > 0 {
		p.X.Label.Text += fmt.Sprintf(" — %d configurations without a known price left out", unpriced)
	}
	p.Y.Label.Text = "accuracy (%)"
	p.Y.Min, p.Y.Max = 0, 105
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	// Configurations with the same cost and accuracy share a point: their
	// labels are stacked below one another instead of drawn over each other.
	stacked := map[plotter.XY]int{}
	for i, m := range models {
		pts := byModel[m]
		xys := make(plotter.XYs, len(pts))
		for j, pt := range pts {
			xys[j] = pt.xy
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		col := palette[i%len(palette)]
		sc.GlyphStyleFunc = func(j int) draw.GlyphStyle {
			r := vg.Points(4)
			if maxLat > 0 {
				r += vg.Points(10 * pts[j].lat / maxLat)
			}
			return draw.GlyphStyle{Color: col, Radius: r, Shape: draw.CircleGlyph{}}
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(5), Shape: draw.CircleGlyph{}}
		p.Add(sc)
		p.Legend.Add(m, sc)
		for _, pt := range pts {
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{pt.xy}, Labels: []string{pt.label}})
			if err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			k := stacked[pt.xy]
			stacked[pt.xy]++
			lb.TextStyle[0].XAlign = draw.XLeft
			lb.Offset = vg.Point{X: vg.Points(16), Y: vg.Points(4 - 12*float64(k))}
			p.Add(lb)
		}
	}
	if len(models) > 0 {
		// Room on the right for the labels of the rightmost points.
		p.X.Min = 0
		p.X.Max = max(p.X.Max*1.4, 1e-9)
	}
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(9*vg.Inch, 5*vg.Inch, filepath.Join(dir, ChartFile+ext)); err != nil {
			return fmt.Errorf("chart %s: %w", ext, err)
		}
	}
	return nil
}
