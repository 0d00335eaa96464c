package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmscope"
	"llmscope/auth"
	"llmscope/budget"
	"llmscope/gateway"
	"llmscope/internal/wire"
	"llmscope/openai"
	"llmscope/otlp"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/web"
)

// memoryHeadroom is the heap serve needs besides request bodies (the
// store's queue, metrics, exporters' batches), above which the garbage
// collector works harder.
const memoryHeadroom = 64 << 20

// service is everything serve runs behind its listener: the store and its
// recorder, the gateway, metrics, exporters and the handler that routes to
// them through the guard.
type service struct {
	handler         http.Handler
	metricsHandler  http.Handler // of --metrics-addr, when given
	guard           *auth.Guard
	store           llmscope.Store
	rec             *llmscope.Recorder
	gw              *gateway.Gateway
	metrics         *prom.Metrics
	exports         []*wire.Export
	stopRetention   func() // stops the pruner of --retention, when it runs
	stopBudgets     func() // ends the budget syncs (after a last one), when budgets run
	stopSim         func()
	limits          limits
	upstream        string
	providers       []providerUpstream // the other provider APIs' upstreams
	useSim, capture bool
	tls             bool
	shutdownTimeout time.Duration
	logger          *slog.Logger
}

// newService resolves o and starts everything but the listener. On error
// nothing is left running.
func newService(ctx context.Context, o *serveOptions, stdout io.Writer, logger *slog.Logger) (svc *service, err error) {
	svc = &service{stopSim: func() {}, logger: logger}
	defer func() {
		if err != nil {
			svc.stopExports(0)
			svc.closeStore()
		}
	}()
	apiKey := secret("OPENAI_API_KEY")
	upstream := o.upstream.val
	useSim := upstream == "sim" || upstream == "" && apiKey == ""
	if useSim {
		fmt.Fprintln(stdout, "llmscope: no upstream configured (no OPENAI_API_KEY, no --upstream): answering from the built-in simulator, not a model")
	} else if upstream == "" {
		upstream = defaultUpstream
	}
	providers := resolveProviders(o, useSim)
	capture, err := o.capture.AutoBool(o.mlflowURI.val != "")
	if err != nil {
		return svc, err
	}
	redactBuiltin, err := o.redactBuiltin.Bool()
	if err != nil {
		return svc, err
	}
	redactor, err := llmscope.NewRedactor(redactBuiltin, o.redactPatterns.Lines())
	if err != nil {
		return svc, fmt.Errorf("--redact-pattern: %w", err)
	}
	captureMax, err := o.captureMax.Int()
	if err != nil {
		return svc, err
	}
	maxBody, err := o.maxBody.Int()
	if err != nil {
		return svc, err
	}
	queue, err := o.queue.Int()
	if err != nil {
		return svc, err
	}
	if queue <= 0 {
		return svc, fmt.Errorf("--queue-size: must be positive, got %d", queue)
	}
	if svc.shutdownTimeout, err = o.shutdown.Duration(); err != nil {
		return svc, err
	}
	upstreamTimeout, err := o.upstreamTimeout.Duration()
	if err != nil {
		return svc, err
	}
	injectUsage, err := o.injectUsage.Bool()
	if err != nil {
		return svc, err
	}
	keepBodies, err := o.keepBodies.Bool()
	if err != nil {
		return svc, err
	}
	modelCap, err := o.modelCap.Int()
	if err != nil {
		return svc, err
	}
	commitWait, err := o.commitWait.Duration()
	if err != nil {
		return svc, err
	}
	storeDelay, err := o.storeDelay.Duration()
	if err != nil {
		return svc, err
	}
	leaseTTL, err := o.leaseTTL.Duration()
	if err != nil {
		return svc, err
	}
	if leaseTTL < time.Second {
		return svc, fmt.Errorf("--export-lease-ttl: %v is too short (at least 1s: the lease is renewed every third of it)", leaseTTL)
	}
	runIdle, err := o.runIdle.Duration()
	if err != nil {
		return svc, err
	}
	rollupGrace, err := o.rollupGrace.Duration()
	if err != nil {
		return svc, err
	}
	keep, err := parseRetention(o.retention.val)
	if err != nil {
		return svc, err
	}
	if svc.limits, err = o.sec.limits(); err != nil {
		return svc, err
	}
	svc.tls = o.sec.tlsCert.val != ""
	if os.Getenv("GOMEMLIMIT") == "" {
		// Request bodies are most of what a busy gateway holds: tell the
		// garbage collector to keep the heap near their budget rather than
		// let it double before collecting.
		debug.SetMemoryLimit(svc.limits.maxBuffered + memoryHeadroom)
	}
	guardCfg, err := o.sec.guardConfig(o.addr.val, svc.limits.maxInflight, logger.With("component", "auth"))
	if err != nil {
		return svc, err
	}
	insecure, err := o.sec.insecure.Bool()
	if err != nil {
		return svc, err
	}
	admin, clients := guardCfg.AdminTokenHash != nil, guardCfg.ClientKeys != nil || guardCfg.PassProviderKeys
	serverKey := apiKey != "" && !useSim
	for _, p := range providers {
		serverKey = serverKey || p.key != "" && !p.sim
	}
	prices, err := pricing.LoadAll(updatedPricesPath(), o.prices.val)
	if err != nil {
		return svc, err
	}
	if !useSim && pointsAt(upstream, o.addr.val) {
		return svc, fmt.Errorf("--upstream %s is this gateway's own address: set OPENAI_BASE_URL for your application, and --upstream (or nothing) for llmscope", upstream)
	}
	for _, p := range providers {
		if !p.sim && pointsAt(p.url, o.addr.val) {
			return svc, fmt.Errorf("--%s %s is this gateway's own address: point your application at the gateway, and --%s at the provider", p.flag, p.url, p.flag)
		}
	}
	provider := o.provider.val
	if useSim || anySim(providers) {
		simURL, stopSim, err := startInProcessSim(o, logger)
		if err != nil {
			return svc, err
		}
		svc.stopSim = stopSim
		if useSim {
			upstream = simURL
			if provider == "" {
				provider = "sim"
			}
		}
		for i := range providers {
			if providers[i].sim {
				providers[i].url = strings.TrimSuffix(simURL, "/v1")
			}
		}
	}
	svc.upstream, svc.providers, svc.useSim, svc.capture = upstream, providers, useSim, capture
	upstreams := make([]gateway.ProviderUpstream, 0, len(providers))
	for _, p := range providers {
		upstreams = append(upstreams, gateway.ProviderUpstream{API: p.api, URL: p.url, APIKey: p.key})
	}

	store, err := openStore(ctx, o.db.val)
	if err != nil { // store may be a typed nil: not kept
		if werr := writableDir(o.db.val); werr != nil {
			return svc, fmt.Errorf("store %s does not accept writes: %w (%v)", storeLabel(o.db.val), werr, err)
		}
		return svc, err
	}
	svc.store = store
	if ks, ok := svc.store.(budget.KeyStore); ok { // keys made with `llmscope keys` count as client keys
		if guardCfg.StoredKeys, err = auth.NewStoreKeys(ctx, ks, auth.StoreKeysConfig{Logger: logger.With("component", "keys")}); err != nil {
			return svc, err
		}
		go guardCfg.StoredKeys.Run(ctx)
		clients = clients || guardCfg.StoredKeys.Any()
	}
	if err := checkExposure(o.addr.val, admin, clients, serverKey, insecure); err != nil {
		return svc, err
	}
	switch {
	case loopback(o.addr.val):
	case !admin || !clients && serverKey:
		logger.Warn("serving a non-loopback address without authentication (--insecure): anyone who reaches it can read the recorded calls and use the upstream", "addr", o.addr.val)
	case !clients:
		logger.Warn("/v1 is open to whoever reaches this address: clients use their own provider keys (the gateway holds none); --client-keys would name them", "addr", o.addr.val)
	}
	pruner, canPrune := svc.store.(llmscope.Pruner)
	if keep > 0 && !canPrune {
		return svc, fmt.Errorf("--retention: the store %s cannot delete calls; remove --retention (LLMSCOPE_RETENTION) to keep them all", storeLabel(o.db.val))
	}
	if wc, ok := svc.store.(llmscope.WriteChecker); ok {
		if err := wc.CheckWritable(ctx); err != nil {
			return svc, fmt.Errorf("store %s does not accept writes: %w", storeLabel(o.db.val), err)
		}
	}
	svc.metrics = prom.NewCapped(func() int { return svc.rec.QueueDepth() }, int(modelCap))
	var writer llmscope.Writer = svc.store
	if storeDelay > 0 {
		writer = slowWriter{writer, storeDelay}
	}
	svc.rec = llmscope.NewRecorder(writer, llmscope.RecorderConfig{
		QueueSize:    int(queue),
		BatchWait:    commitWait,
		Logger:       logger.With("component", "recorder"),
		OnDrop:       svc.metrics.Dropped,
		OnWriteError: svc.metrics.StoreWriteError,
	})
	router, err := newRouter(o, svc.metrics, logger)
	if err != nil {
		return svc, err
	}
	var admit gateway.Admitter
	var spends func(context.Context) ([]web.Budget, error)
	if bud, err := newBudgets(ctx, o, svc.store, prices, svc.metrics, logger); err != nil {
		return svc, err
	} else if bud != nil {
		admit, svc.stopBudgets, spends = bud.gate, bud.stop, bud.spends
	}
	svc.gw, err = gateway.New(gateway.Config{
		Admit:                 admit,
		Router:                router,
		Upstream:              upstream,
		Upstreams:             upstreams,
		APIKey:                apiKey,
		PassAuthorization:     guardCfg.PassProviderKeys,
		Provider:              provider,
		Experiment:            o.experiment.val,
		MaxBodyBytes:          maxBody,
		MaxBufferedBytes:      svc.limits.maxBuffered,
		BodyTimeout:           svc.limits.bodyTimeout,
		Capture:               capture,
		CaptureMaxBytes:       int(captureMax),
		Redactor:              redactor,
		DisableUsageInjection: !injectUsage,
		KeepRequestBodies:     keepBodies,
		UpstreamTimeout:       upstreamTimeout,
		Pricer:                prices,
		OnCostUnknown:         costUnknownReporter(svc.metrics, logger),
		Sink:                  llmscope.Sinks{svc.metrics, svc.rec},
		Logger:                logger.With("component", "gateway"),
	})
	if err != nil {
		return svc, err
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmscope_rejected_requests_total",
		Help: "Requests refused before reaching a handler, by reason (host, origin, unauthorized, overloaded, login_throttled).",
	}, []string{"reason"})
	guardCfg.OnReject = func(reason string) { rejected.WithLabelValues(reason).Inc() }
	if svc.guard, err = auth.New(guardCfg); err != nil {
		return svc, err
	}
	if p, ok := svc.store.(interface{ PauseWhile(func() bool) }); ok {
		// With one P, the SQLite writer's batches give way to requests in
		// flight; with more, the writer holds one while others serve.
		p.PauseWhile(func() bool { return runtime.GOMAXPROCS(0) == 1 && svc.guard.Inflight() > 0 })
	}
	svc.metrics.Registry().MustRegister(rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmscope_inflight_requests", Help: "Requests being handled.",
		}, func() float64 { return float64(svc.guard.Inflight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "llmscope_buffered_body_bytes", Help: "Bytes held by request bodies in flight (bounded by --max-buffered-bytes).",
		}, func() float64 { return float64(svc.gw.BufferedBytes()) }))

	health := map[string]web.Health{"store": svc.rec.Health}
	otlpEndpoint, otlpHeaders := otlp.ConfigFromEnv(os.Getenv)
	if o.otlpEndpoint.val != "" {
		otlpEndpoint = o.otlpEndpoint.val
	}
	svc.exports, err = wire.Start(ctx, wire.Config{
		MLflowURI: o.mlflowURI.val, MLflowToken: secret("MLFLOW_TRACKING_TOKEN"),
		MLflowUsername: secret("MLFLOW_TRACKING_USERNAME"), MLflowPassword: secret("MLFLOW_TRACKING_PASSWORD"),
		RunIdle: runIdle, OTLPEndpoint: otlpEndpoint, OTLPHeaders: otlpHeaders, Capture: capture,
		LeaseTTL: leaseTTL, RollupGrace: rollupGrace,
	}, svc.store, svc.metrics, logger)
	if err != nil {
		return svc, err
	}
	for _, ex := range svc.exports {
		health["export_"+ex.Name] = ex.Loop.Health
	}
	if keep > 0 {
		r := newRetention(svc.store, pruner, keep, logger.With("component", "retention"))
		for _, ex := range svc.exports {
			r.exporters = append(r.exporters, ex.Name)
		}
		deleted := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmscope_retention_deleted_calls_total",
			Help: "Calls deleted because they were older than --retention.",
		})
		svc.metrics.Registry().MustRegister(deleted)
		r.onDeleted = func(n int64) { deleted.Add(float64(n)) }
		svc.stopRetention = r.start(ctx)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", svc.gw)
	for _, prefix := range [...]string{"/v1beta/", "/openai/"} {
		mux.Handle(prefix, svc.providerHandler(prefix))
	}
	mux.Handle("GET /metrics", svc.metrics.Handler())
	wh := web.New(svc.store, health, logger.With("component", "web"))
	if sk := guardCfg.StoredKeys; sk != nil { // /api/keys; a change holds on this gateway at once
		wh.MountKeys(sk.Store(), sk.Refresh)
	}
	if spends != nil { // the dashboard's budgets
		wh.MountBudgets(spends)
	}
	mux.Handle("/", wh)
	if o.pprof.val == "true" {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	svc.handler = svc.guard.Wrap(mux)
	if addr := o.metricsAddr.val; addr != "" {
		// The metrics listener has the same guard, with the Host names
		// of its own address.
		if err := checkExposure(addr, admin, true, false, insecure); err != nil {
			return svc, fmt.Errorf("--metrics-addr: %w", err)
		}
		mcfg := guardCfg
		mcfg.AllowedHosts = defaultHosts(splitList(o.sec.allowedHosts.val), addr)
		mguard, err := auth.New(mcfg)
		if err != nil {
			return svc, err
		}
		svc.metricsHandler = mguard.Wrap(svc.metrics.Handler())
	}
	return svc, nil
}

