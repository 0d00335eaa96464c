package storetest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"llmscope"
)

// summary accumulates the reference figures of a set of calls.
type summary struct {
	s         llmscope.Summary
	latencies []float64
	ttfts     []float64
}

func (a *summary) add(c *llmscope.Call) {
	a.s.Calls++
	if c.ErrorType != "" || c.Status >= 400 {
		a.s.Errors++
	}
	a.s.InputTokens += c.Usage.InputTokens
	a.s.OutputTokens += c.Usage.OutputTokens
	a.s.TotalTokens += c.Usage.TotalTokens
	a.s.CachedInputTokens += c.Usage.CachedInputTokens
	a.s.ReasoningTokens += c.Usage.ReasoningTokens
	if c.Cost == nil {
		a.s.CostUnknown++
	} else {
		a.s.CostUSD += c.Cost.TotalUSD
	}
	a.latencies = append(a.latencies, c.DurationMS)
	if c.Stream && c.TTFTMS > 0 {
		a.ttfts = append(a.ttfts, c.TTFTMS)
	}
}

func (a *summary) result() llmscope.Summary {
	s := a.s
	slices.Sort(a.latencies)
	slices.Sort(a.ttfts)
	s.LatencyP50MS = llmscope.Percentile(a.latencies, 50)
	s.LatencyP95MS = llmscope.Percentile(a.latencies, 95)
	s.LatencyP99MS = llmscope.Percentile(a.latencies, 99)
	s.TTFTP50MS = llmscope.Percentile(a.ttfts, 50)
	s.TTFTP95MS = llmscope.Percentile(a.ttfts, 95)
	return s
}

// expectStats is the reference implementation of Store.Stats over calls.
func expectStats(calls []*llmscope.Call) *llmscope.Stats {
	var total summary
	groups := map[string]*summary{}
	for _, c := range calls {
		total.add(c)
		key := c.Model()
		g := groups[key]
		if g == nil {
			g = &summary{s: llmscope.Summary{Key: key}}
			groups[key] = g
		}
		g.add(c)
	}
	st := &llmscope.Stats{Totals: total.result(), Groups: []llmscope.Summary{}}
	for _, g := range groups {
		st.Groups = append(st.Groups, g.result())
	}
	slices.SortFunc(st.Groups, func(a, b llmscope.Summary) int {
		if c := cmp.Compare(b.Calls, a.Calls); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return st
}

func assertStats(t *testing.T, label string, got, want *llmscope.Stats) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: Stats returned nil", label)
	}
	assertSummary(t, label+" totals", got.Totals, want.Totals)
	if len(got.Groups) != len(want.Groups) {
		t.Errorf("%s: %d groups %v, want %d %v", label, len(got.Groups), keys(got.Groups), len(want.Groups), keys(want.Groups))
		return
	}
	for i := range want.Groups {
		assertSummary(t, fmt.Sprintf("%s group %d", label, i), got.Groups[i], want.Groups[i])
	}
}

func keys(groups []llmscope.Summary) []string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = fmt.Sprintf("%q(%d)", g.Key, g.Calls)
	}
	return out
}

func assertSummary(t *testing.T, label string, got, want llmscope.Summary) {
	t.Helper()
	// Sums of floats may be added in any order: allow rounding, nothing more.
	if math.Abs(got.CostUSD-want.CostUSD) > 1e-9*max(1, math.Abs(want.CostUSD)) {
		t.Errorf("%s: CostUSD = %.12g, want %.12g", label, got.CostUSD, want.CostUSD)
	}
	got.CostUSD = want.CostUSD
	if got != want {
		t.Errorf("%s:\n got  %+v\n want %+v", label, got, want)
	}
}

func stats(t *testing.T, s llmscope.Store, f llmscope.Filter) *llmscope.Stats {
	t.Helper()
	st, err := s.Stats(t.Context(), f)
	if err != nil {
		t.Fatalf("Stats(%+v): %v", f, err)
	}
	return st
}

