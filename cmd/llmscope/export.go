package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"llmscope"
	"llmscope/mlflow"
	"llmscope/otlp"
	"llmscope/prom"
)

// export is one running exporter.
type export struct {
	name   string
	loop   *llmscope.ExportLoop
	exp    llmscope.Exporter
	cancel context.CancelFunc
	done   chan struct{}
}

// startExports starts the exporters the options ask for: MLflow, and an
// OpenTelemetry collector.
func startExports(ctx context.Context, o *serveOptions, store llmscope.Store, m *prom.Metrics, capture bool, logger *slog.Logger) ([]*export, error) {
	var exps []llmscope.Exporter
	hc := &http.Client{Timeout: 60 * time.Second}
	if uri := o.mlflowURI.val; uri != "" {
		runIdle, err := o.runIdle.Duration()
		if err != nil {
			return nil, err
		}
		client, err := mlflow.NewClient(mlflow.Config{
			TrackingURI: uri, Token: secret("MLFLOW_TRACKING_TOKEN"),
			Username: secret("MLFLOW_TRACKING_USERNAME"), Password: secret("MLFLOW_TRACKING_PASSWORD"),
			HTTPClient: hc,
		})
		if err != nil {
			return nil, fmt.Errorf("--mlflow: %w", err)
		}
		headers := map[string]string{}
		if tok := secret("MLFLOW_TRACKING_TOKEN"); tok != "" {
			headers["Authorization"] = "Bearer " + tok
		}
		host, _ := os.Hostname()
		exp, err := mlflow.NewExporter(mlflow.ExporterConfig{
			Client:  client,
			Traces:  mlflowTraces{otlp.NewSender(strings.TrimRight(uri, "/")+"/v1/traces", headers, hc), otlp.Options{Capture: capture}},
			Stats:   store,
			Host:    host,
			RunIdle: runIdle,
			Logger:  logger.With("exporter", "mlflow"),
			OnProblem: func(kind string) {
				m.ExportProblem("mlflow", kind)
			},
		})
		if err != nil {
			return nil, err
		}
		exps = append(exps, exp)
	}
	endpoint, headers := otlp.ConfigFromEnv(os.Getenv)
	if o.otlpEndpoint.val != "" {
		endpoint = o.otlpEndpoint.val
	}
	if endpoint != "" {
		exps = append(exps, otlp.NewExporter(otlp.NewSender(endpoint, headers, hc), otlp.Options{Capture: capture},
			logger.With("exporter", "otlp"), func(kind string) { m.ExportProblem("otlp", kind) }))
	}
	var out []*export
	for _, exp := range exps {
		name := exp.Name()
		loop := llmscope.NewExportLoop(store, exp, llmscope.ExportConfig{
			Logger:    logger.With("exporter", name),
			OnFailure: func() { m.ExportFailure(name) },
			OnLag:     func(d time.Duration) { m.ExportLag(name, d) },
		})
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		ex := &export{name: name, loop: loop, exp: exp, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(ex.done); loop.Run(lctx) }()
		logger.Info("exporting", "exporter", name)
		out = append(out, ex)
	}
	return out, nil
}

// stopExports delivers what is left within timeout, then lets each exporter
// end its runs. What cannot be delivered stays in the store for next time.
func stopExports(exports []*export, timeout time.Duration, logger *slog.Logger) {
	for _, ex := range exports {
		ex.cancel()
		<-ex.done
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := ex.loop.Drain(ctx); err != nil {
			logger.Warn("calls not yet exported stay in the store for the next start", "exporter", ex.name, "err", err)
		}
		if c, ok := ex.exp.(interface{ Close(context.Context) error }); ok {
			if err := c.Close(ctx); err != nil {
				logger.Warn("closing exporter", "exporter", ex.name, "err", err)
			}
		}
		cancel()
	}
}

// mlflowTraces sends traces to MLflow's OTLP endpoint with its experiment and
// run headers, translating the sender's errors into the exporter's terms.
type mlflowTraces struct {
	s    *otlp.Sender
	opts otlp.Options
}

func (t mlflowTraces) WriteTraces(ctx context.Context, experimentID, runID string, calls []*llmscope.Call) error {
	h := map[string]string{"x-mlflow-experiment-id": experimentID}
	if runID != "" {
		h["x-mlflow-run-id"] = runID
	}
	err := t.s.Send(ctx, calls, t.opts, h)
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