// providerUpstream is the upstream of one provider API besides OpenAI's,
// as serve's flags resolve it.
type providerUpstream struct {
	flag   string // the flag that sets it
	prefix string // the path prefix of its API
	name   string
	api    gateway.API
	url    string // "" when not configured; the simulator's root when sim
	key    string
	sim    bool
}

// resolveProviders reads the --anthropic-upstream, --gemini-upstream and
// --azure-upstream options and their keys (ANTHROPIC_API_KEY;
// GEMINI_API_KEY, else GOOGLE_API_KEY; AZURE_OPENAI_API_KEY). "sim" selects
// the in-process simulator, as does serve's simulator mode (useSim) for a
// provider whose upstream was not given explicitly. Providers without an
// upstream (Azure by default) are left out.
func resolveProviders(o *serveOptions, useSim bool) []providerUpstream {
	gemKey := secret("GEMINI_API_KEY")
	if gemKey == "" {
		gemKey = secret("GOOGLE_API_KEY")
	}
	specs := []struct {
		opt          *option
		prefix, name string
		api, simAPI  gateway.API
		key          string
	}{
		{o.anthropicUpstream, "/v1/messages", "Anthropic", gateway.Anthropic(), gateway.Anthropic(), secret("ANTHROPIC_API_KEY")},
		{o.geminiUpstream, "/v1beta/", "Gemini", gateway.Gemini(), gateway.Gemini(), gemKey},
		{o.azureUpstream, "/openai/", "Azure OpenAI", gateway.Azure(false), gateway.Azure(true), secret("AZURE_OPENAI_API_KEY")},
	}
	var out []providerUpstream
	for _, sp := range specs {
		p := providerUpstream{flag: sp.opt.name, prefix: sp.prefix, name: sp.name, api: sp.api, url: strings.TrimSpace(sp.opt.val), key: sp.key}
		if p.url == "sim" || useSim && sp.opt.from == "default" {
			p.api, p.url, p.key, p.sim = sp.simAPI, "", "", true
		} else if p.url == "" {
			continue
		}
		out = append(out, p)
	}
	return out
}

