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
	id      string            // "" until the run is created
	minutes map[int64]*minute // minute since the Unix epoch → figures
}

type minute struct {
	requests, errors, tokens int64
	cost                     float64
	latencies                []float64
}

// rollupGrace is how long after a minute ends its step waits for calls that
// started in it but finished later (long streams).
const rollupGrace = 5 * time.Minute

// rollup adds delivered calls to the experiment's rollup run, creating it on
// first use, and logs the minutes that are over. Steps are minutes since the
// Unix epoch, so a call replayed after a restart lands on the same step.
func (e *Exporter) rollup(ctx context.Context, expID string, calls []*llmscope.Call) error {
	r, ok := e.rollups[expID]
	if !ok {
		r = &rollup{minutes: map[int64]*minute{}}
		e.rollups[expID] = r
	}
	latest := time.Time{}
	for _, c := range calls {
		idx := c.Start.Unix() / 60
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
	return e.flushRollup(ctx, expID, r, latest.Add(-rollupGrace))
}

// flushRollup creates the rollup run if needed and logs every minute that
// ended before until.
func (e *Exporter) flushRollup(ctx context.Context, expID string, r *rollup, until time.Time) error {
	if r.id == "" {
		name := fmt.Sprintf("gateway-%s-%s", e.cfg.Host, e.cfg.Started.UTC().Format("20060102T150405Z"))
		run, err := e.cfg.Client.CreateRun(ctx, expID, name, e.cfg.Started, map[string]string{
			"llmscope.rollup": "true", "llmscope.source": "llmscope", "mlflow.runName": name,
		})
		if err != nil {
			return fmt.Errorf("create rollup run: %w", err)
		}
		r.id = run.ID
	}
	return r.flush(ctx, e.cfg.Client, until)
}

// flush logs every minute that ended before until, and forgets it.
func (r *rollup) flush(ctx context.Context, c *Client, until time.Time) error {
	var metrics []Metric
	var done []int64
	for idx, m := range r.minutes {
		at := time.Unix(idx*60, 0)
		if at.Add(time.Minute).After(until) {
			continue
		}
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
