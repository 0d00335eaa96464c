package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	f := sweepFlags{grid: gridFlag{}}
	f.dataset = s.str("dataset", "", "", "JSONL dataset (relative to the working directory): one item per line with \"prompt\" or \"messages\", optional \"expected\" and \"id\"")
	s.fs.Var(f.grid, "grid", "grid values, repeatable: model=a,b temperature=0,0.7 top_p=… max_tokens=… system=… (one system prompt per flag)")
	f.name = s.str("name", "", "", "sweep name (default: the spec's or the dataset's file name)")
	f.repeats = s.str("repeats", "", "", "times each item is sent per configuration (default 1)")
	f.concurrency = s.str("concurrency", "", "", "requests in flight at most (default 4)")
	f.rpm = s.str("rpm", "", "", "requests per minute at most (default: no limit)")
	f.tpm = s.str("tpm", "", "", "tokens per minute at most, input plus max_tokens (default: no limit)")
	f.scorer = s.str("scorer", "", "", "exact, contains, regex or json_valid (default exact)")
	f.pattern = s.str("pattern", "", "", "regex scorer: one pattern for every item (default: each item's expected text)")
	f.ignoreCase = s.boolean("ignore-case", "", false, "score without regard to case")
	f.stream = s.boolean("stream", "", false, "stream the answers (measures time to first token)")
	f.retries = s.str("retries", "", "", "retries after a 429, 408, 5xx or network error (default 4; 0: none)")
	f.timeout = s.str("timeout", "", "", "longest wait for one answer (default 5m)")
	f.sortBy = s.str("sort", "", "", "sort the table by accuracy, cost, latency_p50, latency_p95, ttft_p50 or tokens (default accuracy)")
	f.out = s.str("out", "", "", `results directory, relative to the working directory (default "sweep-<name>")`)
	f.experiment = s.str("experiment", "MLFLOW_EXPERIMENT_NAME", "llmscope", "experiment of the runs (a spec's experiment wins over the environment)")
	dryRun := s.boolean("dry-run", "", false, "print the plan (configurations × items, estimated tokens and cost) and send nothing")
	gatewayURL := s.str("gateway", "LLMSCOPE_GATEWAY", "", "send through a running llmscope serve at this URL instead of recording directly")
	upstream := s.str("upstream", "OPENAI_BASE_URL", "", `direct mode: upstream base URL with its /v1, or "sim" (default: OpenAI with OPENAI_API_KEY, else sim)`)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "direct mode: store")
	capture := s.autoBoolean("capture", "LLMSCOPE_CAPTURE", "direct mode: store prompts and answers with the calls (and in MLflow traces); auto: on with --mlflow")
	mlflowURI := s.str("mlflow", "MLFLOW_TRACKING_URI", "", "MLflow tracking server: one run per configuration, with accuracy (through a gateway: the gateway's server)")
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
		if spec, err = sweep.ReadSpec(specFile.val); err != nil {
			return err
		}
	} else if f.dataset.val == "" {
		fmt.Fprintln(stderr, "llmscope sweep: give --spec FILE, or --dataset FILE with --grid model=…")
		return errUsage
	}
	if err := overrideSpec(spec, f); err != nil {
		return err
	}
	items, err := sweep.LoadDataset(spec.DatasetPath())
	if err != nil {
		return err
	}
	if dryRun.val == "true" {
		table, err := pricing.LoadAll(updatedPricesPath(), prices.val)
		if err != nil {
			return err
		}
		return sweep.WritePlan(stdout, spec, items, sweep.Plan(spec, items, table))
	}

	r := &sweep.Runner{Spec: spec, Items: items, Log: logger, Progress: &sweep.Bar{W: stderr, TTY: isTerminal(stderr)}}
	var finish func() error // makes every call of the sweep readable through r.Reader
	if gw := strings.TrimRight(gatewayURL.val, "/"); gw != "" {
		r.BaseURL, r.APIKey = gw+"/v1", secret("OPENAI_API_KEY")
		if r.APIKey == "" {
			r.APIKey = "unused" // the gateway holds the key
		}
		r.Reader = &web.Client{Base: gw, Token: secret("LLMSCOPE_ADMIN_TOKEN")}
		finish = func() error { return nil }
	} else {
		store, err := openStore(ctx, db.val)
		if err != nil {
			return err
		}
		defer store.Close()
		base, apiKey, stopSim, err := directUpstream(upstream.val, simTPS.val, stderr, "sweep")
		if err != nil {
			return err
		}
		defer stopSim()
		capt, err := capture.AutoBool(mlflowURI.val != "")
		if err != nil {
			return err
		}
		redactor, err := llmscope.NewRedactor(true, nil)
		if err != nil {
			return err
		}
		rec, err := sdk.New(ctx, sdk.Config{Store: store, Experiment: spec.ExperimentName(), PricesFile: prices.val, UpdatedPricesFile: updatedPricesPath(),
			Capture: capt, Redactor: redactor, MLflowURI: mlflowURI.val, RunIdle: 24 * time.Hour, Logger: logger,
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
	// After a first interrupt the sweep still stores and reports what it
	// did; a second one exits at once.
	go func() {
		<-ctx.Done()
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		<-sigs
		fmt.Fprintln(stderr, "llmscope sweep: interrupted again: exiting without results (the calls so far are in the store)")
		os.Exit(130)
	}()

	outcomes, runErr := r.Run(ctx)
	if err := finish(); err != nil {
		logger.Warn("closing the recorder", "err", err)
	}
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c, ok := r.Reader.(*web.Client); ok {
		wctx, wcancel := context.WithTimeout(rctx, 30*time.Second)
		for _, o := range outcomes {
			if o.CallID != "" {
				if _, err := c.Wait(wctx, o.CallID); err != nil {
					logger.Warn("the gateway has not stored every call of the sweep yet", "err", err)
					break
				}
			}
		}
		wcancel()
	}
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	// Results come from the store, also after an interruption.
	log, err := sweep.ReadLog(spec.OutDir())
	if err != nil {
		return err
	}
	res, err := sweep.Collect(rctx, r.Reader, spec, items, log)
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
	done, failed := 0, 0
	for _, row := range res.Rows {
		done += row.Done
		failed += row.Failed
	}
	if done == 0 && failed > 0 {
		return fmt.Errorf("every unit failed (%d): see %s/scores.jsonl", failed, spec.OutDir())
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// directUpstream resolves where a command that calls the API itself (chat,
// sweep) sends its requests: the built-in simulator for "sim", or when there
// is neither a key nor an upstream (started here, stopped by stop), else
// the upstream, by default OpenAI's.
func directUpstream(upstream, simTPS string, stderr io.Writer, cmd string) (base, apiKey string, stop func(), err error) {
	apiKey = secret("OPENAI_API_KEY")
	switch {
	case upstream == "sim" || upstream == "" && apiKey == "":
		o := newServeOptions(io.Discard)
		o.simTTFT.val, o.simTPS.val = "0s", simTPS
		if cmd == "chat" {
			o.simTTFT.val = "150ms"
		}
		url, stop, err := startInProcessSim(o, nil)
		if err != nil {
			return "", "", nil, err
		}
		if upstream == "" {
			fmt.Fprintf(stderr, "llmscope %s: no OPENAI_API_KEY and no --upstream: answering from the built-in simulator, not a model\n", cmd)
		} else {
			fmt.Fprintf(stderr, "llmscope %s: --upstream sim: answering from the built-in simulator, not a model\n", cmd)
		}
		return url, "sim", stop, nil
	case apiKey == "":
		return "", "", nil, errors.New("no OPENAI_API_KEY: set it (environment or .env), or use --upstream sim, or --gateway URL of a running llmscope serve")
	case upstream == "":
		upstream = defaultUpstream
	}
	return upstream, apiKey, func() {}, nil
}

// sweepFlags are the options that override a spec.
type sweepFlags struct {
	dataset, name, repeats, concurrency, rpm, tpm *option
	scorer, pattern, ignoreCase, stream, retries  *option
	timeout, sortBy, out, experiment              *option
	grid                                          gridFlag
}

// overrideSpec applies the flags given on the command line to spec and
// checks the result: flags may complete a spec as well as change it.
func overrideSpec(spec *sweep.Spec, f sweepFlags) error {
	var errs []error
	// given marks the flag's spec field overridden and reports whether the
	// flag was given.
	given := func(o *option, field string) bool {
		if o.from != "flag" {
			return false
		}
		spec.Override(field)
		return true
	}
	atoi := func(o *option, field string) *int {
		if !given(o, field) {
			return nil
		}
		n, err := strconv.Atoi(o.val)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %q is not an integer", o.name, o.val))
		}
		return &n
	}
	atof := func(o *option, field string, p *float64) {
		if given(o, field) {
			v, err := o.Float()
			if err != nil {
				errs = append(errs, err)
			}
			*p = v
		}
	}
	str := func(o *option, field string, p *string) {
		if given(o, field) {
			*p = o.val
		}
	}
	boolean := func(o *option, field string, p *bool) {
		if given(o, field) {
			*p = o.val == "true"
		}
	}
	if given(f.dataset, "dataset") {
		spec.SetDataset(f.dataset.val)
	}
	str(f.name, "name", &spec.Name)
	if spec.Name == "" && spec.Dataset != "" {
		spec.Name = strings.TrimSuffix(filepath.Base(spec.Dataset), filepath.Ext(spec.Dataset))
	}
	if n := atoi(f.repeats, "repeats"); n != nil {
		spec.Repeats = *n
	}
	if n := atoi(f.concurrency, "concurrency"); n != nil {
		spec.Concurrency = *n
	}
	if n := atoi(f.retries, "retries"); n != nil {
		spec.Retries = n
	}
	atof(f.rpm, "rate_limit.requests_per_minute", &spec.RateLimit.RequestsPerMinute)
	atof(f.tpm, "rate_limit.tokens_per_minute", &spec.RateLimit.TokensPerMinute)
	str(f.scorer, "scorer.type", &spec.Scorer.Type)
	str(f.pattern, "scorer.pattern", &spec.Scorer.Pattern)
	boolean(f.ignoreCase, "scorer.ignore_case", &spec.Scorer.IgnoreCase)
	boolean(f.stream, "stream", &spec.Stream)
	str(f.timeout, "timeout", &spec.Timeout)
	str(f.sortBy, "sort_by", &spec.SortBy)
	str(f.out, "out", &spec.Out)
	// The experiment: the flag, else the spec's, else the environment's.
	if given(f.experiment, "experiment") || spec.Experiment == "" {
		spec.Experiment = f.experiment.val
	}
	for k, vals := range f.grid {
		spec.Override("grid." + k)
		if err := setGrid(&spec.Grid, k, vals); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return spec.Check()
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

// publishSweep logs each configuration's results to its MLflow run (made
// by the exporter from the run's calls): accuracy and the run's summary as
// metrics, and the score of every unit as the "score" series, at the
// unit's step and its call's time, so logging again adds no new points.
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
	byRun := map[string][]sweep.ItemResult{}
	for _, it := range res.Items {
		byRun[it.Run] = append(byRun[it.Run], it)
	}
	for _, row := range res.Rows {
		if row.Calls.Calls == 0 {
			continue // nothing sent: the run does not exist
		}
		id, err := findRun(ctx, client, exp, row.Run)
		if err != nil {
			return err
		}
		var last int64 // the summary's time: the run's last call, the same on every publish
		var metrics []mlflow.Metric
		for _, it := range byRun[row.Run] {
			ts := it.Start.UnixMilli()
			last = max(last, ts)
			if it.Score != nil {
				metrics = append(metrics, mlflow.Metric{Key: "score", Value: *it.Score, Timestamp: ts, Step: int64(it.Step)})
			}
		}
		m := func(k string, v float64) { metrics = append(metrics, mlflow.Metric{Key: k, Value: v, Timestamp: last}) }
		m("units", float64(row.Units))
		m("units_done", float64(row.Done))
		m("units_failed", float64(row.Failed))
		m("scored", float64(row.Scored))
		m("correct", float64(row.Correct))
		m("calls", float64(row.Calls.Calls))
		m("errors", float64(row.Calls.Errors))
		m("latency_p50_ms", row.Calls.LatencyP50MS)
		m("latency_p95_ms", row.Calls.LatencyP95MS)
		m("tokens_sum", float64(row.Calls.TotalTokens))
		if row.Calls.CostUnknown == 0 { // never a zero cost for an unknown price
			m("cost_usd_sum", row.Calls.CostUSD)
		}
		if row.Accuracy != nil {
			m("accuracy", *row.Accuracy)
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		run, err := client.FindRun(ctx, exp, name)
		if err != nil {
			return "", fmt.Errorf("find run %q: %w", name, err)
		}
		if run != nil {
			return run.ID, nil
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
