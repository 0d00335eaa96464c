// Package sdk records the LLM calls of a Go program without a gateway: wrap
// the http.Client of openai-go (or any OpenAI-style client) with a
// Recorder's Transport and every call is measured, stored and exported
// exactly as `llmscope serve` does it.
//
//	rec, err := sdk.New(ctx, sdk.Config{DB: "llmscope.db"})
//	...
//	defer rec.Close(ctx)
//	client := openai.NewClient(option.WithHTTPClient(rec.HTTPClient()))
package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmscope"
	"llmscope/internal/wire"
	"llmscope/openai"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/sqlite"
)

// Config configures a Recorder like `llmscope serve` is configured.
type Config struct {
	// Store keeps the calls; when nil, a SQLite store is opened at DB
	// (default "llmscope.db") and closed by Close.
	Store llmscope.Store
	DB    string
	// Experiment is the experiment of calls whose context names none
	// (default "llmscope").
	Experiment string
	// Provider names the upstream in records (default "openai").
	Provider string
	// PricesFile holds price overrides merged over the built-in table.
	PricesFile string
	// UpdatedPricesFile is a table fetched by `llmscope prices update`
	// (pricing.DefaultUpdatedPath), merged over the built-in one and under
	// PricesFile; "" uses the built-in table alone. A missing file is no
	// error.
	UpdatedPricesFile string
	// Capture stores request input and response text (each cut to
	// CaptureMaxBytes, default 64 KiB).
	Capture         bool
	CaptureMaxBytes int
	// Redactor rewrites secrets and personal data in captured text and
	// upstream error messages before any sink sees them (nil: none).
	Redactor *llmscope.Redactor
	// DisableUsageInjection stops asking streaming requests for usage.
	DisableUsageInjection bool
	// Registerer, when set, gets llmscope's Prometheus collectors.
	Registerer prometheus.Registerer
	// Export settings: MLflow and an OpenTelemetry collector.
	MLflowURI                                   string
	MLflowToken, MLflowUsername, MLflowPassword string
	OTLPEndpoint                                string
	OTLPHeaders                                 map[string]string
	RunIdle                                     time.Duration
	QueueSize                                   int
	Logger                                      *slog.Logger
	// OnCall, when set, sees every finished call (before it is stored).
	OnCall func(*llmscope.Call)
}

// Recorder records the calls that go through its transports.
type Recorder struct {
	own       *http.Transport // the default transport, closed by Close
	cfg       Config
	store     llmscope.Store
	ownsStore bool
	rec       *llmscope.Recorder
	fin       *openai.Finisher
	exports   []*wire.Export
	log       *slog.Logger
	client    *http.Client
	// unregister removes llmscope's collectors from the caller's registry.
	unregister func()
}

// New starts a Recorder. Close must be called to flush it.
func New(ctx context.Context, cfg Config) (*Recorder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Experiment == "" {
		cfg.Experiment = "llmscope"
	}
	if cfg.Provider == "" {
		cfg.Provider = "openai"
	}
	if cfg.CaptureMaxBytes <= 0 {
		cfg.CaptureMaxBytes = 64 << 10
	}
	if cfg.RunIdle <= 0 {
		cfg.RunIdle = 5 * time.Minute
	}
	r := &Recorder{cfg: cfg, store: cfg.Store, log: cfg.Logger}
	r.own = http.DefaultTransport.(*http.Transport).Clone()
	r.own.DisableCompression = true
	if r.store == nil {
		db := cfg.DB
		if db == "" {
			db = "llmscope.db"
		}
		s, err := sqlite.Open(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		r.store, r.ownsStore = s, true
	}
	prices, err := pricing.LoadAll(cfg.UpdatedPricesFile, cfg.PricesFile)
	if err != nil {
		r.closeStore()
		return nil, fmt.Errorf("sdk: %w", err)
	}
	var metrics *prom.Metrics
	var dropped func(string)
	r.rec = llmscope.NewRecorder(r.store, llmscope.RecorderConfig{QueueSize: cfg.QueueSize, Logger: r.log,
		OnDrop: func(reason string) { dropped(reason) }})
	depth := r.rec.QueueDepth
	if cfg.Registerer != nil {
		if metrics, err = prom.Register(cfg.Registerer, depth, prom.DefaultModelCap); err != nil {
			_ = r.rec.Close(ctx)
			r.closeStore()
			return nil, fmt.Errorf("sdk: %w", err)
		}
		r.unregister = func() { metrics.Unregister(cfg.Registerer) }
	} else {
		metrics = prom.New(depth)
	}
	dropped = metrics.Dropped
	sinks := llmscope.Sinks{metrics, r.rec}
	if cfg.OnCall != nil {
		sinks = append(llmscope.Sinks{llmscope.SinkFunc(cfg.OnCall)}, sinks...)
	}
	r.fin = &openai.Finisher{
		Sink: sinks, Pricer: prices, OnCostUnknown: func(string) { metrics.CostUnknown() },
		Capture: cfg.Capture, CaptureMax: cfg.CaptureMaxBytes, Redactor: cfg.Redactor,
	}
	r.exports, err = wire.Start(ctx, wire.Config{
		MLflowURI: cfg.MLflowURI, MLflowToken: cfg.MLflowToken, MLflowUsername: cfg.MLflowUsername, MLflowPassword: cfg.MLflowPassword,
		RunIdle: cfg.RunIdle, OTLPEndpoint: cfg.OTLPEndpoint, OTLPHeaders: cfg.OTLPHeaders, Capture: cfg.Capture,
	}, r.store, metrics, r.log)
	if err != nil {
		_ = r.rec.Close(ctx)
		r.closeStore()
		if r.unregister != nil {
			r.unregister()
		}
		return nil, fmt.Errorf("sdk: %w", err)
	}
	r.client = &http.Client{Transport: r.Transport(nil)}
	return r, nil
}

// Transport returns an http.RoundTripper that records every OpenAI-style
// call it carries and sends requests on through base (nil: a default
// transport without transparent compression).
func (r *Recorder) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = r.own
	}
	return &transport{base: base, r: r}
}

// HTTPClient returns an *http.Client whose transport records calls.
func (r *Recorder) HTTPClient() *http.Client { return r.client }

// Flush waits until every call finished so far has been recorded (usage
// estimates included).
func (r *Recorder) Flush(ctx context.Context) error { return r.fin.Wait(ctx) }

// Close waits for calls still being finished, commits every recorded call,
// exports what it can within ctx, ends named runs, and closes the store it
// opened. Calls not exported in time stay in the store for the next start.
func (r *Recorder) Close(ctx context.Context) error {
	var errs []error
	errs = append(errs, r.fin.Wait(ctx), r.rec.Close(ctx))
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	wire.Stop(r.exports, timeout, r.log)
	errs = append(errs, r.closeStore())
	r.own.CloseIdleConnections()
	if r.unregister != nil {
		r.unregister()
	}
	return errors.Join(errs...)
}

func (r *Recorder) closeStore() error {
	if r.ownsStore {
		return r.store.Close()
	}
	return nil
}
