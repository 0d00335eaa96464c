package mlflow

import (
	"context"
	"fmt"
	"math"
	"time"

	"llmscope"
)

// rollup is the run that summarises the unnamed traffic of one experiment:
// one step per minute (requests, errors, tokens, cost, latency p50/p95), so
// a busy gateway never floods MLflow with per-call points.
//
// A minute's figures are read from the store (Stats over the minute's
// unnamed calls), not summed from the calls this process exported, so they
// cover every gateway writing to the store, and a batch exported twice (a
// retry, a takeover) is never counted twice. A minute is logged once, when
// it ended ExporterConfig.RollupGrace ago: a call that started in it but reached the store
// later still (a stream longer than the grace, a call held through a store
// outage) is in the store, its trace and stats, not in the rollup.
type rollup struct {
	experiment string // the experiment's name (Stats filter)
	id         string // the run's id, "" until found or created
	next       int64  // the first minute (since the Unix epoch) not yet logged; -1 until known
	first      int64  // the earliest minute of an exported call, where next starts when unknown
}

// defaultRollupGrace is how long after a minute ends its step waits for
// calls that started in it but finished later (long streams).
const defaultRollupGrace = 5 * time.Minute

// rollupScan bounds the minutes one flush looks at, so a long-idle
// exporter catches up over several rounds rather than in one.
const rollupScan = 24 * 60

// Tags of rollup runs. A shared rollup run (ExporterConfig.SharedRollup)
// also has tagShared: every gateway of a shared store logs into the oldest
// such run of the experiment.
const (
	tagRollup = "llmscope.rollup"
	tagShared = "llmscope.rollup.shared"
)

// rollup notes that calls, unnamed calls of the experiment expID, were
// delivered, and logs the minutes that are over by their latest start.
func (e *Exporter) rollup(ctx context.Context, expID string, calls []*llmscope.Call) error {
	r := e.rollupOf(expID, calls[0].Experiment)
	latest := time.Time{}
	for _, c := range calls {
		r.first = min(r.first, c.Start.Unix()/60)
		if c.Start.After(latest) {
			latest = c.Start
		}
	}
	// Another gateway's clock may run ahead of this one: a minute is over
	// by the latest call only if it is over by this clock too.
	if now := time.Now(); latest.After(now) {
		latest = now
	}
	return e.flushRollup(ctx, expID, r, latest.Add(-e.cfg.RollupGrace))
}

// rollupOf returns the rollup state of experiment expID (named name).
func (e *Exporter) rollupOf(expID, name string) *rollup {
	r, ok := e.rollups[expID]
	if !ok {
		r = &rollup{experiment: name, next: -1, first: math.MaxInt64}
		e.rollups[expID] = r
	}
	return r
}

// flushRollup finds or creates the rollup run, then logs every minute that
// ended before until and was not logged yet.
func (e *Exporter) flushRollup(ctx context.Context, expID string, r *rollup, until time.Time) error {
	if r.first == math.MaxInt64 {
		return nil // no unnamed call seen yet
	}
	if r.id == "" {
		if err := e.openRollup(ctx, expID, r); err != nil {
			return err
		}
	}
	last := until.Unix()/60 - 1 // the last minute that ended before until
	var metrics []Metric
	logged := r.next
	limit := r.next + rollupScan
	busyHour := int64(-1) // an hour already known to hold calls
	for m := r.next; m <= last && m < limit; {
		// An hour without unnamed calls is skipped with one query.
		if end := min(m+60, last+1); end-m > 1 && m/60 != busyHour {
			s, err := e.minutes(ctx, r, m, end)
			if err != nil {
				return err
			}
			if s.Calls == 0 {
				m, logged = end, end
				continue
			}
			busyHour = m / 60
		}
		s, err := e.minutes(ctx, r, m, m+1)
		if err != nil {
			return err
		}
		if s.Calls > 0 {
			ts := m * 60 * 1000
			for _, kv := range [...]struct {
				k string
				v float64
			}{
				{"requests", float64(s.Calls)}, {"errors", float64(s.Errors)}, {"tokens", float64(s.TotalTokens)},
				{"cost_usd", s.CostUSD}, {"latency_p50_ms", s.LatencyP50MS}, {"latency_p95_ms", s.LatencyP95MS},
			} {
				metrics = append(metrics, Metric{Key: kv.k, Value: kv.v, Timestamp: ts, Step: m})
			}
		}
		m++
		logged = m
		if len(metrics) >= maxBatchMetrics-6 {
			if err := e.cfg.Client.LogBatch(ctx, r.id, metrics, nil, nil); err != nil {
				return fmt.Errorf("log rollup: %w", err)
			}
			metrics, r.next = metrics[:0], logged
		}
	}
	if len(metrics) > 0 {
		if err := e.cfg.Client.LogBatch(ctx, r.id, metrics, nil, nil); err != nil {
			return fmt.Errorf("log rollup: %w", err)
		}
	}
	r.next = max(r.next, logged)
	return nil
}

