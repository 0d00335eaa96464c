package mlflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"llmscope"
)

// TraceWriter sends calls as traces to MLflow's OTLP endpoint, tagged with an
// experiment and, when runID is not empty, linked to that run. An error that
// Permanent reports true means the server refused the data for good.
type TraceWriter interface {
	WriteTraces(ctx context.Context, experimentID, runID string, calls []*llmscope.Call) error
}

// Stater summarises stored calls; the exporter uses it for run summaries and
// for per-run metric steps that survive restarts.
type Stater interface {
	Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error)
}

// ExporterConfig configures an Exporter. Client, Traces and Stats are required.
type ExporterConfig struct {
	Client *Client
	Traces TraceWriter
	Stats  Stater
	// Host and Started name the rollup run of unnamed traffic:
	// gateway-<host>-<started, UTC, 20060102T150405Z>.
	Host    string
	Started time.Time
	// SharedRollup says several gateways share the store (and take turns
	// exporting it): unnamed traffic then goes into one rollup run per
	// experiment, the oldest one tagged llmscope.rollup.shared, whichever
	// gateway created it, instead of one run per process. Its minutes are
	// logged only once complete, by the gateway exporting; Close leaves
	// the rest to the next one.
	SharedRollup bool
	// RunIdle ends a named run (with its summary metrics) after this long
	// without a call; default 5 minutes.
	RunIdle time.Duration
	// RollupGrace is how long after a minute ends its rollup step waits
	// for calls that started in it and reach the store later (long
	// streams); default 5 minutes.
	RollupGrace time.Duration
	Logger      *slog.Logger
	// OnProblem counts what MLflow refused or answered oddly, by kind:
	// "param_conflict", "trace_refused", "malformed_response".
	OnProblem func(kind string)
}

// Exporter maps calls onto MLflow (DESIGN.md, "Mapping onto MLflow"): each
// call becomes a trace; a named run becomes an MLflow run with params,
// per-call metrics and summary metrics; unnamed traffic also feeds one rollup
// run per process (per experiment with SharedRollup) with a step per minute. Exports are idempotent: trace ids
// come from call ids and metric steps from the store, so a replay writes the
// same points again, which MLflow de-duplicates.
type Exporter struct {
	cfg ExporterConfig
	log *slog.Logger

	mu          sync.Mutex
	experiments map[string]string // name → id
	runs        map[runKey]*runState
	rollups     map[string]*rollup // experiment id → rollup run
	// noStartTrace: the server has no StartTraceV3 (run metadata skipped).
	noStartTrace atomic.Bool
}

type runKey struct{ experiment, run string }

type runState struct {
	id       string
	params   map[string]string // logged values
	varied   map[string]bool
	step     int64     // last step logged
	stepAt   int64     // seq of the call that got that step
	lastCall time.Time // wall clock of the last call exported
	ended    bool
}

var _ llmscope.Exporter = (*Exporter)(nil)

// NewExporter returns an Exporter.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if cfg.Client == nil || cfg.Traces == nil || cfg.Stats == nil {
		return nil, errors.New("mlflow: exporter needs a client, a trace writer and stats")
	}
	if cfg.RunIdle <= 0 {
		cfg.RunIdle = 5 * time.Minute
	}
	if cfg.RollupGrace <= 0 {
		cfg.RollupGrace = defaultRollupGrace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if cfg.OnProblem == nil {
		cfg.OnProblem = func(string) {}
	}
	return &Exporter{cfg: cfg, log: cfg.Logger, experiments: map[string]string{}, runs: map[runKey]*runState{}, rollups: map[string]*rollup{}}, nil
}

// Name names the exporter's cursor.
func (e *Exporter) Name() string { return "mlflow" }

