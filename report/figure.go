package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure is a plot with its legend and notes drawn below it, outside the
// plot area, so they can never cover data; and, when the plot has no data,
// a sentence drawn in the middle of the data area saying why.
type Figure struct {
	Plot   *plot.Plot
	Legend []LegendEntry
	Notes  []string // lines drawn below the legend
	Empty  string   // drawn in the data area when not empty
}

// LegendEntry is one legend item: a thumbnail and its text.
type LegendEntry struct {
	Text  string
	Thumb plot.Thumbnailer
}

// Layout holds where a Figure's parts go on its canvas.
type Layout struct {
	Size   vg.Point       // the whole image
	Plot   vg.Rectangle   // title, axes and data
	Data   vg.Rectangle   // the data area inside Plot
	Legend []vg.Rectangle // one per legend entry (thumbnail and text)
	Notes  []vg.Rectangle // one per note line
}

const (
	pad      = vg.Length(6)
	thumbW   = vg.Length(20)
	entryGap = vg.Length(14)
)

func legendStyle() text.Style {
	return text.Style{Font: font.From(plot.DefaultFont, 11), Handler: plot.DefaultTextHandler, Color: color.Black}
}

// Layout places the figure on a canvas w wide whose plot area is h high;
// the legend and notes add rows below it.
func (f *Figure) Layout(w, h vg.Length) Layout {
	sty := legendStyle()
	lineH := sty.Rectangle("Mg").Size().Y + 3
	// Legend entries flow left to right, wrapping to new rows.
	var rects []vg.Rectangle
	x, row := pad, 0
	for _, e := range f.Legend {
		ew := thumbW + 4 + sty.Width(e.Text)
		if x > pad && x+ew > w-pad {
			x, row = pad, row+1
		}
		rects = append(rects, vg.Rectangle{Min: vg.Point{X: x, Y: -vg.Length(row+1) * lineH}, Max: vg.Point{X: x + ew, Y: -vg.Length(row) * lineH}})
		x += ew + entryGap
	}
	rows := 0
	if len(f.Legend) > 0 {
		rows = row + 1
	}
	var notes []vg.Rectangle
	for i, n := range f.Notes {
		y := -vg.Length(rows+i) * lineH
		notes = append(notes, vg.Rectangle{Min: vg.Point{X: pad, Y: y - lineH}, Max: vg.Point{X: pad + sty.Width(n), Y: y}})
	}
	footer := vg.Length(rows+len(f.Notes)) * lineH
	if footer > 0 {
		footer += 2 * pad
	}
	total := h + footer
	// Shift the footer rows from "below 0" to just under the plot area.
	top := footer - pad
	for i := range rects {
		rects[i].Min.Y += top
		rects[i].Max.Y += top
	}
	for i := range notes {
		notes[i].Min.Y += top
		notes[i].Max.Y += top
	}
	plotR := vg.Rectangle{Min: vg.Point{X: 0, Y: footer}, Max: vg.Point{X: w, Y: total}}
	data := f.Plot.DataCanvas(draw.Canvas{Rectangle: plotR}).Rectangle
	return Layout{Size: vg.Point{X: w, Y: total}, Plot: plotR, Data: data, Legend: rects, Notes: notes}
}

// Draw draws the figure on c laid out as l.
func (f *Figure) Draw(c draw.Canvas, l Layout) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	pc := draw.Canvas{Canvas: c.Canvas, Rectangle: l.Plot}
	f.Plot.Draw(pc)
	sty := legendStyle()
	for i, e := range f.Legend {
		r := l.Legend[i]
		thumb := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: r.Min.X, Y: r.Min.Y + 2}, Max: vg.Point{X: r.Min.X + thumbW, Y: r.Max.Y - 2}}}
		if e.Thumb != nil {
			e.Thumb.Thumbnail(&thumb)
		}
		c.FillText(sty, vg.Point{X: r.Min.X + thumbW + 4, Y: r.Min.Y + 3}, e.Text)
	}
	for i, n := range f.Notes {
		c.FillText(sty, vg.Point{X: l.Notes[i].Min.X, Y: l.Notes[i].Min.Y + 3}, n)
	}
	if f.Empty != "" {
		es := legendStyle()
		es.Font.Size = 13
		es.Color = color.Gray{Y: 80}
		es.XAlign, es.YAlign = draw.XCenter, draw.YCenter
		lines := wrap(f.Empty, es, l.Data.Size().X-2*pad)
		c.FillText(es, vg.Point{X: (l.Data.Min.X + l.Data.Max.X) / 2, Y: (l.Data.Min.Y + l.Data.Max.Y) / 2}, strings.Join(lines, "\n"))
	}
}

// wrap breaks s into lines no wider than w where it can.
func wrap(s string, sty text.Style, w vg.Length) []string {
	var lines []string
	cur := ""
	for _, word := range strings.Fields(s) {
		if cur != "" && sty.Width(cur+" "+word) > w {
			lines, cur = append(lines, cur), word
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += word
	}
	return append(lines, cur)
}

// Width and Height are the size of a chart's plot area; the legend adds
// rows below it.
const (
	Width  = 8 * vg.Inch
	Height = 4.5 * vg.Inch
)

// Save writes the figure to path (.png or .svg) with a plot area w by h.
func (f *Figure) Save(path string, w, h vg.Length) error {
	l := f.Layout(w, h)
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	c, err := draw.NewFormattedCanvas(l.Size.X, l.Size.Y, format)
	if err != nil {
		return err
	}
	f.Draw(draw.New(c), l)
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// SaveAll writes the figure as dir/name.png and dir/name.svg.
func (f *Figure) SaveAll(dir, name string, w, h vg.Length) error {
	for _, ext := range []string{".png", ".svg"} {
		if err := f.Save(filepath.Join(dir, name+ext), w, h); err != nil {
			return fmt.Errorf("%s%s: %w", name, ext, err)
		}
	}
	return nil
}

// Overlaps reports whether two rectangles share any area.
func Overlaps(a, b vg.Rectangle) bool {
	return a.Min.X < b.Max.X && b.Min.X < a.Max.X && a.Min.Y < b.Max.Y && b.Min.Y < a.Max.Y
}
