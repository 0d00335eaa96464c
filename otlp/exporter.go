package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"llmscope"
)

// Exporter sends every call as a span to an OpenTelemetry collector.
type Exporter struct {
	s         *Sender
	opts      Options
	log       *slog.Logger
	onProblem func(kind string)
}

var _ llmscope.Exporter = (*Exporter)(nil)

// NewExporter returns an Exporter sending through s. onProblem counts refused
// spans ("span_refused") and unreadable answers ("malformed_response").
func NewExporter(s *Sender, opts Options, logger *slog.Logger, onProblem func(kind string)) *Exporter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if onProblem == nil {
		onProblem = func(string) {}
	}
	return &Exporter{s: s, opts: opts, log: logger, onProblem: onProblem}
}

// Name names the exporter's cursor.
func (e *Exporter) Name() string { return "otlp" }

// Export sends calls. Refused spans are logged, counted and skipped; an
// unreadable answer counts as accepted; anything else is returned, so the
// loop retries.
func (e *Exporter) Export(ctx context.Context, calls []*llmscope.Call) error {
	err := e.s.Send(ctx, calls, e.opts, nil)
	var pe *PartialError
	var he *HTTPError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrMalformedResponse):
		e.log.Warn("collector answered with a malformed body; treating the spans as accepted", "calls", len(calls), "err", err)
		e.onProblem("malformed_response")
		return nil
	case errors.As(err, &pe):
		e.log.Error("collector refused spans", "rejected", pe.Rejected, "message", pe.Message)
		e.onProblem("span_refused")
		return nil
	case errors.As(err, &he) && !he.Retryable() && he.Status != 401 && he.Status != 403:
		if len(calls) > 1 { // find the refused ones, deliver the rest
			for _, c := range calls {
				if err := e.Export(ctx, []*llmscope.Call{c}); err != nil {
					return err
				}
			}
			return nil
		}
		e.log.Error("collector refused a span: skipped", "call_id", calls[0].ID, "err", err)
		e.onProblem("span_refused")
		return nil
	}
	return fmt.Errorf("otlp export: %w", err)
}
