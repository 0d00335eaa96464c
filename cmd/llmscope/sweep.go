package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"llmscope"
	"llmscope/mlflow"
	"llmscope/pricing"
	"llmscope/sdk"
	"llmscope/sweep"
	"llmscope/web"
)

// gridFlag collects repeated --grid key=v1,v2 flags.
type gridFlag map[string][]string

func (g gridFlag) String() string { return "" }
func (g gridFlag) Set(v string) error {
	k, vals, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	switch k {
	case "model", "temperature", "top_p", "max_tokens", "system":
	default:
		return fmt.Errorf("%q: the grid's keys are model, temperature, top_p, max_tokens and system", k)
	}
	if !ok || vals == "" {
		return fmt.Errorf("%q: want %s=value1,value2", v, k)
	}
	if k == "system" { // prompts hold commas: one value per flag
		g[k] = append(g[k], vals)
		return nil
	}
	for _, s := range strings.Split(vals, ",") {
		g[k] = append(g[k], strings.TrimSpace(s))
	}
	return nil
}

func runSweep(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("sweep", stderr)
	specFile := s.str("spec", "", "", "sweep spec (YAML): dataset, grid, scorer, limits; the flags below override it")
	dataset := s.str("dataset", "", "", "JSONL dataset: one item per line with \"prompt\" or \"messages\", optional \"expected\" and \"id\"")
	grid := gridFlag{}
	s.fs.Var(grid, "grid", "grid values, repeatable: model=a,b temperature=0,0.7 top_p=… max_tokens=… system=… (one system prompt per flag)")
	name := s.str("name", "", "", "sweep name (default: the spec's or the dataset's file name)")
	repeats := s.str("repeats", "", "", "times each item is sent per configuration (default 1)")
	concurrency := s.str("concurrency", "", "", "requests in flight at most (default 4)")
	rpm := s.str("rpm", "", "", "requests per minute at most (default: no limit)")
	tpm := s.str("tpm", "", "", "tokens per minute at most, input plus max_tokens (default: no limit)")
	scorer := s.str("scorer", "", "", "exact, contains, regex or json_valid (default exact)")
	pattern := s.str("pattern", "", "", "regex scorer: one pattern for every item (default: each item's expected text)")
	ignoreCase := s.boolean("ignore-case", "", false, "score without regard to case")
	stream := s.boolean("stream", "", false, "stream the answers (measures time to first token)")
	retries := s.str("retries", "", "", "retries after a 429, 5xx or network error (default 4; -1: none)")
	sortBy := s.str("sort", "", "", "sort the table by accuracy, cost, latency_p50, latency_p95, ttft_p50 or tokens (default accuracy)")
	out := s.str("out", "", "", `results directory (default "sweep-<name>")`)
	experiment := s.str("experiment", "MLFLOW_EXPERIMENT_NAME", "llmscope", "experiment of the runs (a spec's experiment wins over the environment)")
	dryRun := s.boolean("dry-run", "", false, "print the plan (configurations × items, estimated tokens and cost) and send nothing")
	gatewayURL := s.str("gateway", "LLMSCOPE_GATEWAY", "", "send through a running llmscope serve at this URL instead of recording directly")
	upstream := s.str("upstream", "OPENAI_BASE_URL", "", `direct mode: upstream base URL with its /v1, or "sim" (default: OpenAI with OPENAI_API_KEY, else sim)`)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "direct mode: store")
	mlflowURI := s.str("mlflow", "MLFLOW_TRACKING_URI", "", "MLflow tracking server: one run per configuration, with accuracy")
	prices := s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table")
	simTPS := s.str("sim-tokens-per-second", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "0", "built-in simulator: streaming pace (0 = no delay)")
	logLevel := s.str("log-level", "LLMSCOPE_LOG_LEVEL", "warn", "debug, info, warn or error")
	if err := s.parse(args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, logLevel.val, "text")
	if err != nil {
		return err
	}
	spec := &sweep.Spec{}
	if specFile.val != "" {
		if spec, err = sweep.LoadSpec(specFile.val); err != nil {
			return err
		}
	} else if dataset.val == "" {
		fmt.Fprintln(stderr, "llmscope sweep: give --spec FILE, or --dataset FILE with --grid model=…")
		return errUsage
	}
	if err := overrideSpec(spec, sweepFlags{
		dataset: dataset, name: name, repeats: repeats, concurrency: concurrency, rpm: rpm, tpm: tpm,
		scorer: scorer, pattern: pattern, ignoreCase: ignoreCase, stream: stream, retries: retries,
		sortBy: sortBy, out: out, experiment: experiment,
	}, grid); err != nil {
		return err
	}
	items, err := sweep.LoadDataset(spec.DatasetPath())
	if err != nil {
		return err
	}
	if dryRun.val == "true" {
		table, err := pricing.Load(prices.val)
		if err != nil {
			return err
		}
		return sweep.WritePlan(stdout, spec, items, sweep.Plan(spec, items, table))
	}

	r := &sweep.Runner{Spec: spec, Items: items, Log: logger}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.Progress = &sweep.Bar{W: stderr, TTY: true}
	} else {
		r.Progress = &sweep.Bar{W: stderr}
	}
	var finish func() error // makes every call of the sweep readable through r.Reader
	if gw := strings.TrimRight(gatewayURL.val, "/"); gw != "" {
		r.BaseURL, r.APIKey, r.HTTPClient = gw+"/v1", secret("OPENAI_API_KEY"), &http.Client{}
		if r.APIKey == "" {
			r.APIKey = "unused" // the gateway holds the key
		}
		api := &apiReader{base: gw, hc: &http.Client{Timeout: 30 * time.Second}}
		r.Reader = api
		finish = func() error { return nil }
	} else {
		store, err := openStore(ctx, db.val)
		if err != nil {
			return err
		}
		defer store.Close()
		base, apiKey := upstream.val, secret("OPENAI_API_KEY")
		if base == "sim" || base == "" && apiKey == "" {
			o := newServeOptions(io.Discard)
			o.simTPS.val = simTPS.val
			url, stop, err := startInProcessSim(o, nil)
			if err != nil {
				return err
			}
			defer stop()
			fmt.Fprintln(stderr, "llmscope sweep: no OPENAI_API_KEY and no --upstream: answering from the built-in simulator, not a model")
			base, apiKey = url, "sim"
		} else if apiKey == "" {
			return errors.New("no OPENAI_API_KEY: set it (environment or .env), or use --upstream sim, or --gateway URL of a running llmscope serve")
		}
		// The sweep keeps its answers in the store (capture on) so results
		// can be scored again on every later run.
		rec, err := sdk.New(ctx, sdk.Config{Store: store, Experiment: spec.ExperimentName(), PricesFile: prices.val,
			Capture: true, CaptureMaxBytes: 1 << 20, MLflowURI: mlflowURI.val, RunIdle: 24 * time.Hour, Logger: logger,
			MLflowToken: secret("MLFLOW_TRACKING_TOKEN"), MLflowUsername: secret("MLFLOW_TRACKING_USERNAME"), MLflowPassword: secret("MLFLOW_TRACKING_PASSWORD")})
		if err != nil {
			return err
		}
		r.BaseURL, r.APIKey, r.HTTPClient, r.Reader = base, apiKey, rec.HTTPClient(), store
		closed := false
		finish = func() error {
			if closed {
				return nil
			}
			closed = true
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			return rec.Close(cctx) // commits every call, exports, ends the runs
		}
		defer finish()
	}

	outcomes, runErr := r.Run(ctx)
	if err := finish(); err != nil {
		logger.Warn("closing the recorder", "err", err)
	}
	if api, ok := r.Reader.(*apiReader); ok {
		if err := api.waitStored(outcomes, 30*time.Second); err != nil {
			logger.Warn("the gateway has not stored every call yet", "err", err)
		}
	}
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	// Results come from the store, also after an interruption.
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	answers, err := sweep.ReadAnswers(spec.OutDir())
	if err != nil {
		return err
	}
	res, err := sweep.Collect(rctx, r.Reader, spec, items, answers)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := res.Table(stdout); err != nil {
		return err
	}
	if err := res.Write(spec.OutDir()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nresults, scores and the cost-vs-accuracy chart: %s/\n", spec.OutDir())
	if mlflowURI.val != "" {
		if err := publishSweep(rctx, mlflowURI.val, res, logger); err != nil {
			fmt.Fprintf(stderr, "llmscope sweep: MLflow: %v (run the same command again to log the results)\n", err)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: run the same command again to resume (done units are skipped)")
	}
	return nil
}

// sweepFlags are the options that override a spec.
type sweepFlags struct {
	dataset, name, repeats, concurrency, rpm, tpm *option
	scorer, pattern, ignoreCase, stream, retries  *option
	sortBy, out, experiment                       *option
}

// overrideSpec applies the flags given on the command line to spec and
// checks the result.
func overrideSpec(spec *sweep.Spec, f sweepFlags, grid gridFlag) error {
	set := func(o *option) bool { return o.from == "flag" }
	var errs []error
	atoi := func(o *option, p *int) {
		if set(o) {
			n, err := strconv.Atoi(o.val)
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s: %q is not an integer", o.name, o.val))
			}
			*p = n
		}
	}
	atof := func(o *option, p *float64) {
		if set(o) {
			v, err := o.Float()
			if err != nil {
				errs = append(errs, err)
			}
			*p = v
		}
	}
	str := func(o *option, p *string) {
		if set(o) {
			*p = o.val
		}
	}
	boolean := func(o *option, p *bool) {
		if set(o) {
			*p = o.val == "true"
		}
	}
	str(f.dataset, &spec.Dataset)
	str(f.name, &spec.Name)
	if spec.Name == "" && spec.Dataset != "" {
		base := spec.Dataset[strings.LastIndex(spec.Dataset, "/")+1:]
		spec.Name = strings.TrimSuffix(base, ".jsonl")
	}
	atoi(f.repeats, &spec.Repeats)
	atoi(f.concurrency, &spec.Concurrency)
	atof(f.rpm, &spec.RateLimit.RequestsPerMinute)
	atof(f.tpm, &spec.RateLimit.TokensPerMinute)
	str(f.scorer, &spec.Scorer.Type)
	str(f.pattern, &spec.Scorer.Pattern)
	boolean(f.ignoreCase, &spec.Scorer.IgnoreCase)
	boolean(f.stream, &spec.Stream)
	atoi(f.retries, &spec.Retries)
	str(f.sortBy, &spec.SortBy)
	str(f.out, &spec.Out)
	// The experiment: the flag, else the spec's, else the environment's.
	if set(f.experiment) || spec.Experiment == "" {
		spec.Experiment = f.experiment.val
	}
	for k, vals := range grid {
		if err := setGrid(&spec.Grid, k, vals); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := spec.Check(); err != nil {
		return fmt.Errorf("sweep settings: %w", err)
	}
	return nil
}

// setGrid replaces the grid's values of key with vals.
func setGrid(g *sweep.Grid, key string, vals []string) error {
	floats := func() ([]float64, error) {
		out := make([]float64, len(vals))
		for i, v := range vals {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("--grid %s: %q is not a number", key, v)
			}
			out[i] = f
		}
		return out, nil
	}
	var err error
	switch key {
	case "model":
		g.Model = vals
	case "system":
		g.System = vals
	case "temperature":
		g.Temperature, err = floats()
	case "top_p":
		g.TopP, err = floats()
	case "max_tokens":
		g.MaxTokens = make([]int64, len(vals))
		for i, v := range vals {
			if g.MaxTokens[i], err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("--grid max_tokens: %q is not an integer", v)
			}
		}
	}
	return err
}