func anySim(ps []providerUpstream) bool {
	for _, p := range ps {
		if p.sim {
			return true
		}
	}
	return false
}

// providerHandler returns the gateway for a provider's path prefix when
// that provider has an upstream, else a handler answering 404 with an
// error that names the flag to set.
func (svc *service) providerHandler(prefix string) http.Handler {
	for _, p := range svc.providers {
		if p.prefix == prefix {
			return svc.gw
		}
	}
	flag := "--gemini-upstream"
	if prefix == "/openai/" {
		flag = "--azure-upstream"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		openai.WriteError(w, http.StatusNotFound, "invalid_request_error", "no_upstream",
			"no upstream is configured for "+prefix+": set "+flag)
	})
}

// drain waits for the calls of finished requests, flushes the store queue
// and stops the exporters; the HTTP server must have stopped first.
func (svc *service) drain(logger *slog.Logger) error {
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := svc.gw.Wait(wctx); err != nil {
		logger.Error("calls still being finished at exit", "err", err)
	}
	wcancel()
	fctx, fcancel := context.WithTimeout(context.Background(), svc.shutdownTimeout)
	defer fcancel()
	if err := svc.rec.Close(fctx); err != nil {
		svc.stopExports(svc.shutdownTimeout)
		return fmt.Errorf("flush store: %w", err)
	}
	svc.stopExports(svc.shutdownTimeout)
	logger.Info("stopped", "calls_written", svc.rec.Written(), "calls_dropped", svc.rec.Dropped())
	return nil
}

