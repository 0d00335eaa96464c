package report

import (
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
)

// humanTicks are gonum's default ticks labelled by format (e.g.
// llmscope.FormatCount), with no two major labels alike.
type humanTicks struct {
	format  func(float64) string
	integer bool // label whole numbers only (counts of calls)
}

func (h humanTicks) Ticks(min, max float64) []plot.Tick {
	if h.integer && max-min <= 40 {
		// Whole steps of 1, 2, 5 or 10, about five labels.
		step := 1.0
		for _, s := range []float64{1, 2, 5, 10} {
			step = s
			if (max-min)/s <= 6 {
				break
			}
		}
		var ticks []plot.Tick
		for v := math.Ceil(min/step) * step; v <= max+1e-9; v += step {
			ticks = append(ticks, plot.Tick{Value: v, Label: h.format(v)})
		}
		return ticks
	}
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	seen := map[string]bool{}
	for i, t := range ticks {
		if t.Label == "" {
			continue
		}
		if h.integer && t.Value != math.Trunc(t.Value) {
			ticks[i].Label = ""
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

// timeSteps are the tick and bucket steps a time axis may use.
var timeSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// niceStep returns the smallest step in timeSteps that cuts span into at
// most n pieces.
func niceStep(span time.Duration, n int) time.Duration {
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			return s
		}
	}
	return timeSteps[len(timeSteps)-1]
}

// timeTicks labels a time axis (Unix seconds, UTC) at a step fitting its
// span: seconds for short spans, minutes, hours, days for longer ones.
type timeTicks struct{}

func (timeTicks) Ticks(min, max float64) []plot.Tick {
	span := time.Duration((max - min) * float64(time.Second))
	step := niceStep(span, 6)
	format := timeFormat(step, span)
	s := step.Seconds()
	var ticks []plot.Tick
	seen := map[string]bool{}
	for v := math.Ceil(min/s) * s; v <= max+1e-9; v += s {
		l := time.Unix(int64(math.Round(v)), 0).UTC().Format(format)
		if seen[l] {
			l = ""
		}
		seen[l] = true
		ticks = append(ticks, plot.Tick{Value: v, Label: l})
	}
	return ticks
}

// timeFormat is the label layout for ticks step apart over span.
func timeFormat(step, span time.Duration) string {
	switch {
	case step >= 24*time.Hour:
		return "01-02"
	case span >= 20*time.Hour:
		return "01-02 15:04"
	case step < time.Minute:
		return "15:04:05"
	}
	return "15:04"
}

// stepName names a bucket step for an axis label: "per 5 s", "per minute".
func stepName(step time.Duration) string {
	switch {
	case step == time.Second:
		return "per second"
	case step < time.Minute:
		return "per " + itoa(int(step/time.Second)) + " s"
	case step == time.Minute:
		return "per minute"
	case step < time.Hour:
		return "per " + itoa(int(step/time.Minute)) + " min"
	case step == time.Hour:
		return "per hour"
	case step < 24*time.Hour:
		return "per " + itoa(int(step/time.Hour)) + " h"
	case step == 24*time.Hour:
		return "per day"
	}
	return "per " + itoa(int(step/(24*time.Hour))) + " days"
}

func itoa(i int) string { return strconv.Itoa(i) }
