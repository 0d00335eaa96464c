package report

import "gonum.org/v1/plot/vg"

// Label is a text box of size W by H to be placed next to a point drawn
// at Anchor with radius R.
type Label struct {
	Anchor vg.Point
	R      vg.Length
	W, H   vg.Length
}

// PlaceLabels places each label, in order, at the first candidate spot
// around its anchor (right, left, above, below, the diagonals, then the
// same a step further out) that lies inside bounds and intersects neither
// an obstacle (e.g. the points' glyphs) nor a label placed before it. It
// returns each label's box and whether it was placed; a label that found
// no free spot is not placed and its box is zero. No two placed boxes
// intersect.
func PlaceLabels(labels []Label, bounds vg.Rectangle, obstacles []vg.Rectangle) ([]vg.Rectangle, []bool) {
	boxes := make([]vg.Rectangle, len(labels))
	placed := make([]bool, len(labels))
	var taken []vg.Rectangle
	for i, l := range labels {
		for _, b := range candidates(l) {
			if !inside(b, bounds) || hitsAny(b, obstacles) || hitsAny(b, taken) {
				continue
			}
			boxes[i], placed[i] = b, true
			taken = append(taken, b)
			break
		}
	}
	return boxes, placed
}

// candidates lists the spots tried for l, nearest first.
func candidates(l Label) []vg.Rectangle {
	var out []vg.Rectangle
	ax, ay := l.Anchor.X, l.Anchor.Y
	box := func(minX, minY vg.Length) vg.Rectangle {
		return vg.Rectangle{Min: vg.Point{X: minX, Y: minY}, Max: vg.Point{X: minX + l.W, Y: minY + l.H}}
	}
	for ring := range 4 {
		d := l.R + 3 + vg.Length(ring)*l.H
		out = append(out,
			box(ax+d, ay-l.H/2),         // right
			box(ax-d-l.W, ay-l.H/2),     // left
			box(ax-l.W/2, ay+d),         // above
			box(ax-l.W/2, ay-d-l.H),     // below
			box(ax+l.R, ay+d-l.H/2),     // right, up
			box(ax+l.R, ay-d-l.H/2),     // right, down
			box(ax-l.R-l.W, ay+d-l.H/2), // left, up
			box(ax-l.R-l.W, ay-d-l.H/2), // left, down
		)
	}
	return out
}

func inside(b, bounds vg.Rectangle) bool {
	return b.Min.X >= bounds.Min.X && b.Max.X <= bounds.Max.X && b.Min.Y >= bounds.Min.Y && b.Max.Y <= bounds.Max.Y
}

func hitsAny(b vg.Rectangle, rs []vg.Rectangle) bool {
	for _, r := range rs {
		if Overlaps(b, r) {
			return true
		}
	}
	return false
}