// apiReader reads calls and stats from a running gateway's JSON API.
type apiReader struct {
	base string
	hc   *http.Client
}

func (a *apiReader) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("gateway API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("gateway API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("gateway API %s: %w", path, err)
	}
	return nil
}

func filterQuery(f llmscope.Filter) url.Values {
	q := url.Values{}
	if f.Run != "" {
		q.Set("run", f.Run)
	}
	if f.Experiment != "" {
		q.Set("experiment", f.Experiment)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(min(f.Limit, web.MaxLimit)))
	}
	return q
}

// List implements sweep.Reader.
func (a *apiReader) List(ctx context.Context, f llmscope.Filter) ([]*llmscope.Call, error) {
	var out struct {
		Calls []*llmscope.Call `json:"calls"`
	}
	if err := a.get(ctx, "/api/calls", filterQuery(f), &out); err != nil {
		return nil, err
	}
	if len(out.Calls) >= web.MaxLimit && f.Limit > web.MaxLimit {
		return nil, fmt.Errorf("run %q has more than %d calls, more than the gateway API lists: read its results in direct mode (--db of the gateway)", f.Run, web.MaxLimit)
	}
	return out.Calls, nil
}

// Stats implements sweep.Reader.
func (a *apiReader) Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	var st llmscope.Stats
	q := filterQuery(f)
	q.Del("limit")
	err := a.get(ctx, "/api/stats", q, &st)
	return &st, err
}