// stopExports stops the exporters (and the in-process simulator) once.
func (svc *service) stopExports(timeout time.Duration) {
	if svc.exports != nil {
		wire.Stop(svc.exports, timeout, svc.logger)
		svc.exports = nil
	}
	if svc.stopSim != nil {
		svc.stopSim()
		svc.stopSim = nil
	}
}

// closeStore closes the store, after the pruner and the recorder when they
// ran.
func (svc *service) closeStore() {
	if svc.stopBudgets != nil {
		svc.stopBudgets() // its last sync commits settled spend to the store
		svc.stopBudgets = nil
	}
	if svc.stopRetention != nil {
		svc.stopRetention()
		svc.stopRetention = nil
	}
	if svc.rec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = svc.rec.Close(ctx)
		cancel()
	}
	if svc.store != nil {
		_ = svc.store.Close() // at exit or after an earlier error, which matters more
		svc.store = nil
	}
}

// slowWriter delays every commit by d (serve --store-delay), to measure the
// request path over a slow disk or a remote database.
type slowWriter struct {
	w llmscope.Writer
	d time.Duration
}

func (s slowWriter) Write(ctx context.Context, calls []*llmscope.Call) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.w.Write(ctx, calls)
}

// parseRetention reads --retention: a Go duration (12h, 90m) or a whole
// number of days with a "d" suffix, optionally followed by a Go duration
// (30d, 1d12h). Empty and zero keep every call: it returns 0. A negative
// duration, one under a minute, or anything else is an error.
func parseRetention(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	d, err := parseDays(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("--retention: %q is not a duration such as 30d, 12h or 0", v)
	case d < 0:
		return 0, fmt.Errorf("--retention: %q is negative: give how long calls are kept, or 0 to keep them all", v)
	case d > 0 && d < time.Minute:
		return 0, fmt.Errorf("--retention: %q is under a minute: calls would be deleted almost as soon as they are written", v)
	}
	return d, nil
}

