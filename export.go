package llmscope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Exporter delivers calls to a remote system (MLflow, an OpenTelemetry
// collector).
type Exporter interface {
	// Name names the exporter's cursor in the store and its metric labels.
	Name() string
	// Export delivers calls, given in commit order. Nil means the remote side
	// holds them all (a call it refused for good is the exporter's to log
	// and count); an error means the same calls must come again. Exporting a
	// call twice must not duplicate it remotely.
	Export(ctx context.Context, calls []*Call) error
}

// Idler is an Exporter with housekeeping to do when it is caught up, such as
// ending runs that saw no call for a while. ExportLoop calls Idle after each
// round that found nothing to export.
type Idler interface {
	Idle(ctx context.Context) error
}

// Outbox is the part of a Store an ExportLoop reads.
type Outbox interface {
	After(ctx context.Context, seq int64, limit int) ([]*Call, error)
	Cursor(ctx context.Context, name string) (int64, error)
	SetCursor(ctx context.Context, name string, seq int64) error
}

// ExportConfig configures an ExportLoop. Zero fields take the defaults.
type ExportConfig struct {
	Batch     int           // calls per Export; default 200
	Poll      time.Duration // wait when caught up; default 500ms
	RetryMax  time.Duration // longest backoff after a failure; default 30s
	Logger    *slog.Logger
	OnFailure func()              // called for each failed Export
	OnLag     func(time.Duration) // called after each round with the current lag
}

// ExportLoop feeds an Exporter from the store: it reads the calls after the
// exporter's cursor, exports them, and moves the cursor only after Export
// succeeded. When the remote side is down it backs off and retries the same
// calls; nothing is skipped and nothing is lost.
type ExportLoop struct {
	out Outbox
	exp Exporter
	cfg ExportConfig

	mu      sync.Mutex
	lastErr error
	failing time.Time // when the current run of failures began
	lag     time.Duration
}

// NewExportLoop returns a loop feeding exp from out.
func NewExportLoop(out Outbox, exp Exporter, cfg ExportConfig) *ExportLoop {
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &ExportLoop{out: out, exp: exp, cfg: cfg}
}

// Run exports until ctx ends.
func (l *ExportLoop) Run(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := l.round(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			l.sleep(ctx, wait)
			wait = min(wait*2, l.cfg.RetryMax)
		case err != nil:
		case n == 0:
			wait = 100 * time.Millisecond
			l.sleep(ctx, l.cfg.Poll)
		default:
			wait = 100 * time.Millisecond
		}
	}
}

// Drain exports until everything stored has been delivered or ctx ends.
func (l *ExportLoop) Drain(ctx context.Context) error {
	for {
		n, err := l.round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("drain %s: %w", l.exp.Name(), err)
			}
			l.sleep(ctx, 200*time.Millisecond)
			continue
		}
		if n == 0 {
			return nil
		}
	}
}

// round exports one batch and returns how many calls it delivered.
func (l *ExportLoop) round(ctx context.Context) (int, error) {
	name := l.exp.Name()
	cursor, err := l.out.Cursor(ctx, name)
	if err != nil {
		return 0, l.fail(fmt.Errorf("read cursor: %w", err))
	}
	calls, err := l.out.After(ctx, cursor, l.cfg.Batch)
	if err != nil {
		return 0, l.fail(fmt.Errorf("read calls after %d: %w", cursor, err))
	}
	if len(calls) == 0 {
		l.setLag(0)
		if idler, ok := l.exp.(Idler); ok {
			if err := idler.Idle(ctx); err != nil {
				return 0, l.fail(fmt.Errorf("idle: %w", err))
			}
		}
		l.ok()
		return 0, nil
	}
	l.setLag(time.Since(calls[0].Start.Add(time.Duration(calls[0].DurationMS * float64(time.Millisecond)))))
	if err := l.exp.Export(ctx, calls); err != nil {
		return 0, l.fail(err)
	}
	if err := l.out.SetCursor(ctx, name, calls[len(calls)-1].Seq); err != nil {
		// The calls were delivered; the next round sends them again, which
		// the exporter's idempotence absorbs.
		return 0, l.fail(fmt.Errorf("save cursor: %w", err))
	}
	l.ok()
	return len(calls), nil
}

func (l *ExportLoop) fail(err error) error {
	l.mu.Lock()
	first := l.lastErr == nil
	l.lastErr = err
	if first {
		l.failing = time.Now()
	}
	l.mu.Unlock()
	if l.cfg.OnFailure != nil {
		l.cfg.OnFailure()
	}
	if first {
		l.cfg.Logger.Error("export failed; retrying with backoff, calls stay in the store", "exporter", l.exp.Name(), "err", err)
	} else {
		l.cfg.Logger.Debug("export still failing", "exporter", l.exp.Name(), "err", err)
	}
	return err
}

func (l *ExportLoop) ok() {
	l.mu.Lock()
	recovered := l.lastErr != nil
	since := l.failing
	l.lastErr = nil
	l.mu.Unlock()
	if recovered {
		l.cfg.Logger.Info("export recovered", "exporter", l.exp.Name(), "after", time.Since(since).Round(time.Millisecond))
	}
}

func (l *ExportLoop) setLag(d time.Duration) {
	l.mu.Lock()
	l.lag = max(d, 0)
	l.mu.Unlock()
	if l.cfg.OnLag != nil {
		l.cfg.OnLag(max(d, 0))
	}
}

// Lag returns how long the oldest call not yet delivered has been waiting
// (0 when caught up), as of the last round.
func (l *ExportLoop) Lag() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lag
}

// Health returns nil while exports succeed, else the last error and since
// when it has been failing.
func (l *ExportLoop) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr == nil {
		return nil
	}
	return fmt.Errorf("failing for %s: %w", time.Since(l.failing).Round(time.Second), l.lastErr)
}

func (l *ExportLoop) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ErrRefused marks a call a remote system refused for good; exporters wrap it
// when they report such calls.
var ErrRefused = errors.New("refused")
