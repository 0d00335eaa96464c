package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/internal/wire"
	"llmscope/otlp"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/sim"
	"llmscope/web"
)

const defaultUpstream = "https://api.openai.com/v1"

// serveOptions are the options of serve.
type serveOptions struct {
	s                                             *settings
	addr, db, upstream, experiment, provider      *option
	capture, captureMax, maxBody, queue, shutdown *option
	prices, injectUsage, upstreamTimeout          *option
	mlflowURI, otlpEndpoint, runIdle              *option
	metricsAddr, modelCap, pprof, commitWait      *option
	simTTFT, simTPS, logLevel, logFormat          *option
}

func newServeOptions(stderr io.Writer) *serveOptions {
	s := newSettings("serve", stderr)
	o := &serveOptions{s: s}
	o.addr = s.str("addr", "LLMSCOPE_ADDR", "127.0.0.1:8700", "listen address of the gateway, dashboard, API and /metrics")
	o.db = s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path")
	o.upstream = s.str("upstream", "OPENAI_BASE_URL", "", `upstream API base URL with its /v1, or "sim" for the built-in simulator (default: OpenAI when OPENAI_API_KEY is set, else sim)`)
	o.experiment = s.str("experiment", "MLFLOW_EXPERIMENT_NAME", "llmscope", "experiment of calls that do not name one")
	o.provider = s.str("provider", "LLMSCOPE_PROVIDER", "", `provider name recorded with each call (default "openai", or "sim")`)
	o.capture = s.boolean("capture", "LLMSCOPE_CAPTURE", false, "store request input and response text with each call")
	o.captureMax = s.str("capture-max-bytes", "LLMSCOPE_CAPTURE_MAX_BYTES", "64KiB", "cap on each captured text")
	o.maxBody = s.str("max-body-bytes", "LLMSCOPE_MAX_BODY_BYTES", "32MiB", "request body limit; larger bodies get 413")
	o.queue = s.str("queue-size", "LLMSCOPE_QUEUE_SIZE", "10000", "calls waiting for the store before new ones are dropped (and counted)")
	o.prices = s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table (see llmscope prices)")
	o.injectUsage = s.boolean("inject-usage", "LLMSCOPE_INJECT_USAGE", true, "ask streaming requests for usage and hide the extra chunk from the client")
	o.upstreamTimeout = s.str("upstream-timeout", "LLMSCOPE_UPSTREAM_TIMEOUT", "10m", "longest wait for the upstream's response headers")
	o.mlflowURI = s.str("mlflow", "MLFLOW_TRACKING_URI", "", "MLflow tracking server URL: export runs, metrics and traces to it")
	o.otlpEndpoint = s.str("otlp-endpoint", "LLMSCOPE_OTLP_ENDPOINT", "", "OTLP/HTTP traces endpoint of an OpenTelemetry collector (default from OTEL_EXPORTER_OTLP_ENDPOINT)")
	o.runIdle = s.str("run-idle", "LLMSCOPE_RUN_IDLE", "5m", "a named run ends (summary metrics, FINISHED) after this long without calls")
	o.metricsAddr = s.str("metrics-addr", "LLMSCOPE_METRICS_ADDR", "", "also serve /metrics on this address (it is always on --addr)")
	o.commitWait = s.str("commit-wait", "LLMSCOPE_COMMIT_WAIT", "25ms", "group commit: how long a partial batch of calls waits for more before it is written (longer: less CPU, more calls lost if the process is killed)")
	o.pprof = s.boolean("pprof", "LLMSCOPE_PPROF", false, "serve Go's profiler at /debug/pprof/ on --addr (for performance work; off by default)")
	o.modelCap = s.str("model-label-cap", "LLMSCOPE_MODEL_LABEL_CAP", "100", "distinct model label values in metrics; more become \"other\"")
	o.shutdown = s.str("shutdown-timeout", "LLMSCOPE_SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for requests in flight")
	o.simTTFT = s.str("sim-ttft", "LLMSCOPE_SIM_TTFT", "0s", "built-in simulator: delay before the first token")
	o.simTPS = s.str("sim-tokens-per-second", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "0", "built-in simulator: streaming pace (0 = no delay)")
	o.logLevel = s.str("log-level", "LLMSCOPE_LOG_LEVEL", "info", "debug, info, warn or error")
	o.logFormat = s.str("log-format", "LLMSCOPE_LOG_FORMAT", "text", "text or json")
	return o
}