// maxBatchMetrics is the most metrics MLflow takes in one LogBatch.
const maxBatchMetrics = 1000

// minutes returns the figures of the unnamed calls of r's experiment that
// started in minutes [from, to).
func (e *Exporter) minutes(ctx context.Context, r *rollup, from, to int64) (llmscope.Summary, error) {
	st, err := e.cfg.Stats.Stats(ctx, llmscope.Filter{
		Experiment: r.experiment, NoRun: true,
		Since: time.Unix(from*60, 0), Until: time.Unix(to*60, 0),
	})
	if err != nil {
		return llmscope.Summary{}, fmt.Errorf("rollup stats: %w", err)
	}
	return st.Totals, nil
}

// openRollup sets r's run and the first minute to log. A process's own
// rollup run (gateway-<host>-<started>) starts at the earliest minute it
// exported. A shared one is the experiment's oldest shared rollup run,
// created under this process's name when there is none; it resumes after
// the last minute logged into it, by whichever gateway that was (a gap of
// empty minutes costs one query an hour).
func (e *Exporter) openRollup(ctx context.Context, expID string, r *rollup) error {
	name := fmt.Sprintf("gateway-%s-%s", e.cfg.Host, e.cfg.Started.UTC().Format("20060102T150405Z"))
	tags := map[string]string{tagRollup: "true", "llmscope.source": "llmscope", "mlflow.runName": name}
	r.next = r.first
	if !e.cfg.SharedRollup {
		run, err := e.cfg.Client.CreateRun(ctx, expID, name, e.cfg.Started, tags)
		if err != nil {
			return fmt.Errorf("create rollup run: %w", err)
		}
		r.id = run.ID
		return nil
	}
	runs, err := e.cfg.Client.SearchRuns(ctx, []string{expID}, "tags.`"+tagShared+"` = 'true'")
	if err != nil {
		return fmt.Errorf("find rollup run: %w", err)
	}
	var run *Run
	for i := range runs {
		if run == nil || runs[i].StartTime < run.StartTime || runs[i].StartTime == run.StartTime && runs[i].ID < run.ID {
			run = &runs[i]
		}
	}
	if run == nil {
		tags[tagShared] = "true"
		created, err := e.cfg.Client.CreateRun(ctx, expID, name, e.cfg.Started, tags)
		if err != nil {
			return fmt.Errorf("create rollup run: %w", err)
		}
		r.id = created.ID
		return nil
	}
	hist, err := e.cfg.Client.MetricHistory(ctx, run.ID, "requests")
	if err != nil {
		return fmt.Errorf("read rollup run: %w", err)
	}
	// After the last minute logged, whoever logged it: the minutes a
	// former exporter delivered calls of but did not log come next.
	if len(hist) > 0 {
		r.next = hist[0].Step + 1
		for _, m := range hist {
			r.next = max(r.next, m.Step+1)
		}
	}
	r.id = run.ID
	return nil
}
