package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

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
// aggregates in Go exactly as the SQLite store does, so both stores give the
// same figures for the same calls: exact nearest-rank percentiles need every
// latency anyway, which a GROUP BY in the server would have to collect too.
func (s *Store) Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	b, err := llmscope.NewStatsBuilder(f)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	keys := b.Keys()
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = schema.GroupExprs[k]
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
		failed bool
		u      llmscope.Usage
		cost   pgtype.Float8
		dur    float64
		ttft   float64
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
		var c *float64
		if cost.Valid {
			c = &cost.Float64
		}
		b.Add(rows.RawValues()[:len(keys)], failed, &u, c, dur, ttft)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	return b.Stats(f.MaxGroups), nil
}
