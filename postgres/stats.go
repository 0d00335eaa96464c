package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"llmscope"
)

// modelExpr is the SQL form of (*llmscope.Call).Model: the group key.
const modelExpr = `COALESCE(NULLIF(request_model, ''), response_model)`

// groupExprs are the SQL forms of the group keys.
var groupExprs = map[string]string{
	llmscope.GroupModel:      modelExpr,
	llmscope.GroupExperiment: "experiment",
	llmscope.GroupRun:        "run",
	llmscope.GroupUser:       `"user"`,
	llmscope.GroupSession:    "session",
	llmscope.GroupProvider:   "provider",
	llmscope.GroupOperation:  "operation",
}

// group is one Summary in the making, with its raw latencies.
type group struct {
	sum       llmscope.Summary
	latencies []float64
	ttfts     []float64
}

// Stats summarises the calls matching f (f.Limit is ignored): totals and one
// group per distinct value of f.GroupBy's keys (the model by default),
// ordered by call count descending, then by the key values, at most
// f.MaxGroups of them (llmscope.DefaultMaxGroups when 0).
// Percentiles are nearest-rank (llmscope.Percentile) over every matching
// call; TTFT ones cover streamed calls that saw a first chunk (ttft_ms > 0).
//
// It reads the matching rows once, in one statement (so one snapshot), and
// aggregates in Go exactly as the SQLite store does, so both stores give the
// same figures for the same calls: exact nearest-rank percentiles need every
// latency anyway, which a GROUP BY in the server would have to collect too.
func (s *Store) Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	keys, err := llmscope.ParseGroupBy(f.GroupBy)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	explicit := f.GroupBy != "" // the default grouping sets Summary.Key only
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = groupExprs[k]
	}
	cond, args := where(f)
	rows, err := s.pool.Query(ctx, `SELECT `+strings.Join(exprs, ", ")+`,
	error_type <> '' OR status >= 400,
	input_tokens, output_tokens, total_tokens, cached_input_tokens, reasoning_tokens,
	cost_total_usd,
	duration_ms,
	CASE WHEN stream AND ttft_ms > 0 THEN ttft_ms ELSE 0 END
FROM calls`+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	defer rows.Close()
	var (
		groups = map[string]*group{}
		vals   [][]byte
		failed bool
		u      llmscope.Usage
		cost   pgtype.Float8
		dur    float64
		ttft   float64
		mapKey []byte
	)
	// The key columns are read raw (text is its UTF-8 bytes in both
	// formats), and skipped (nil) by Scan.
	dest := make([]any, len(keys), len(keys)+9)
	dest = append(dest, &failed, &u.InputTokens, &u.OutputTokens, &u.TotalTokens,
		&u.CachedInputTokens, &u.ReasoningTokens, &cost, &dur, &ttft)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("postgres: stats: %w", err)
		}
		vals = rows.RawValues()[:len(keys)]
		// The map key: each value with its length, so no separator is needed.
		mapKey = mapKey[:0]
		for _, v := range vals {
			mapKey = append(strconv.AppendInt(mapKey, int64(len(v)), 10), ':')
			mapKey = append(mapKey, v...)
		}
		g := groups[string(mapKey)]
		if g == nil {
			g = &group{}
			if len(keys) == 1 {
				g.sum.Key = string(vals[0])
			}
			if explicit {
				for i, k := range keys {
					g.sum.Values.Set(k, string(vals[i]))
				}
			}
			groups[string(mapKey)] = g
		}
		g.add(failed, &u, cost, dur, ttft)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}

	type sorted struct {
		g    *group
		vals []string
	}
	st := &llmscope.Stats{GroupBy: keys, GroupsTotal: len(groups)}
	order := make([]sorted, 0, len(groups))
	var n, nTTFT int
	for _, g := range groups {
		order = append(order, sorted{g, st.KeyValues(g.sum)})
		n += len(g.latencies)
		nTTFT += len(g.ttfts)
	}
	slices.SortFunc(order, func(a, b sorted) int {
		return llmscope.CompareGroups(a.g.sum.Calls, a.vals, b.g.sum.Calls, b.vals)
	})
	// The totals add the groups up in their order, so the cost sum is the
	// same float every time.
	var total group
	total.latencies = make([]float64, 0, n)
	total.ttfts = make([]float64, 0, nTTFT)
	for _, o := range order {
		total.merge(o.g)
	}
	st.Totals = total.summary()
	limit := f.MaxGroups
	if limit <= 0 {
		limit = llmscope.DefaultMaxGroups
	}
	if len(order) > limit {
		order, st.Truncated = order[:limit], true
	}
	st.Groups = make([]llmscope.Summary, 0, len(order))
	for _, o := range order {
		st.Groups = append(st.Groups, o.g.summary())
	}
	return st, nil
}

// add counts one call into g; ttft is 0 when it does not count.
func (g *group) add(failed bool, u *llmscope.Usage, cost pgtype.Float8, dur, ttft float64) {
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
	if cost.Valid {
		s.CostUSD += cost.Float64
	} else {
		s.CostUnknown++
	}
	g.latencies = append(g.latencies, dur)
	if ttft > 0 {
		g.ttfts = append(g.ttfts, ttft)
	}
}

// merge adds g's counts, sums and samples to t.
func (t *group) merge(g *group) {
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
func (g *group) summary() llmscope.Summary {
	slices.Sort(g.latencies)
	slices.Sort(g.ttfts)
	s := g.sum
	s.LatencyP50MS = llmscope.Percentile(g.latencies, 50)
	s.LatencyP95MS = llmscope.Percentile(g.latencies, 95)
	s.LatencyP99MS = llmscope.Percentile(g.latencies, 99)
	s.TTFTP50MS = llmscope.Percentile(g.ttfts, 50)
	s.TTFTP95MS = llmscope.Percentile(g.ttfts, 95)
	return s
}
