package mlflow

import (
	"context"
	"fmt"
	"slices"
	"time"

	"llmscope"
)

// rollup is the run that summarises unnamed traffic of one experiment in this
// process: one step per minute (requests, errors, tokens, cost, latency
// p50/p95), so a busy gateway never floods MLflow with per-call points.
type rollup struct {
	id      string
	started time.Time
	minutes map[int64]*minute // minute index since started → figures
}

type minute struct {
	requests, errors, tokens int64
	cost                     float64
	latencies                []float64
}

// rollup adds calls to the experiment's rollup run, creating it on first use.
func (e *Exporter) rollup(ctx context.Context, expID string, calls []*llmscope.Call) error {
	r, ok := e.rollups[expID]
	if !ok {
		name := fmt.Sprintf("gateway-%s-%s", e.cfg.Host, e.cfg.Started.UTC().Format("20060102T150405Z"))
		run, err := e.cfg.Client.CreateRun(ctx, expID, name, e.cfg.Started, map[string]string{
			"llmscope.rollup": "true", "llmscope.source": "llmscope", "mlflow.runName": name,
		})
		if err != nil {
			return fmt.Errorf("create rollup run: %w", err)
		}
		r = &rollup{id: run.ID, started: e.cfg.Started.Truncate(time.Minute), minutes: map[int64]*minute{}}
		e.rollups[expID] = r
	}
	latest := time.Time{}
	for _, c := range calls {
		idx := int64(c.Start.Sub(r.started) / time.Minute)
		m := r.minutes[idx]
		if m == nil {
			m = &minute{}
			r.minutes[idx] = m
		}
		m.requests++
		if c.Failed() {
			m.errors++
		}
		m.tokens += c.Usage.TotalTokens
		if c.Cost != nil {
			m.cost += c.Cost.TotalUSD
		}
		m.latencies = append(m.latencies, c.DurationMS)
		if c.Start.After(latest) {
			latest = c.Start
		}
	}
	// Minutes before the latest call's minute are complete.
	return r.flush(ctx, e.cfg.Client, latest.Truncate(time.Minute))
}

// flush logs every minute that ended before until, and forgets it.
func (r *rollup) flush(ctx context.Context, c *Client, until time.Time) error {
	var metrics []Metric
	var done []int64
	for idx, m := range r.minutes {
		at := r.started.Add(time.Duration(idx) * time.Minute)
		if !at.Add(time.Minute).After(until) {
			slices.Sort(m.latencies)
			ts := at.UnixMilli()
			add := func(k string, v float64) {
				metrics = append(metrics, Metric{Key: k, Value: v, Timestamp: ts, Step: idx})
			}
			add("requests", float64(m.requests))
			add("errors", float64(m.errors))
			add("tokens", float64(m.tokens))
			add("cost_usd", m.cost)
			add("latency_p50_ms", llmscope.Percentile(m.latencies, 50))
			add("latency_p95_ms", llmscope.Percentile(m.latencies, 95))
			done = append(done, idx)
		}
	}
	if len(metrics) == 0 {
		return nil
	}
	if err := c.LogBatch(ctx, r.id, metrics, nil, nil); err != nil {
		return fmt.Errorf("log rollup: %w", err)
	}
	for _, idx := range done {
		delete(r.minutes, idx)
	}
	return nil
}