// parseDays parses a Go duration, or days as in "30d" and "1d12h".
func parseDays(v string) (time.Duration, error) {
	days, rest, ok := strings.Cut(v, "d")
	if !ok {
		return time.ParseDuration(v)
	}
	neg := strings.HasPrefix(days, "-")
	n, err := strconv.ParseUint(strings.TrimPrefix(days, "-"), 10, 64)
	const maxDays = uint64(math.MaxInt64 / int64(24*time.Hour))
	if err != nil || n > maxDays {
		return 0, fmt.Errorf("bad days %q", days)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 || r > math.MaxInt64-d {
			return 0, fmt.Errorf("bad duration after the days %q", rest)
		}
		d += r
	}
	if neg {
		d = -d
	}
	return d, nil
}

// retention deletes, in the background, the calls that started longer ago
// than keep: one round shortly after it starts, then one a minute. A round
// prunes in batches, pausing between them so that the recorder's writes
// interleave, until no call older than keep is left that may go: a call is
// kept until every exporter has delivered it (llmscope.Pruner), and nothing
// is deleted while an exporter of this process has not yet stored a cursor.
type retention struct {
	store     llmscope.Store
	pruner    llmscope.Pruner
	keep      time.Duration
	exporters []string      // names of the exporters this process runs
	onDeleted func(n int64) // called after each round with what it deleted
	logger    *slog.Logger
	first     time.Duration // wait before the first round
	every     time.Duration // wait between rounds
	batch     int           // calls per Prune
	pause     time.Duration // wait between batches

	held, waiting bool // warned that calls are held back, or that an exporter has no cursor
}