// Export delivers calls: runs and their metrics first, then traces.
func (e *Exporter) Export(ctx context.Context, calls []*llmscope.Call) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	type group struct{ exp, run string }
	groups := map[group][]*llmscope.Call{}
	var order []group
	for _, c := range calls {
		expID, err := e.experiment(ctx, c.Experiment)
		if err != nil {
			return err
		}
		g := group{exp: expID}
		if c.Run != "" {
			rs, err := e.run(ctx, expID, c)
			if err != nil {
				return err
			}
			g.run = rs.id
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], c)
	}
	for _, g := range order {
		batch := groups[g]
		if g.run != "" {
			if err := e.logRunCalls(ctx, g.exp, batch); err != nil {
				return err
			}
		}
		// MLflow links at most maxRunLinks traces to a run per request.
		for len(batch) > 0 {
			part := batch
			if g.run != "" && len(part) > maxRunLinks {
				part = part[:maxRunLinks]
			}
			batch = batch[len(part):]
			if g.run != "" {
				if err := e.markSourceRun(ctx, g.exp, g.run, part); err != nil {
					return err
				}
			}
			if err := e.writeTraces(ctx, g.exp, g.run, part); err != nil {
				return err
			}
		}
	}
	// Only now, with the whole batch delivered, do unnamed calls count in the
	// rollups: a retried batch must not be counted twice.
	for _, g := range order {
		if g.run == "" {
			if err := e.rollup(ctx, g.exp, groups[g]); err != nil {
				e.log.Warn("rollup not logged yet; retried when idle", "err", err)
			}
		}
	}
	return nil
}

// experiment returns the id of the named experiment, creating it on first use.
func (e *Exporter) experiment(ctx context.Context, name string) (string, error) {
	if name == "" {
		name = "llmscope"
	}
	if id, ok := e.experiments[name]; ok {
		return id, nil
	}
	id, err := e.cfg.Client.EnsureExperiment(ctx, name)
	if err != nil {
		return "", fmt.Errorf("experiment %q: %w", name, err)
	}
	e.experiments[name] = id
	return id, nil
}

// run returns the MLflow run of c's named run, finding it by its
// llmscope.run tag (so a restart reuses it) or creating it.
func (e *Exporter) run(ctx context.Context, expID string, c *llmscope.Call) (*runState, error) {
	key := runKey{expID, c.Run}
	if rs, ok := e.runs[key]; ok {
		if rs.ended {
			if err := e.cfg.Client.UpdateRun(ctx, rs.id, "RUNNING", time.Time{}); err != nil {
				return nil, fmt.Errorf("reopen run %q: %w", c.Run, err)
			}
			rs.ended = false
		}
		return rs, nil
	}
	rs := &runState{params: map[string]string{}, varied: map[string]bool{}}
	r, err := e.cfg.Client.FindRun(ctx, expID, c.Run)
	if err != nil {
		return nil, fmt.Errorf("find run %q: %w", c.Run, err)
	}
	if r != nil {
		full, err := e.cfg.Client.GetRun(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("read run %q: %w", c.Run, err)
		}
		rs.id = full.ID
		for k, v := range full.Params {
			rs.params[k] = v
		}
		for k := range full.Tags {
			if p, ok := strings.CutPrefix(k, "llmscope.varied."); ok {
				rs.varied[p] = true
			}
		}
		if full.Status != "RUNNING" {
			if err := e.cfg.Client.UpdateRun(ctx, rs.id, "RUNNING", time.Time{}); err != nil {
				return nil, fmt.Errorf("reopen run %q: %w", c.Run, err)
			}
		}
	} else {
		r, err := e.cfg.Client.CreateRun(ctx, expID, c.Run, c.Start, map[string]string{
			RunTag: c.Run, RunKeyTag: RunKey(c.Run), "llmscope.source": "llmscope", "mlflow.runName": c.Run,
		})
		if err != nil {
			return nil, fmt.Errorf("create run %q: %w", c.Run, err)
		}
		rs.id = r.ID
	}
	e.runs[key] = rs
	return rs, nil
}

