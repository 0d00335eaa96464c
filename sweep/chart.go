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

// ChartFile is the chart's file name without extension; Chart writes it as
// .png and .svg.
const ChartFile = "cost_vs_accuracy"

// Chart draws cost against accuracy, one point per configuration, its size
// growing with the configuration's p50 latency and its label giving that
// latency. Configurations with no score are left out. When no cost is
// known, tokens stand in for cost.
func (res *Results) Chart(dir string) error {
	useCost := false
	for _, r := range res.Rows {
		if _, ok := r.metric("cost"); ok {
			useCost = true
		}
	}
	var xys plotter.XYs
	var labels []string
	var lat []float64
	maxLat := 0.0
	for _, r := range res.Rows {
		if r.Accuracy == nil {
			continue
		}
		x := float64(r.Calls.TotalTokens)
		if useCost {
			x = r.Calls.CostUSD
		}
		xys = append(xys, plotter.XY{X: finite(x), Y: *r.Accuracy * 100})
		labels = append(labels, fmt.Sprintf("%s · p50 %.0f ms", r.Config, r.Calls.LatencyP50MS))
		lat = append(lat, r.Calls.LatencyP50MS)
		maxLat = max(maxLat, r.Calls.LatencyP50MS)
	}
	p := plot.New()
	p.Title.Text = "Sweep " + res.Sweep + ": cost vs accuracy (point size: latency p50)"
	p.X.Label.Text = "cost of the run (USD)"
	if !useCost {
		p.X.Label.Text = "tokens of the run (no price known)"
	}
	p.Y.Label.Text = "accuracy (%)"
	p.Y.Min, p.Y.Max = 0, 105
	p.Add(plotter.NewGrid())
	if len(xys) > 0 {
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
			r := vg.Points(4)
			if maxLat > 0 {
				r += vg.Points(10 * lat[i] / maxLat)
			}
			return draw.GlyphStyle{Color: color.RGBA{R: 31, G: 119, B: 180, A: 200}, Radius: r, Shape: draw.CircleGlyph{}}
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].XAlign = draw.XLeft
			lb.Offset = vg.Point{X: vg.Points(8), Y: vg.Points(4)}
		}
		p.Add(sc, lb)
		// Room on the right for the labels of the rightmost points.
		p.X.Min = 0
		p.X.Max = p.X.Max * 1.35
		if p.X.Max == 0 {
			p.X.Max = 1
		}
	}
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(9*vg.Inch, 5*vg.Inch, filepath.Join(dir, ChartFile+ext)); err != nil {
			return fmt.Errorf("chart %s: %w", ext, err)
		}
	}
	return nil
}