func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o := newServeOptions(stderr)
	if err := o.s.parse(args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, o.logLevel.val, o.logFormat.val)
	if err != nil {
		return err
	}
	apiKey := secret("OPENAI_API_KEY")
	upstream := o.upstream.val
	useSim := upstream == "sim" || upstream == "" && apiKey == ""
	if useSim {
		fmt.Fprintln(stdout, "llmscope: no upstream configured (no OPENAI_API_KEY, no --upstream): answering from the built-in simulator, not a model")
	} else if upstream == "" {
		upstream = defaultUpstream
	}

	capture, err := o.capture.Bool()
	if err != nil {
		return err
	}
	captureMax, err := o.captureMax.Int()
	if err != nil {
		return err
	}
	maxBody, err := o.maxBody.Int()
	if err != nil {
		return err
	}
	queue, err := o.queue.Int()
	if err != nil {
		return err
	}
	if queue <= 0 {
		return fmt.Errorf("--queue-size: must be positive, got %d", queue)
	}
	shutdownTimeout, err := o.shutdown.Duration()
	if err != nil {
		return err
	}
	upstreamTimeout, err := o.upstreamTimeout.Duration()
	if err != nil {
		return err
	}
	injectUsage, err := o.injectUsage.Bool()
	if err != nil {
		return err
	}
	prices, err := pricing.Load(o.prices.val)
	if err != nil {
		return err
	}
	if !useSim && pointsAt(upstream, o.addr.val) {
		return fmt.Errorf("--upstream %s is this gateway's own address: set OPENAI_BASE_URL for your application, and --upstream (or nothing) for llmscope", upstream)
	}

	provider := o.provider.val
	if useSim {
		simURL, stopSim, err := startInProcessSim(o, logger)
		if err != nil {
			return err
		}
		defer stopSim() // after the gateway has drained
		upstream = simURL
		if provider == "" {
			provider = "sim"
		}
	}

	store, err := openStore(ctx, o.db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	var rec *llmscope.Recorder
	modelCap, err := o.modelCap.Int()
	if err != nil {
		return err
	}
	commitWait, err := o.commitWait.Duration()
	if err != nil {
		return err
	}
	metrics := prom.NewCapped(func() int { return rec.QueueDepth() }, int(modelCap))
	rec = llmscope.NewRecorder(store, llmscope.RecorderConfig{
		QueueSize: int(queue),
		BatchWait: commitWait,
		Logger:    logger.With("component", "recorder"),
		OnDrop:    metrics.Dropped,
	})
	gw, err := gateway.New(gateway.Config{
		Upstream:              upstream,
		APIKey:                apiKey,
		Provider:              provider,
		Experiment:            o.experiment.val,
		MaxBodyBytes:          maxBody,
		Capture:               capture,
		CaptureMaxBytes:       int(captureMax),
		DisableUsageInjection: !injectUsage,
		UpstreamTimeout:       upstreamTimeout,
		Pricer:                prices,
		OnCostUnknown:         costUnknownReporter(metrics, logger),
		Sink:                  llmscope.Sinks{metrics, rec},
		Logger:                logger.With("component", "gateway"),
	})
	if err != nil {
		return err
	}
	health := map[string]web.Health{
		"store_queue": func() error {
			if d, c := rec.QueueDepth(), rec.QueueCapacity(); d >= c*9/10 {
				return fmt.Errorf("store queue nearly full: %d of %d", d, c)
			}
			return nil
		},
	}
	runIdle, err := o.runIdle.Duration()
	if err != nil {
		return err
	}
	otlpEndpoint, otlpHeaders := otlp.ConfigFromEnv(os.Getenv)
	if o.otlpEndpoint.val != "" {
		otlpEndpoint = o.otlpEndpoint.val
	}
	exports, err := wire.Start(ctx, wire.Config{
		MLflowURI: o.mlflowURI.val, MLflowToken: secret("MLFLOW_TRACKING_TOKEN"),
		MLflowUsername: secret("MLFLOW_TRACKING_USERNAME"), MLflowPassword: secret("MLFLOW_TRACKING_PASSWORD"),
		RunIdle: runIdle, OTLPEndpoint: otlpEndpoint, OTLPHeaders: otlpHeaders, Capture: capture,
	}, store, metrics, logger)
	if err != nil {
		return err
	}
	for _, ex := range exports {
		health["export_"+ex.Name] = ex.Loop.Health
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("/", web.New(store, health, logger.With("component", "web")))
	if o.pprof.val == "true" {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}

	ln, err := net.Listen("tcp", o.addr.val)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("llmscope serving", "addr", "http://"+ln.Addr().String(), "upstream", upstreamLabel(upstream, useSim),
		"db", o.db.val, "capture", capture, "settings", strings.Join(o.s.sources(), " "))
	fmt.Fprintf(stdout, "llmscope: listening on http://%s (set OPENAI_BASE_URL=http://%s/v1)\n", ln.Addr(), ln.Addr())

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if addr := o.metricsAddr.val; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen --metrics-addr: %w", err)
		}
		msrv := &http.Server{Handler: metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
		logger.Info("metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("requests still in flight at the deadline: closing their connections", "err", err)
		_ = srv.Close()
	}
	// Handlers are done; calls still being estimated are not recorded yet.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := gw.Wait(wctx); err != nil {
		logger.Error("calls still being finished at exit", "err", err)
	}
	wcancel()
	fctx, fcancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer fcancel()
	if err := rec.Close(fctx); err != nil {
		return fmt.Errorf("flush store: %w", err)
	}
	wire.Stop(exports, shutdownTimeout, logger)
	logger.Info("stopped", "calls_written", rec.Written(), "calls_dropped", rec.Dropped())
	return nil
}