// logRunCalls logs the params and per-call metrics of calls of one named run.
func (e *Exporter) logRunCalls(ctx context.Context, expID string, calls []*llmscope.Call) error {
	byRun := map[string][]*llmscope.Call{}
	for _, c := range calls {
		byRun[c.Run] = append(byRun[c.Run], c)
	}
	for name, cs := range byRun {
		rs := e.runs[runKey{expID, name}]
		// Steps: the call's position in its run, counted in the store, so a
		// replay after a restart gives every call the same step again.
		if rs.stepAt == 0 || cs[0].Seq <= rs.stepAt {
			rs.step = 0
			if before := cs[0].Seq - 1; before > 0 { // MaxSeq 0 would mean no bound
				st, err := e.cfg.Stats.Stats(ctx, llmscope.Filter{Experiment: cs[0].Experiment, Run: name, MaxSeq: before})
				if err != nil {
					return fmt.Errorf("count calls of run %q: %w", name, err)
				}
				rs.step = st.Totals.Calls
			}
		}
		var metrics []Metric
		var params []Param
		var tags []Tag
		// New params and varied flags go to rs only once MLflow has them, so
		// a failed batch sends them again.
		newParams := map[string]string{}
		newVaried := map[string]bool{}
		for _, c := range cs {
			rs.step++
			rs.stepAt = c.Seq
			rs.lastCall = time.Now()
			ts := c.Start.UnixMilli()
			add := func(k string, v float64) {
				metrics = append(metrics, Metric{Key: k, Value: v, Timestamp: ts, Step: rs.step})
			}
			add("latency_ms", c.DurationMS)
			if c.Stream && c.TTFTMS > 0 {
				add("ttft_ms", c.TTFTMS)
			}
			add("prompt_tokens", float64(c.Usage.InputTokens))
			add("completion_tokens", float64(c.Usage.OutputTokens))
			add("total_tokens", float64(c.Usage.TotalTokens))
			if c.Cost != nil {
				add("cost_usd", c.Cost.TotalUSD)
			}
			for k, v := range configOf(c) {
				logged, ok := rs.params[k]
				if !ok {
					logged, ok = newParams[k]
				}
				switch {
				case !ok:
					newParams[k] = v
					params = append(params, Param{Key: k, Value: v})
				case logged != v && !rs.varied[k] && !newVaried[k]:
					newVaried[k] = true
					tags = append(tags, Tag{Key: "llmscope.varied." + k, Value: "true"})
				}
			}
		}
		sort.Slice(params, func(i, j int) bool { return params[i].Key < params[j].Key })
		err := e.cfg.Client.LogBatch(ctx, rs.id, metrics, params, tags)
		if len(params) > 0 && IsCode(err, "INVALID_PARAMETER_VALUE") && strings.Contains(err.Error(), "param") {
			// A param already holds another value (set outside llmscope):
			// never fight it; mark it varied and log the rest.
			e.log.Warn("MLflow refused a param value: marking it varied", "run", name, "err", err)
			e.cfg.OnProblem("param_conflict")
			for _, p := range params {
				tags = append(tags, Tag{Key: "llmscope.varied." + p.Key, Value: "true"})
				newVaried[p.Key] = true
				delete(newParams, p.Key)
				rs.params[p.Key] = "" // known to MLflow with some value
			}
			err = e.cfg.Client.LogBatch(ctx, rs.id, metrics, nil, tags)
		}
		if IsCode(err, "RESOURCE_DOES_NOT_EXIST") || IsCode(err, "INVALID_STATE") {
			// The run was deleted or closed outside llmscope: forget it, so
			// the retry finds or creates it again instead of failing forever.
			delete(e.runs, runKey{expID, name})
		}
		if err != nil {
			return fmt.Errorf("log run %q: %w", name, err)
		}
		for k, v := range newParams {
			rs.params[k] = v
		}
		for k := range newVaried {
			rs.varied[k] = true
		}
	}
	return nil
}

