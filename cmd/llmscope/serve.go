package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"llmscope/prom"
	"llmscope/sim"
)

// Default upstreams: OpenAI's (with its /v1), Anthropic's and Gemini's
// (without a version, as their SDKs' base URLs).
const (
	defaultUpstream          = "https://api.openai.com/v1"
	defaultAnthropicUpstream = "https://api.anthropic.com"
	defaultGeminiUpstream    = "https://generativelanguage.googleapis.com"
)

// serveOptions are the options of serve.
type serveOptions struct {
	s                                             *settings
	addr, db, upstream, experiment, provider      *option
	capture, captureMax, maxBody, queue, shutdown *option
	prices, injectUsage, upstreamTimeout          *option
	keepBodies, redactBuiltin, redactPatterns     *option
	mlflowURI, otlpEndpoint, runIdle, rollupGrace *option
	metricsAddr, modelCap, pprof, commitWait      *option
	storeDelay, retention, leaseTTL               *option
	simTTFT, simTPS, logLevel, logFormat          *option
	simProfile                                    *option
	anthropicUpstream, geminiUpstream             *option
	azureUpstream                                 *option
	routes, routing                               *section // the config file's routes: and routing:
	budgetSecs                                    budgetSections
	sec                                           *secureOptions
}

func newServeOptions(stderr io.Writer) *serveOptions {
	s := newSettings("serve", stderr)
	o := &serveOptions{s: s, routes: s.section("routes"), routing: s.section("routing"), budgetSecs: declareBudgetSections(s)}
	o.addr = s.str("addr", "LLMSCOPE_ADDR", "127.0.0.1:8700", "listen address of the gateway, dashboard, API and /metrics")
	o.db = s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	o.upstream = s.str("upstream", "OPENAI_BASE_URL", "", `upstream API base URL with its /v1, or "sim" for the built-in simulator (default: OpenAI when OPENAI_API_KEY is set, else sim)`)
	o.anthropicUpstream = s.str("anthropic-upstream", "LLMSCOPE_ANTHROPIC_UPSTREAM", defaultAnthropicUpstream, `Anthropic Messages upstream (/v1/messages) base URL without /v1, or "sim"; key from ANTHROPIC_API_KEY; clients set ANTHROPIC_BASE_URL to the gateway`)
	o.geminiUpstream = s.str("gemini-upstream", "LLMSCOPE_GEMINI_UPSTREAM", defaultGeminiUpstream, `Gemini upstream (/v1beta/) base URL without a version, or "sim"; key from GEMINI_API_KEY or GOOGLE_API_KEY`)
	o.azureUpstream = s.str("azure-upstream", "LLMSCOPE_AZURE_UPSTREAM", "", `Azure OpenAI upstream (/openai/) resource endpoint, e.g. https://myres.openai.azure.com, or "sim"; key from AZURE_OPENAI_API_KEY; clients set AZURE_OPENAI_ENDPOINT to the gateway (default: none, /openai/ answers 404)`)
	o.experiment = s.str("experiment", "MLFLOW_EXPERIMENT_NAME", "llmscope", "experiment of calls that do not name one")
	o.provider = s.str("provider", "LLMSCOPE_PROVIDER", "", `provider name recorded with each call (default "openai", or "sim")`)
	o.capture = s.autoBoolean("capture", "LLMSCOPE_CAPTURE", "store request input, response text, tools and tool calls with each call and export them; auto: on when exporting to MLflow (--mlflow), as mlflow.openai.autolog() does, off otherwise")
	o.redactBuiltin = s.boolean("redact", "LLMSCOPE_REDACT", true, "replace API keys, bearer tokens, emails and card numbers in captured text and upstream error messages before they are stored or exported")
	o.redactPatterns = s.list("redact-pattern", "LLMSCOPE_REDACT_PATTERNS", "also redact what this regular expression (RE2) matches; repeatable (env: one per line; config: a list)")
	o.captureMax = s.str("capture-max-bytes", "LLMSCOPE_CAPTURE_MAX_BYTES", "64KiB", "cap on each captured text")
	o.maxBody = s.str("max-body-bytes", "LLMSCOPE_MAX_BODY_BYTES", "32MiB", "request body limit; larger bodies get 413")
	o.queue = s.str("queue-size", "LLMSCOPE_QUEUE_SIZE", "10000", "calls waiting for the store before new ones are dropped (and counted)")
	o.prices = s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table (see llmscope prices)")
	o.injectUsage = s.boolean("inject-usage", "LLMSCOPE_INJECT_USAGE", true, "ask streaming requests for usage and hide the extra chunk from the client")
	o.keepBodies = s.boolean("keep-request-bodies", "LLMSCOPE_KEEP_REQUEST_BODIES", false, "hold each request body until its answer ends, so a call whose answer ends without usage (a client that hangs up mid-stream) is still estimated; by default a body is released once sent to an upstream that reports usage")
	o.upstreamTimeout = s.str("upstream-timeout", "LLMSCOPE_UPSTREAM_TIMEOUT", "10m", "longest wait for the upstream's response headers")
	o.mlflowURI = s.str("mlflow", "MLFLOW_TRACKING_URI", "", "MLflow tracking server URL: export runs, metrics and traces to it")
	o.otlpEndpoint = s.str("otlp-endpoint", "LLMSCOPE_OTLP_ENDPOINT", "", "OTLP/HTTP traces endpoint of an OpenTelemetry collector (default from OTEL_EXPORTER_OTLP_ENDPOINT)")
	o.runIdle = s.str("run-idle", "LLMSCOPE_RUN_IDLE", "5m", "a named run ends (summary metrics, FINISHED) after this long without calls")
	o.rollupGrace = s.str("rollup-grace", "LLMSCOPE_ROLLUP_GRACE", "5m", "a minute of the MLflow rollup run is logged this long after it ends, so calls still streaming count in it")
	o.metricsAddr = s.str("metrics-addr", "LLMSCOPE_METRICS_ADDR", "", "also serve /metrics on this address (it is always on --addr)")
	o.commitWait = s.str("commit-wait", "LLMSCOPE_COMMIT_WAIT", "100ms", "group commit: how long a partial batch of calls waits for more before it is written (longer: less CPU, more calls lost if the process is killed)")
	o.leaseTTL = s.str("export-lease-ttl", "LLMSCOPE_EXPORT_LEASE_TTL", "15s", "gateways sharing a store: one exports at a time, holding a lease it renews every third of this; when it dies another takes over within this long")
	o.storeDelay = s.str("store-delay", "LLMSCOPE_STORE_DELAY", "0s", "wait this long before every store commit, as a slow disk or a remote database would (for measuring the gateway over a slow store; 0 in use)")
	o.retention = s.str("retention", "LLMSCOPE_RETENTION", "0", "delete calls older than this (30d, 12h; days, or a Go duration of at least 1m), checked every minute, once every exporter has delivered them; 0 keeps every call")
	o.pprof = s.boolean("pprof", "LLMSCOPE_PPROF", false, "serve Go's profiler at /debug/pprof/ on --addr (for performance work; off by default)")
	o.modelCap = s.str("model-label-cap", "LLMSCOPE_MODEL_LABEL_CAP", "100", "distinct model label values in metrics; more become \"other\"")
	o.shutdown = s.str("shutdown-timeout", "LLMSCOPE_SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for requests in flight")
	o.simTTFT = s.str("sim-ttft", "LLMSCOPE_SIM_TTFT", "0s", "built-in simulator: delay before the first token")
	o.simTPS = s.str("sim-tokens-per-second", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "0", "built-in simulator: streaming pace (0 = no delay)")
	o.simProfile = s.str("sim-profile", "LLMSCOPE_SIM_PROFILE", "auto", "built-in simulator: realistic (per-model TTFT and streaming speed drawn with jitter and a long tail, about 1% 429 and 0.5% 5xx answers) or none (instant, never fails on its own); auto: realistic when serve picked the simulator itself (no OPENAI_API_KEY, no --upstream) and listens on a fixed port, none with --upstream sim or an --addr with port 0 (tests); an explicit --sim-ttft or --sim-tokens-per-second replaces the realistic medians")
	o.logLevel = s.str("log-level", "LLMSCOPE_LOG_LEVEL", "info", "debug, info, warn or error")
	o.logFormat = s.str("log-format", "LLMSCOPE_LOG_FORMAT", "text", "text or json")
	o.sec = newSecureOptions(s)
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
	svc, err := newService(ctx, o, stdout, logger)
	if err != nil {
		return err
	}
	defer svc.closeStore()
	ln, err := net.Listen("tcp", o.addr.val)
	if err != nil {
		svc.stopExports(0)
		return fmt.Errorf("listen: %w", err)
	}
	if svc.limits.maxConns > 0 {
		ln = netutil.LimitListener(ln, svc.limits.maxConns)
	}
	srv := newHTTPServer(svc.handler, logger)
	scheme := "http"
	if svc.tls {
		scheme = "https"
	}
	logger.Info("llmscope serving", "addr", scheme+"://"+ln.Addr().String(), "upstream", upstreamLabel(svc.upstream, svc.useSim),
		"providers", providersLabel(svc.providers), "db", storeLabel(o.db.val), "capture", svc.capture, "settings", strings.Join(o.s.sources(), " "))
	fmt.Fprintf(stdout, "llmscope: listening on %s://%s (set OPENAI_BASE_URL=%s://%s/v1)\n", scheme, ln.Addr(), scheme, ln.Addr())

	errc := make(chan error, 2)
	go func() {
		if svc.tls {
			errc <- srv.ServeTLS(ln, o.sec.tlsCert.val, o.sec.tlsKey.val)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if addr := o.metricsAddr.val; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen --metrics-addr: %w", err)
		}
		msrv := newHTTPServer(svc.metricsHandler, logger)
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
		logger.Info("metrics", "addr", "http://"+mln.Addr().String()+"/metrics")
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight", "timeout", svc.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), svc.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("requests still in flight at the deadline: closing their connections", "err", err)
		_ = srv.Close()
	}
	return svc.drain(logger)
}

// newHTTPServer returns the HTTP server of serve: bounded header size and
// read time, idle connections closed after a while. Bodies have their own
// per-request deadline (the gateway's), since a server-wide read timeout
// would also cut long streamed answers.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
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
	cfg, err := inProcessSimConfig(o, logger)
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
	cfg.Logger = logger.With("component", "sim")
	srv := &http.Server{Handler: sim.New(cfg)}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/v1", func() { _ = srv.Close() }, nil
}

// providersLabel lists the other providers' upstreams for the log:
// "anthropic=https://api.anthropic.com gcp.gemini=sim".
func providersLabel(ps []providerUpstream) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.api.Provider() + "=" + upstreamLabel(p.url, p.sim))
	}
	return b.String()
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