// randomize gives c random latency, TTFT, error state, usage and cost. Some
// calls that did not stream carry a TTFT anyway: Stats must leave them out.
func randomize(rng *rand.Rand, c *llmscope.Call, prev float64) {
	c.DurationMS = math.Round(rng.ExpFloat64()*300_000)/1000 + 1
	if rng.IntN(10) == 0 {
		c.DurationMS = prev // ties in latency
	}
	c.Stream = rng.IntN(2) == 0
	c.TTFTMS = 0
	switch {
	case c.Stream && rng.IntN(5) > 0:
		c.TTFTMS = math.Round(rng.Float64()*200_000)/1000 + 0.5
	case !c.Stream && rng.IntN(2) == 0:
		c.TTFTMS = 1000 + rng.Float64()*100
	}
	c.Status, c.ErrorType = 200, ""
	switch rng.IntN(20) {
	case 0:
		c.Status, c.ErrorType = 0, llmscope.ErrTypeTimeout
	case 1:
		c.Status = 429
	case 2:
		c.Status, c.ErrorType = 500, "500"
	case 3:
		c.Status = 400
	case 4:
		c.Status = 399
	case 5:
		c.Status, c.ErrorType = 200, llmscope.ErrTypeStream
	}
	in, out := rng.Int64N(5000), rng.Int64N(2000)
	c.Usage = llmscope.Usage{
		InputTokens:       in,
		OutputTokens:      out,
		TotalTokens:       in + out,
		CachedInputTokens: in / 3,
		ReasoningTokens:   out / 4,
		Source:            llmscope.UsageReported,
	}
	switch rng.IntN(8) {
	case 0:
		c.Cost = nil // price unknown
	case 1:
		c.Cost = &llmscope.Cost{PriceSource: "free"} // known, and zero: not unknown
	default:
		iu, ou := float64(in)*0.15e-6, float64(out)*0.6e-6
		c.Cost = &llmscope.Cost{InputUSD: iu, OutputUSD: ou, TotalUSD: iu + ou, PriceSource: "test"}
	}
}

// statsData returns calls in groups of 100, 100, 70, 30 and 10 (two groups
// tie on count; one group is named only by its response model; one never
// streams).
func statsData(rng *rand.Rand) []*llmscope.Call {
	sizes := []struct {
		req, resp string
		n         int
	}{
		{"b-model", "b-model-v1", 100},
		{"a-model", "a-model-v1", 100},
		{"c-model", "c-model-v1", 70},
		{"", "d-model", 30},
		{"e-model", "e-model-v1", 10},
	}
	base := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	var calls []*llmscope.Call
	prev := 1.0
	for _, g := range sizes {
		for range g.n {
			c := sequence("st", 1, base)[0]
			c.ID = fmt.Sprintf("st-%04d", len(calls))
			c.Start = base.Add(time.Duration(rng.IntN(3600)) * time.Second)
			c.RequestModel, c.ResponseModel = g.req, g.resp
			randomize(rng, c, prev)
			if g.req == "e-model" {
				c.Stream, c.TTFTMS = false, 0
			}
			prev = c.DurationMS
			calls = append(calls, c)
		}
	}
	return calls
}

func testStats(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(7, 8))
	calls := statsData(rng)
	want := expectStats(calls)
	// Guard the fixture: the figures it should exercise must be there.
	free := 0
	for _, c := range calls {
		if c.Cost != nil && c.Cost.TotalUSD == 0 {
			free++
		}
	}
	if free == 0 || want.Totals.Errors == 0 || want.Totals.CostUnknown == 0 || want.Totals.TTFTP50MS == 0 ||
		want.Groups[0].Calls != want.Groups[1].Calls || want.Groups[0].Key != "a-model" {
		t.Fatalf("fixture does not exercise Stats: %+v", want)
	}
	shuffledBatches(t, s, rng, calls)

	assertStats(t, "Stats", stats(t, s, llmscope.Filter{}), want)
	assertStats(t, "Stats ignores Limit", stats(t, s, llmscope.Filter{Limit: 1}), want)

	// A group is keyed by the request model even when the filter matched
	// the response model.
	sub := selectCalls(llmscope.Filter{Model: "a-model-v1"}, calls)
	got := stats(t, s, llmscope.Filter{Model: "a-model-v1"})
	assertStats(t, "Stats(model by response)", got, expectStats(sub))
	if len(got.Groups) != 1 || got.Groups[0].Key != "a-model" {
		t.Errorf("Stats(model by response) groups = %v, want one group a-model", keys(got.Groups))
	}
}

func testStatsFilter(t *testing.T, s llmscope.Store) {
	rng := rand.New(rand.NewPCG(9, 10))
	calls := filterData()
	prev := 1.0
	for _, c := range calls {
		randomize(rng, c, prev)
		prev = c.DurationMS
	}
	shuffledBatches(t, s, rng, calls)
	for name, f := range filterCases(calls) {
		want := expectStats(selectCalls(f, calls))
		assertStats(t, name, stats(t, s, f), want)
	}
}

func testStatsEmpty(t *testing.T, s llmscope.Store) {
	want := &llmscope.Stats{Groups: []llmscope.Summary{}}
	assertStats(t, "empty store", stats(t, s, llmscope.Filter{}), want)
	write(t, s, sequence("one", 1, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))...)
	assertStats(t, "no match", stats(t, s, llmscope.Filter{Run: "none"}), want)
}