// configOf returns the configuration values of a call, as MLflow params.
func configOf(c *llmscope.Call) map[string]string {
	p := c.Params
	out := map[string]string{"model": c.RequestModel}
	f := func(k string, v *float64) {
		if v != nil {
			out[k] = strconv.FormatFloat(*v, 'g', -1, 64)
		}
	}
	i := func(k string, v *int64) {
		if v != nil {
			out[k] = strconv.FormatInt(*v, 10)
		}
	}
	f("temperature", p.Temperature)
	f("top_p", p.TopP)
	i("max_tokens", firstSet(p.MaxTokens, p.MaxCompletionTokens, p.MaxOutputTokens))
	i("seed", p.Seed)
	i("n", p.N)
	f("presence_penalty", p.PresencePenalty)
	f("frequency_penalty", p.FrequencyPenalty)
	if p.ResponseFormat != "" {
		out["response_format"] = p.ResponseFormat
	}
	if p.ReasoningEffort != "" {
		out["reasoning_effort"] = p.ReasoningEffort
	}
	if c.RequestModel == "" {
		delete(out, "model")
	}
	// Callers can add configuration of their own as tags "param.<key>" (the
	// chat sends its system prompt's hash this way).
	for k, v := range c.Tags {
		if p, ok := strings.CutPrefix(k, "param."); ok && p != "" {
			out[p] = v
		}
	}
	return out
}

func firstSet(ps ...*int64) *int64 {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

// writeTraces sends calls as traces. When MLflow refuses a batch for good it
// retries the calls one by one and skips (logging and counting) only those
// it still refuses, so one bad call never blocks the rest.
func (e *Exporter) writeTraces(ctx context.Context, expID, runID string, calls []*llmscope.Call) error {
	err := e.cfg.Traces.WriteTraces(ctx, expID, runID, calls)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrMalformedResponse):
		e.log.Warn("MLflow answered traces with a malformed body; treating them as accepted", "calls", len(calls), "err", err)
		e.cfg.OnProblem("malformed_response")
		return nil
	case !isPermanent(err):
		return fmt.Errorf("send traces: %w", err)
	}
	if len(calls) == 1 {
		e.log.Error("MLflow refused a trace: skipped", "call_id", calls[0].ID, "err", err)
		e.cfg.OnProblem("trace_refused")
		return nil
	}
	for _, c := range calls {
		if err := e.writeTraces(ctx, expID, runID, []*llmscope.Call{c}); err != nil {
			return err
		}
	}
	return nil
}

// maxRunLinks is the most traces MLflow links to a run in one OTLP request
// (its MAX_TRACE_LINKS_PER_REQUEST); beyond it, it links none of them.
const maxRunLinks = 100

// markSourceRun puts mlflow.sourceRun (and the trace's name, user and
// session) in the metadata of the traces of calls of one run, as autolog's
// traces have it: get_trace().info.trace_metadata names the run. A server
// without the V3 trace API keeps the link the OTLP header made.
func (e *Exporter) markSourceRun(ctx context.Context, expID, runID string, calls []*llmscope.Call) error {
	// One request per trace: a few at a time, as MLflow serves them in
	// parallel.
	sem := make(chan struct{}, startTraceParallel)
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		if e.noStartTrace.Load() {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = e.startTrace(ctx, expID, runID, c)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("mark traces of run %s: %w", runID, err)
		}
	}
	return nil
}

// startTraceParallel bounds the StartTrace requests in flight.
const startTraceParallel = 8

