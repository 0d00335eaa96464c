package llmscope

import (
	"slices"
	"strconv"
)

// StatsBuilder aggregates calls one at a time into Stats. A store that reads
// the matching calls (rather than grouping them in SQL) builds its answer
// with it, so every store gives the same figures for the same calls:
// sums in one order, nearest-rank percentiles (Percentile) over every call,
// TTFT percentiles over the streamed calls that saw a first chunk.
type StatsBuilder struct {
	keys     []string
	explicit bool // the grouping was asked for: Summary.Values is set
	groups   map[string]*statsGroup
	mapKey   []byte
}

// statsGroup is one Summary in the making, with its raw latencies.
type statsGroup struct {
	sum       Summary
	latencies []float64
	ttfts     []float64
}

// NewStatsBuilder returns a builder for f's grouping (f.GroupBy, the model
// by default); it fails when f.GroupBy names an unknown key.
func NewStatsBuilder(f Filter) (*StatsBuilder, error) {
	keys, err := ParseGroupBy(f.GroupBy)
	if err != nil {
		return nil, err
	}
	return &StatsBuilder{keys: keys, explicit: f.GroupBy != "", groups: map[string]*statsGroup{}}, nil
}

// Keys returns the group keys, in the order Add takes their values.
func (b *StatsBuilder) Keys() []string { return b.keys }

// Add counts one call: vals holds its value of each key (in Keys' order;
// the slices are not kept), failed whether it counts as an error, cost its
// total cost when known, dur its latency and ttft its time to first token
// (0 when it does not count).
func (b *StatsBuilder) Add(vals [][]byte, failed bool, u *Usage, cost *float64, dur, ttft float64) {
	// The map key: each value with its length, so no separator is needed.
	b.mapKey = b.mapKey[:0]
	for _, v := range vals {
		b.mapKey = append(strconv.AppendInt(b.mapKey, int64(len(v)), 10), ':')
		b.mapKey = append(b.mapKey, v...)
	}
	g := b.groups[string(b.mapKey)]
	if g == nil {
		g = &statsGroup{}
		if len(b.keys) == 1 {
			g.sum.Key = string(vals[0])
		}
		if b.explicit {
			for i, k := range b.keys {
				g.sum.Values.Set(k, string(vals[i]))
			}
		}
		b.groups[string(b.mapKey)] = g
	}
	g.add(failed, u, cost, dur, ttft)
}

// Stats returns the totals and the groups ordered by call count descending,
// then by their key values, at most maxGroups of them (DefaultMaxGroups
// when 0). The builder must not be used afterwards.
func (b *StatsBuilder) Stats(maxGroups int) *Stats {
	type sorted struct {
		g    *statsGroup
		vals []string
	}
	st := &Stats{GroupBy: b.keys, GroupsTotal: len(b.groups)}
	order := make([]sorted, 0, len(b.groups))
	var n, nTTFT int
	for _, g := range b.groups {
		order = append(order, sorted{g, st.KeyValues(g.sum)})
		n += len(g.latencies)
		nTTFT += len(g.ttfts)
	}
	slices.SortFunc(order, func(a, b sorted) int {
		return CompareGroups(a.g.sum.Calls, a.vals, b.g.sum.Calls, b.vals)
	})
	// The totals add the groups up in their order, so the cost sum is the
	// same float every time.
	var total statsGroup
	total.latencies = make([]float64, 0, n)
	total.ttfts = make([]float64, 0, nTTFT)
	for _, o := range order {
		total.merge(o.g)
	}
	st.Totals = total.summary()
	if maxGroups <= 0 {
		maxGroups = DefaultMaxGroups
	}
	if len(order) > maxGroups {
		order, st.Truncated = order[:maxGroups], true
	}
	st.Groups = make([]Summary, 0, len(order))
	for _, o := range order {
		st.Groups = append(st.Groups, o.g.summary())
	}
	return st
}

// add counts one call into g; ttft is 0 when it does not count.
func (g *statsGroup) add(failed bool, u *Usage, cost *float64, dur, ttft float64) {
	s := &g.sum
	s.Calls++
	if failed {
		s.Errors++
	}
	s.InputTokens += u.InputTokens
	s.OutputTokens += u.OutputTokens
	s.TotalTokens += u.TotalTokens
	s.CachedInputTokens += u.CachedInputTokens
	s.ReasoningTokens += u.ReasoningTokens
	if cost != nil {
		s.CostUSD += *cost
	} else {
		s.CostUnknown++
	}
	g.latencies = append(g.latencies, dur)
	if ttft > 0 {
		g.ttfts = append(g.ttfts, ttft)
	}
}

// merge adds g's counts, sums and samples to t.
func (t *statsGroup) merge(g *statsGroup) {
	s := &t.sum
	s.Calls += g.sum.Calls
	s.Errors += g.sum.Errors
	s.InputTokens += g.sum.InputTokens
	s.OutputTokens += g.sum.OutputTokens
	s.TotalTokens += g.sum.TotalTokens
	s.CachedInputTokens += g.sum.CachedInputTokens
	s.ReasoningTokens += g.sum.ReasoningTokens
	s.CostUSD += g.sum.CostUSD
	s.CostUnknown += g.sum.CostUnknown
	t.latencies = append(t.latencies, g.latencies...)
	t.ttfts = append(t.ttfts, g.ttfts...)
}

// summary sorts g's samples and returns its Summary with percentiles filled.
func (g *statsGroup) summary() Summary {
	slices.Sort(g.latencies)
	slices.Sort(g.ttfts)
	s := g.sum
	s.LatencyP50MS = Percentile(g.latencies, 50)
	s.LatencyP95MS = Percentile(g.latencies, 95)
	s.LatencyP99MS = Percentile(g.latencies, 99)
	s.TTFTP50MS = Percentile(g.ttfts, 50)
	s.TTFTP95MS = Percentile(g.ttfts, 95)
	return s
}