// costUnknownReporter counts calls that could not be priced and warns once
// per model.
func costUnknownReporter(m *prom.Metrics, logger *slog.Logger) func(string) {
	var warned sync.Map
	return func(model string) {
		m.CostUnknown()
		if _, seen := warned.LoadOrStore(model, true); !seen {
			logger.Warn("no price for model: its calls have cost null; add it with --prices", "model", model)
		}
	}
}

// pointsAt reports whether the upstream URL names the listen address addr.
func pointsAt(upstream, addr string) bool {
	u, err := url.Parse(upstream)
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return false
	}
	uport := u.Port()
	if uport == "" {
		uport = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if uport != port {
		return false
	}
	local := func(h string) bool {
		return h == "" || h == "localhost" || h == "0.0.0.0" || h == "::" || strings.HasPrefix(h, "127.") || h == "::1"
	}
	return u.Hostname() == host || local(u.Hostname()) && local(host)
}

// startInProcessSim runs the simulator on a loopback port and returns its base
// URL and a function that stops it.
func startInProcessSim(o *serveOptions, logger *slog.Logger) (string, func(), error) {
	ttft, err := o.simTTFT.Duration()
	if err != nil {
		return "", nil, err
	}
	tps, err := o.simTPS.Float()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start simulator: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{Handler: sim.New(sim.Config{TTFT: ttft, TokensPerSecond: tps, Logger: logger.With("component", "sim")})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

func upstreamLabel(u string, sim bool) string {
	if sim {
		return "sim (in-process)"
	}
	return u
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New(`--log-format: must be "text" or "json"`)
}