// startTrace records c's trace info with its run; it returns only the
// errors worth retrying the batch for.
func (e *Exporter) startTrace(ctx context.Context, expID, runID string, c *llmscope.Call) error {
	info := TraceInfo{
		TraceID:      "tr-" + c.TraceHex(),
		ExperimentID: expID,
		RequestTime:  c.Start,
		Duration:     time.Duration(c.DurationMS * float64(time.Millisecond)),
		State:        "OK",
		Metadata:     map[string]string{"mlflow.sourceRun": runID},
	}
	if c.Failed() {
		info.State = "ERROR"
	}
	if c.User != "" {
		info.Metadata["mlflow.trace.user"] = c.User
	}
	if c.Session != "" {
		info.Metadata["mlflow.trace.session"] = c.Session
	}
	err := e.cfg.Client.StartTrace(ctx, info)
	switch {
	case err == nil:
	case IsCode(err, "ENDPOINT_NOT_FOUND") || isStatus(err, 404):
		if !e.noStartTrace.Swap(true) {
			e.log.Warn("this MLflow server has no V3 trace API: traces stay linked to their runs without mlflow.sourceRun", "err", err)
		}
	case isPermanent(err) || isStatus(err, 400):
		e.log.Error("MLflow refused a trace's run metadata: skipped", "call_id", c.ID, "err", err)
		e.cfg.OnProblem("trace_refused")
	default:
		return err
	}
	return nil
}

// ErrMalformedResponse is what a TraceWriter wraps when the server accepted
// the request but its answer could not be read.
var ErrMalformedResponse = errors.New("malformed response")

// isPermanent reports whether err says the server will never accept the
// data: a 4xx other than 401, 403, 408 and 429 (which may pass later).
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// Idle ends named runs that saw no call for RunIdle and closes rollup
// minutes that are over.
func (e *Exporter) Idle(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, rs := range e.runs {
		if !rs.ended && !rs.lastCall.IsZero() && time.Since(rs.lastCall) >= e.cfg.RunIdle {
			if err := e.endRun(ctx, key, rs); err != nil {
				e.log.Warn("ending idle run", "run", key.run, "err", err)
			}
		}
	}
	var errs []error
	for expID, r := range e.rollups {
		errs = append(errs, e.flushRollup(ctx, expID, r, time.Now().Add(-e.cfg.RollupGrace)))
	}
	return errors.Join(errs...)
}

// Close ends every open run with its summary and flushes the rollups: its
// own rollup runs whole minute or not, and ends them; a shared one is left
// as it is, open, to the gateway that exports next (which resumes after
// the last minute logged).
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for key, rs := range e.runs {
		if !rs.ended {
			errs = append(errs, e.endRun(ctx, key, rs))
		}
	}
	for expID, r := range e.rollups {
		if e.cfg.SharedRollup {
			// Close runs after the export lease is released: another
			// gateway may lead now and log these minutes itself, from the
			// run's history.
			continue
		}
		errs = append(errs, e.flushRollup(ctx, expID, r, time.Now().Add(time.Hour)))
		if r.id != "" {
			errs = append(errs, e.cfg.Client.UpdateRun(ctx, r.id, "FINISHED", time.Now()))
		}
	}
	return errors.Join(errs...)
}

// endRun logs a named run's summary metrics and marks it finished.
func (e *Exporter) endRun(ctx context.Context, key runKey, rs *runState) error {
	var expName string
	for name, id := range e.experiments {
		if id == key.experiment {
			expName = name
		}
	}
	st, err := e.cfg.Stats.Stats(ctx, llmscope.Filter{Experiment: expName, Run: key.run})
	if err != nil {
		return fmt.Errorf("summarise run %q: %w", key.run, err)
	}
	t := st.Totals
	now := time.Now().UnixMilli()
	m := func(k string, v float64) Metric { return Metric{Key: k, Value: v, Timestamp: now, Step: 0} }
	metrics := []Metric{
		m("calls", float64(t.Calls)), m("errors", float64(t.Errors)),
		m("latency_p50_ms", t.LatencyP50MS), m("latency_p95_ms", t.LatencyP95MS),
		m("tokens_sum", float64(t.TotalTokens)), m("cost_usd_sum", t.CostUSD),
	}
	if err := e.cfg.Client.LogBatch(ctx, rs.id, metrics, nil, nil); err != nil {
		return fmt.Errorf("summary of run %q: %w", key.run, err)
	}
	if err := e.cfg.Client.UpdateRun(ctx, rs.id, "FINISHED", time.Now()); err != nil {
		return fmt.Errorf("end run %q: %w", key.run, err)
	}
	rs.ended = true
	return nil
}
