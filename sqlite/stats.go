package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"llmscope"
	"llmscope/internal/schema"
)

// Stats summarises the calls matching f (f.Limit is ignored): totals and one
// group per distinct value of f.GroupBy's keys (the model by default),
// ordered by call count descending, then by the key values, at most
// f.MaxGroups of them (llmscope.DefaultMaxGroups when 0).
// Percentiles are nearest-rank (llmscope.Percentile) over every matching
// call; TTFT ones cover streamed calls that saw a first chunk (ttft_ms > 0).
//
// It reads the matching rows once, in one statement (so one snapshot), and
// aggregates in Go: a single scan is about twice as fast as a GROUP BY, which
// SQLite implements by sorting every row, followed by a second scan for the
// latencies.
func (s *Store) Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	b, err := llmscope.NewStatsBuilder(f)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	keys := b.Keys()
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = schema.GroupExprs[k]
	}
	cond, args := where(f)
	rows, err := s.reader.QueryContext(ctx, `SELECT `+strings.Join(exprs, ", ")+`,
	error_type <> '' OR status >= 400,
	input_tokens, output_tokens, total_tokens, cached_input_tokens, reasoning_tokens,
	cost_total_usd,
	duration_ms,
	CASE WHEN stream <> 0 AND ttft_ms > 0 THEN ttft_ms ELSE 0 END
FROM calls`+cond, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	defer rows.Close()
	var (
		raw    = make([]sql.RawBytes, len(keys))
		vals   = make([][]byte, len(keys))
		failed bool
		u      llmscope.Usage
		cost   sql.NullFloat64
		dur    float64
		ttft   float64
	)
	dest := make([]any, 0, len(keys)+9)
	for i := range raw {
		dest = append(dest, &raw[i])
	}
	dest = append(dest, &failed, &u.InputTokens, &u.OutputTokens, &u.TotalTokens,
		&u.CachedInputTokens, &u.ReasoningTokens, &cost, &dur, &ttft)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sqlite: stats: %w", err)
		}
		for i, v := range raw {
			vals[i] = v
		}
		var c *float64
		if cost.Valid {
			c = &cost.Float64
		}
		b.Add(vals, failed, &u, c, dur, ttft)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	return b.Stats(f.MaxGroups), nil
}
