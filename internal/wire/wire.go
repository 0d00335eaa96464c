// Package wire starts llmscope's exporters from plain settings; the command
// and the SDK share it, so both export the same way.
package wire

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"llmscope"
	"llmscope/mlflow"
	"llmscope/otlp"
	"llmscope/prom"
)

// Export is one running exporter.
type Export struct {
	Name   string
	Loop   *llmscope.ExportLoop
	exp    llmscope.Exporter
	cancel context.CancelFunc
	done   chan struct{}
}

// Config says which exporters to run.
type Config struct {
	MLflowURI                                   string // empty: no MLflow export
	MLflowToken, MLflowUsername, MLflowPassword string
	RunIdle                                     time.Duration
	RollupGrace                                 time.Duration // mlflow.ExporterConfig.RollupGrace
	// OTLPEndpoint is a collector's traces URL; empty: none.
	OTLPEndpoint string
	OTLPHeaders  map[string]string
	Capture      bool // captured text goes into spans
	// Owner names this process to the store's export leases, so that of
	// the gateways sharing a store one exports each exporter's calls (see
	// llmscope.ExportLoop). Empty: ProcessOwner().
	Owner string
	// LeaseTTL is how long an export lease lasts unless renewed; 0: the
	// loop's default (15s).
	LeaseTTL time.Duration
}

// ProcessOwner returns this process's owner id for export leases (host
// name, process id, random hex), the same for every call.
var ProcessOwner = sync.OnceValue(llmscope.NewOwner)

// Start starts the exporters cfg asks for, each in its own loop reading
// store. Stop them with Stop.
func Start(ctx context.Context, cfg Config, store llmscope.Store, m *prom.Metrics, logger *slog.Logger) ([]*Export, error) {
	var exps []llmscope.Exporter
	hc := &http.Client{Timeout: 60 * time.Second}
	capture := cfg.Capture
	if uri := cfg.MLflowURI; uri != "" {
		runIdle := cfg.RunIdle
		client, err := mlflow.NewClient(mlflow.Config{
			TrackingURI: uri, Token: cfg.MLflowToken,
			Username: cfg.MLflowUsername, Password: cfg.MLflowPassword,
			HTTPClient: hc,
		})
		if err != nil {
			return nil, fmt.Errorf("mlflow: %w", err)
		}
		headers := map[string]string{}
		switch {
		case cfg.MLflowToken != "":
			headers["Authorization"] = "Bearer " + cfg.MLflowToken
		case cfg.MLflowUsername != "":
			headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.MLflowUsername+":"+cfg.MLflowPassword))
		}
		host, _ := os.Hostname()
		sh, ok := store.(interface{ Shared() bool })
		exp, err := mlflow.NewExporter(mlflow.ExporterConfig{
			Client:      client,
			Traces:      MLflowTraces{Sender: otlp.NewSender(strings.TrimRight(uri, "/")+"/v1/traces", headers, hc), Options: otlp.Options{Capture: capture, AutologNames: true}},
			Stats:       store,
			Host:        host,
			RunIdle:     runIdle,
			RollupGrace: cfg.RollupGrace,
			// Gateways sharing a store share one rollup run per experiment.
			SharedRollup: ok && sh.Shared(),
			Logger:       logger.With("exporter", "mlflow"),
			OnProblem: func(kind string) {
				m.ExportProblem("mlflow", kind)
			},
		})
		if err != nil {
			return nil, err
		}
		exps = append(exps, exp)
	}
	if endpoint, headers := cfg.OTLPEndpoint, cfg.OTLPHeaders; endpoint != "" {
		exps = append(exps, otlp.NewExporter(otlp.NewSender(endpoint, headers, hc), otlp.Options{Capture: capture},
			logger.With("exporter", "otlp"), func(kind string) { m.ExportProblem("otlp", kind) }))
	}
	owner := cfg.Owner
	if owner == "" {
		owner = ProcessOwner()
	}
	var out []*Export
	for _, exp := range exps {
		name := exp.Name()
		loop := llmscope.NewExportLoop(store, exp, llmscope.ExportConfig{
			Logger:    logger.With("exporter", name),
			OnFailure: func() { m.ExportFailure(name) },
			OnLag:     func(d time.Duration) { m.ExportLag(name, d) },
			OnLeading: func(leading bool) { m.ExportLeading(name, leading) },
			Owner:     owner,
			LeaseTTL:  cfg.LeaseTTL,
		})
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		ex := &Export{Name: name, Loop: loop, exp: exp, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(ex.done); loop.Run(lctx) }()
		logger.Info("exporting", "exporter", name, "owner", owner)
		out = append(out, ex)
	}
	return out, nil
}

// Stop delivers what is left within timeout, then lets each exporter end its
// runs. What cannot be delivered stays in the store for next time.
func Stop(exports []*Export, timeout time.Duration, logger *slog.Logger) {
	for _, ex := range exports {
		ex.cancel()
		<-ex.done
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := ex.Loop.Drain(ctx); err != nil {
			logger.Warn("calls not yet exported stay in the store for the next start", "exporter", ex.Name, "err", err)
		}
		if c, ok := ex.exp.(interface{ Close(context.Context) error }); ok {
			if err := c.Close(ctx); err != nil {
				logger.Warn("closing exporter", "exporter", ex.Name, "err", err)
			}
		}
		cancel()
	}
}

// MLflowTraces sends traces to MLflow's OTLP endpoint with its experiment and
// run headers, translating the sender's errors into the exporter's terms.
type MLflowTraces struct {
	Sender  *otlp.Sender
	Options otlp.Options
}

func (t MLflowTraces) WriteTraces(ctx context.Context, experimentID, runID string, calls []*llmscope.Call) error {
	h := map[string]string{"x-mlflow-experiment-id": experimentID}
	if runID != "" {
		h["x-mlflow-run-id"] = runID
	}
	err := t.Sender.Send(ctx, calls, t.Options, h)
	var he *otlp.HTTPError
	var pe *otlp.PartialError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, otlp.ErrMalformedResponse):
		return fmt.Errorf("%w: %v", mlflow.ErrMalformedResponse, err)
	case errors.As(err, &pe), errors.As(err, &he) && !he.Retryable() && he.Status != 401 && he.Status != 403:
		return permanent{err}
	}
	return err
}

// permanent marks an error the server will give again for the same data.
type permanent struct{ error }

func (p permanent) Permanent() bool { return true }
func (p permanent) Unwrap() error   { return p.error }