// waitStored waits until the gateway has stored the call of every outcome.
func (a *apiReader) waitStored(outcomes []sweep.Outcome, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, o := range outcomes {
		if o.CallID == "" {
			continue
		}
		for {
			var c llmscope.Call
			err := a.get(ctx, "/api/calls/"+o.CallID, nil, &c)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("call %s: %w", o.CallID, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// publishSweep logs each configuration's results to its MLflow run (made
// by the exporter from the run's calls): accuracy and the run's summary
// as metrics, the score of every unit as the "score" series.
func publishSweep(ctx context.Context, uri string, res *sweep.Results, logger *slog.Logger) error {
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: uri, Token: secret("MLFLOW_TRACKING_TOKEN"),
		Username: secret("MLFLOW_TRACKING_USERNAME"), Password: secret("MLFLOW_TRACKING_PASSWORD")})
	if err != nil {
		return err
	}
	exp, err := client.EnsureExperiment(ctx, res.Experiment)
	if err != nil {
		return fmt.Errorf("experiment %q: %w", res.Experiment, err)
	}
	scores := map[string][]float64{}
	for _, it := range res.Items {
		if it.Score != nil {
			scores[it.Run] = append(scores[it.Run], *it.Score)
		}
	}
	for _, row := range res.Rows {
		if row.Calls.Calls == 0 {
			continue // nothing sent: the run does not exist
		}
		id, err := findRun(ctx, client, exp, row.Run)
		if err != nil {
			return err
		}
		now := time.Now().UnixMilli()
		m := func(k string, v float64) mlflow.Metric { return mlflow.Metric{Key: k, Value: v, Timestamp: now} }
		metrics := []mlflow.Metric{
			m("units", float64(row.Units)), m("units_done", float64(row.Done)), m("units_failed", float64(row.Failed)),
			m("scored", float64(row.Scored)), m("correct", float64(row.Correct)),
			m("calls", float64(row.Calls.Calls)), m("errors", float64(row.Calls.Errors)),
			m("latency_p50_ms", row.Calls.LatencyP50MS), m("latency_p95_ms", row.Calls.LatencyP95MS),
			m("tokens_sum", float64(row.Calls.TotalTokens)), m("cost_usd_sum", row.Calls.CostUSD),
		}
		if row.Accuracy != nil {
			metrics = append(metrics, m("accuracy", *row.Accuracy))
		}
		for i, s := range scores[row.Run] {
			metrics = append(metrics, mlflow.Metric{Key: "score", Value: s, Timestamp: now, Step: int64(i + 1)})
		}
		tags := []mlflow.Tag{{Key: "llmscope.sweep", Value: res.Sweep}, {Key: "llmscope.sweep.config", Value: row.Config}}
		if err := client.LogBatch(ctx, id, metrics, nil, tags); err != nil {
			return fmt.Errorf("run %q: %w", row.Run, err)
		}
		logger.Debug("sweep results logged to MLflow", "run", row.Run, "run_id", id)
	}
	return nil
}

// findRun returns the id of the run the exporter made for name, waiting a
// little for an exporter that is behind.
func findRun(ctx context.Context, client *mlflow.Client, exp, name string) (string, error) {
	filter := "tags.`llmscope.run` = '" + strings.ReplaceAll(name, "'", "\\'") + "'"
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, err := client.SearchRuns(ctx, []string{exp}, filter)
		if err != nil {
			return "", fmt.Errorf("find run %q: %w", name, err)
		}
		if len(runs) > 0 {
			return runs[0].ID, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("run %q is not in MLflow yet", name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
