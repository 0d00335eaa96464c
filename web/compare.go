package web

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"llmscope"
)

// Limits of GET /api/compare.
const (
	MinCompareValues    = 2
	MaxCompareValues    = 6
	DefaultCompareCalls = 5000  // calls read per value unless limit= says otherwise
	MaxCompareCalls     = 20000 // the largest limit= accepted
	// Alpha is the significance level of the comparison's verdicts.
	Alpha = 0.05
)

// Comparison is the answer of GET /api/compare.
type Comparison struct {
	By     string          `json:"by"` // "experiment" or "run"
	Since  string          `json:"since,omitempty"`
	Limit  int             `json:"limit"` // calls read per value, newest first
	Values []*CompareValue `json:"values"`
	Diffs  []*CompareDiff  `json:"diffs"` // one per value after the first, against the first
}

// CompareValue sums up the calls of one experiment or run: its newest Limit
// calls in the window (all of them unless Truncated).
type CompareValue struct {
	Value          string    `json:"value"`
	Calls          int       `json:"calls"`           // calls summarised here
	CallsInWindow  int64     `json:"calls_in_window"` // all the value's calls in the window
	Truncated      bool      `json:"truncated"`       // Calls < CallsInWindow: only the newest were read
	Errors         int       `json:"errors"`
	ErrorRate      *float64  `json:"error_rate"` // null without calls
	LatencyP50MS   *float64  `json:"latency_p50_ms"`
	LatencyP95MS   *float64  `json:"latency_p95_ms"`
	LatencyP99MS   *float64  `json:"latency_p99_ms"`
	Streamed       int       `json:"streamed"`    // calls with a time to first token
	TTFTP50MS      *float64  `json:"ttft_p50_ms"` // null when no call streamed
	TTFTP95MS      *float64  `json:"ttft_p95_ms"`
	InputPerCall   *float64  `json:"input_tokens_per_call"`
	OutputPerCall  *float64  `json:"output_tokens_per_call"`
	PricedCalls    int       `json:"priced_calls"`
	CostPerCall    *float64  `json:"cost_per_call_usd"`      // over priced calls; null when none is
	CostPer1KToken *float64  `json:"cost_per_1k_tokens_usd"` // over priced calls' tokens
	LatencyMS      []float64 `json:"latency_samples_ms"`     // newest first
	TTFTMS         []float64 `json:"ttft_samples_ms"`        // newest first, streamed calls only
}

// CompareDiff compares one value with the first (the base).
type CompareDiff struct {
	Value            string   `json:"value"`
	Base             string   `json:"base"`
	LatencyP50Ratio  *float64 `json:"latency_p50_ratio"`   // value's p50 / base's p50
	ErrorRateDiff    *float64 `json:"error_rate_diff"`     // value's error rate − base's
	CostPerCallRatio *float64 `json:"cost_per_call_ratio"` // null when either cost is unknown
	MannWhitneyU     *float64 `json:"mann_whitney_u"`      // U of the value's latencies against the base's
	PValue           *float64 `json:"p_value"`             // two-sided, normal approximation
	Verdict          string   `json:"verdict"`             // "faster", "slower", "no significant difference", "not enough data"
	Text             string   `json:"text"`                // e.g. "demo-b is 2.3× slower than demo-a (p < 0.001)"
}

// compare serves GET /api/compare?by=experiment|run&values=a,b[,…]&since=…:
// per value, the figures and latency samples of its newest calls, and each
// value after the first against the first, with a Mann–Whitney U test on
// latency. Other filters (model, operation, until, and experiment or run,
// whichever by is not) narrow every value alike.
func (h *Handler) compare(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) { writeError(w, http.StatusBadRequest, "invalid_request_error", msg) }
	by := q.Get("by")
	if by != "experiment" && by != "run" {
		bad(`by must be "experiment" or "run"`)
		return
	}
	var values []string
	for _, v := range strings.Split(q.Get("values"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			if slices.Contains(values, v) {
				bad("values names " + strconv.Quote(v) + " twice")
				return
			}
			values = append(values, v)
		}
	}
	if len(values) < MinCompareValues || len(values) > MaxCompareValues {
		bad(fmt.Sprintf("values must name %d to %d %ss, comma-separated; it names %d", MinCompareValues, MaxCompareValues, by, len(values)))
		return
	}
	limit := DefaultCompareCalls
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCompareCalls {
			bad(fmt.Sprintf("limit %q is not an integer from 1 to %d", v, MaxCompareCalls))
			return
		}
		limit = n
	}
	q.Del("limit")
	q.Del(by)
	f, err := ParseFilter(q, time.Now())
	if err != nil {
		bad(err.Error())
		return
	}
	f.OmitText = true
	out := &Comparison{By: by, Since: q.Get("since"), Limit: limit, Diffs: []*CompareDiff{}}
	for _, v := range values {
		vf := f
		if by == "experiment" {
			vf.Experiment = v
		} else {
			vf.Run = v
		}
		cv, err := h.compareValue(r, vf, v, limit)
		if err != nil {
			h.log.Error("compare", "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "compare failed")
			return
		}
		out.Values = append(out.Values, cv)
	}
	for _, cv := range out.Values[1:] {
		out.Diffs = append(out.Diffs, diff(out.Values[0], cv))
	}
	writeJSON(w, http.StatusOK, out)
}