func newRetention(store llmscope.Store, pruner llmscope.Pruner, keep time.Duration, logger *slog.Logger) *retention {
	return &retention{store: store, pruner: pruner, keep: keep, logger: logger, onDeleted: func(int64) {},
		first: 3 * time.Second, every: time.Minute, batch: 1000, pause: 10 * time.Millisecond}
}

// start runs the rounds until ctx ends or the returned stop is called; stop
// returns once no round is running.
func (r *retention) start(ctx context.Context) (stop func()) {
	r.logger.Info("calls older than the retention are deleted once every exporter has delivered them", "retention", r.keep)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (r *retention) run(ctx context.Context) {
	t := time.NewTimer(r.first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.round(ctx)
		r.onDeleted(n)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logger.Warn("deleting old calls failed; trying again at the next round", "deleted", n, "err", err)
		case n > 0:
			r.logger.Info("deleted calls older than the retention", "deleted", n, "retention", r.keep)
		}
		t.Reset(r.every)
	}
}

// round deletes every call older than keep that may go, in batches, and
// returns how many it deleted.
func (r *retention) round(ctx context.Context) (int64, error) {
	for _, name := range r.exporters {
		seq, err := r.store.Cursor(ctx, name)
		if err != nil {
			return 0, err
		}
		if seq == 0 {
			if !r.waiting {
				r.logger.Info("no call is deleted before the exporter has delivered its first ones", "exporter", name)
				r.waiting = true
			}
			return 0, nil
		}
	}
	r.waiting = false
	cutoff := time.Now().Add(-r.keep)
	var total int64
	if d, ok := r.pruner.(llmscope.PartitionDropper); ok {
		// Whole partitions first (Postgres: whole days), at no cost per call.
		n, err := d.DropBefore(ctx, cutoff)
		total += n
		if err != nil {
			return total, err
		}
	}
	for {
		n, err := r.pruner.Prune(ctx, cutoff, r.batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(r.batch) {
			break
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(r.pause):
		}
	}
	left, err := r.store.List(ctx, llmscope.Filter{Until: cutoff, Limit: 1, OmitText: true})
	switch {
	case err != nil:
		return total, err
	case len(left) > 0 && !r.held:
		r.logger.Warn("calls older than the retention are kept until every exporter has delivered them: an exporter is behind, or a cursor is left by one no longer in use",
			"oldest_kept", left[0].Start)
		r.held = true
	case len(left) == 0:
		r.held = false
	}
	return total, nil
}
