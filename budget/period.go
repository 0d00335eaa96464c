package budget

import (
	"fmt"
	"math"
	"time"
)

// Clock tells the time. The Enforcer and the Limiter read it on every
// check, so tests can drive periods and windows with a fake one.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Period is the span a budget's limit applies to. Periods are calendar
// periods in UTC: a budget's spend restarts from zero at each boundary.
type Period string

// The periods a budget can have.
const (
	Day   Period = "day"   // from 00:00 UTC to the next 00:00 UTC
	Week  Period = "week"  // ISO week: from Monday 00:00 UTC to the next Monday
	Month Period = "month" // from the 1st 00:00 UTC to the next month's 1st
	Total Period = "total" // never resets
)

// Valid reports whether p is one of Day, Week, Month, Total.
func (p Period) Valid() bool {
	switch p {
	case Day, Week, Month, Total:
		return true
	}
	return false
}

// Bounds returns the period containing t: start ≤ t < end, both in UTC.
// For Total, start is the Unix epoch and end is the zero Time (never).
func (p Period) Bounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case Day:
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	case Week:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 7)
	case Month:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Unix(0, 0).UTC(), time.Time{}
}

// NanoUSD is an amount of US dollars in units of 10⁻⁹ USD. Budgets account
// in it so that sums are exact and stores can add them atomically as
// integers (a bigint column); its range is ±9.2 billion USD.
type NanoUSD int64

// nanoPerUSD is the number of NanoUSD in one dollar.
const nanoPerUSD = 1e9

// ToNano converts usd to NanoUSD, rounding up (a reservation is never
// smaller than the worst case it stands for). Negative, NaN and infinite
// amounts are errors.
func ToNano(usd float64) (NanoUSD, error) {
	if math.IsNaN(usd) || usd < 0 || usd*nanoPerUSD >= math.MaxInt64 {
		return 0, fmt.Errorf("usd amount %v: not a finite amount ≥ 0", usd)
	}
	return NanoUSD(math.Ceil(usd*nanoPerUSD - 1e-6)), nil
}

// USD returns n in dollars.
func (n NanoUSD) USD() float64 { return float64(n) / nanoPerUSD }

// InputOutputPrice is a model's price in USD per 1,000,000 tokens, as the
// pricing package states it (pricing.Price.Input and .Output).
type InputOutputPrice struct {
	Input  float64 `yaml:"input" json:"input"`
	Output float64 `yaml:"output" json:"output"`
}

// WorstCase returns the most a call can cost in USD: all inputTokens at the
// input price plus maxOutputTokens at the output price. The caller counts
// inputTokens with the tokenizer and takes maxOutputTokens from the
// request's max_tokens / max_completion_tokens / max_output_tokens, or the
// model's output limit when the request sets none. Negative counts count
// as 0. Cache discounts are ignored, so the figure is an upper bound when
// the counts and the price are right.
func WorstCase(inputTokens, maxOutputTokens int64, price InputOutputPrice) float64 {
	in, out := max(inputTokens, 0), max(maxOutputTokens, 0)
	return (float64(in)*price.Input + float64(out)*price.Output) / 1e6
}