// compareValue reads the newest limit calls f selects, in pages.
func (h *Handler) compareValue(r *http.Request, f llmscope.Filter, value string, limit int) (*CompareValue, error) {
	cv := &CompareValue{Value: value, LatencyMS: []float64{}, TTFTMS: []float64{}}
	var in, out, cost float64
	var pricedTokens int64
	for cv.Calls < limit {
		f.Limit = min(1000, limit-cv.Calls)
		calls, err := h.store.List(r.Context(), f)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			cv.Calls++
			if c.Failed() {
				cv.Errors++
			}
			cv.LatencyMS = append(cv.LatencyMS, c.DurationMS)
			if c.TTFTMS > 0 {
				cv.Streamed++
				cv.TTFTMS = append(cv.TTFTMS, c.TTFTMS)
			}
			in += float64(c.Usage.InputTokens)
			out += float64(c.Usage.OutputTokens)
			if c.Cost != nil {
				cv.PricedCalls++
				cost += c.Cost.TotalUSD
				pricedTokens += c.Usage.TotalTokens
			}
		}
		if len(calls) < f.Limit {
			break
		}
		p := llmscope.PositionOf(calls[len(calls)-1])
		f.Before = &p
	}
	cv.CallsInWindow = int64(cv.Calls)
	if cv.Calls == limit {
		f.Before, f.Limit = nil, 0
		s, err := h.store.Stats(r.Context(), f)
		if err != nil {
			return nil, err
		}
		cv.CallsInWindow = max(s.Totals.Calls, int64(cv.Calls))
		cv.Truncated = cv.CallsInWindow > int64(cv.Calls)
	}
	if cv.Calls > 0 {
		n := float64(cv.Calls)
		cv.ErrorRate = ptr(float64(cv.Errors) / n)
		lat := slices.Sorted(slices.Values(cv.LatencyMS))
		cv.LatencyP50MS = ptr(llmscope.Percentile(lat, 50))
		cv.LatencyP95MS = ptr(llmscope.Percentile(lat, 95))
		cv.LatencyP99MS = ptr(llmscope.Percentile(lat, 99))
		cv.InputPerCall, cv.OutputPerCall = ptr(in/n), ptr(out/n)
	}
	if cv.Streamed > 0 {
		tt := slices.Sorted(slices.Values(cv.TTFTMS))
		cv.TTFTP50MS = ptr(llmscope.Percentile(tt, 50))
		cv.TTFTP95MS = ptr(llmscope.Percentile(tt, 95))
	}
	if cv.PricedCalls > 0 {
		cv.CostPerCall = ptr(cost / float64(cv.PricedCalls))
		if pricedTokens > 0 {
			cv.CostPer1KToken = ptr(cost / float64(pricedTokens) * 1000)
		}
	}
	return cv, nil
}

// diff compares v with base.
func diff(base, v *CompareValue) *CompareDiff {
	d := &CompareDiff{Value: v.Value, Base: base.Value, Verdict: "not enough data"}
	if base.LatencyP50MS != nil && v.LatencyP50MS != nil && *base.LatencyP50MS > 0 {
		d.LatencyP50Ratio = ptr(*v.LatencyP50MS / *base.LatencyP50MS)
	}
	if base.ErrorRate != nil && v.ErrorRate != nil {
		d.ErrorRateDiff = ptr(*v.ErrorRate - *base.ErrorRate)
	}
	if base.CostPerCall != nil && v.CostPerCall != nil && *base.CostPerCall > 0 {
		d.CostPerCallRatio = ptr(*v.CostPerCall / *base.CostPerCall)
	}
	if v.Calls == 0 || base.Calls == 0 {
		empty := v.Value
		if base.Calls == 0 {
			empty = base.Value
		}
		d.Text = fmt.Sprintf("no calls of %s in this window: nothing to compare", empty)
		return d
	}
	u, p := llmscope.MannWhitney(v.LatencyMS, base.LatencyMS)
	d.MannWhitneyU, d.PValue = ptr(u), ptr(p)
	if p >= Alpha {
		d.Verdict = "no significant difference"
		d.Text = fmt.Sprintf("%s vs %s: no significant difference in latency (%s)", v.Value, base.Value, pText(p))
		return d
	}
	// u above half the pairs: v's latencies tend to be the larger.
	slower := u > float64(v.Calls)*float64(base.Calls)/2
	d.Verdict = "faster"
	if slower {
		d.Verdict = "slower"
	}
	how := ""
	if d.LatencyP50Ratio != nil && *d.LatencyP50Ratio > 0 {
		r := *d.LatencyP50Ratio
		if !slower {
			r = 1 / r
		}
		if r >= 1.05 { // a ratio of medians worth naming
			how = strconv.FormatFloat(r, 'f', ratioDigits(r), 64) + "× "
		}
	}
	d.Text = fmt.Sprintf("%s is %s%s than %s (%s)", v.Value, how, d.Verdict, base.Value, pText(p))
	return d
}

func ratioDigits(r float64) int {
	if r >= 10 {
		return 0
	}
	return 1
}

// pText writes a p-value for people: "p < 0.001" or "p = 0.034".
func pText(p float64) string {
	switch {
	case p < 0.001:
		return "p < 0.001"
	case p < 0.01:
		return fmt.Sprintf("p = %.3f", p)
	default:
		return fmt.Sprintf("p = %.2f", p)
	}
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
