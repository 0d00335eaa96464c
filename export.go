package llmscope

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	// OnLeading is called with true when this process takes the export
	// lease (it exports from then on) and with false when it gives it up
	// or finds another process holding it.
	OnLeading func(leading bool)
	// Owner names this process to the store's leases when the Outbox is a
	// Leaser; processes sharing a store must use different owners. Empty:
	// a new one from NewOwner.
	Owner string
	// LeaseTTL is how long the export lease lasts unless renewed; the
	// holder renews it every LeaseTTL/3 and others try to take it as often.
	// Default 15s.
	LeaseTTL time.Duration
}

// NewOwner returns an owner id unique to this process and call: the host
// name, the process id and random hex, e.g. "gw1-4242-9f1c2b7a".
func NewOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// LeaseName returns the name of the lease an ExportLoop holds while it
// exports for the exporter named exporter.
func LeaseName(exporter string) string { return "export:" + exporter }

// ExportLoop feeds an Exporter from the store: it reads the calls after the
// exporter's cursor, exports them, and moves the cursor only after Export
// succeeded. When the remote side is down it backs off and retries the same
// calls; nothing is skipped and nothing is lost.
//
// When the Outbox is also a Leaser (a store several gateways share), only
// the loop holding the lease LeaseName(exporter name) exports: it renews the
// lease every LeaseTTL/3 and moves the cursor with SetCursorLeased, while
// the loops of the other processes follow, trying to take the lease every
// LeaseTTL/3. A holder that dies stops renewing, and another process takes
// over within LeaseTTL plus LeaseTTL/3. A holder that lost its lease
// (paused, partitioned) cannot move the cursor, and stops exporting at its
// next renewal or cursor write. Delivery stays at least once: at a takeover
// the batch the former holder was exporting may be delivered twice (at most
// that one batch, Batch calls, per takeover), which the exporters'
// idempotence absorbs. Run and Drain release the lease when they end, so
// another process takes over at once after a clean stop.
type ExportLoop struct {
	out    Outbox
	exp    Exporter
	cfg    ExportConfig
	leaser Leaser // nil: the Outbox is not a Leaser; the loop always exports
	lease  string

	mu       sync.Mutex
	lastErr  error
	failing  time.Time // when the current run of failures began
	lag      time.Duration
	leading  bool // holds the lease
	followed bool // has said it follows since it last held the lease
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
	if cfg.Owner == "" {
		cfg.Owner = NewOwner()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	l := &ExportLoop{out: out, exp: exp, cfg: cfg, lease: LeaseName(exp.Name())}
	if leaser, ok := out.(Leaser); ok {
		l.leaser = leaser
	}
	return l
}

// Run exports until ctx ends; with a Leaser, only while it holds the lease
// (see ExportLoop), which it releases when ctx ends.
func (l *ExportLoop) Run(ctx context.Context) {
	if l.leaser == nil {
		l.export(ctx)
		return
	}
	defer l.release()
	for ctx.Err() == nil {
		asked := time.Now()
		if !l.acquire(ctx) {
			l.sleep(ctx, l.cfg.LeaseTTL/3)
			continue
		}
		l.lead(ctx, asked)
	}
}

// Leading reports whether the loop holds its export lease, so that it is
// the one exporting; a loop whose Outbox is not a Leaser always leads.
func (l *ExportLoop) Leading() bool {
	if l.leaser == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leading
}

// lead exports while the lease, granted after asked, is held: a renewer
// renews it every ttl/3 and ends the exports when it is lost.
func (l *ExportLoop) lead(ctx context.Context, asked time.Time) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { l.renew(lctx, asked, cancel) })
	l.export(lctx)
	cancel()
	wg.Wait()
}

// renew renews the lease every ttl/3 until ctx ends. It calls lost when the
// store says another owner holds the lease, or when no renewal succeeded
// for a whole ttl since last (the lease has expired by then: it was granted
// after last).
func (l *ExportLoop) renew(ctx context.Context, last time.Time, lost context.CancelFunc) {
	ttl := l.cfg.LeaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		held, err := l.leaser.Lease(ctx, l.lease, l.cfg.Owner, ttl)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && held:
			last = sent
			continue
		case err == nil:
			l.follows("another process took the lease over")
		case time.Since(last) < ttl:
			l.cfg.Logger.Debug("renewing the export lease failed; retrying", "exporter", l.exp.Name(), "err", err)
			continue
		default:
			l.follows(fmt.Sprintf("could not renew the lease for %s: %v", ttl, err))
		}
		lost()
		return
	}
}

// acquire asks for the lease and reports whether the loop holds it.
func (l *ExportLoop) acquire(ctx context.Context) bool {
	held, err := l.leaser.Lease(ctx, l.lease, l.cfg.Owner, l.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(fmt.Errorf("lease %s: %w", l.lease, err))
		}
		return false
	}
	if held {
		l.leads()
	} else {
		l.ok()
		l.follows("another process holds the lease")
	}
	return held
}

// release gives the lease up when the loop holds it.
func (l *ExportLoop) release() {
	if !l.Leading() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.mu.Lock()
	l.leading, l.followed = false, true
	l.mu.Unlock()
	l.onLeading(false)
	if err := l.leaser.Release(ctx, l.lease, l.cfg.Owner); err != nil {
		l.cfg.Logger.Warn("releasing the export lease failed; it expires by itself", "exporter", l.exp.Name(), "err", err)
		return
	}
	l.cfg.Logger.Info("export lease released", "exporter", l.exp.Name(), "lease", l.lease, "owner", l.cfg.Owner)
}

func (l *ExportLoop) onLeading(leading bool) {
	if l.cfg.OnLeading != nil {
		l.cfg.OnLeading(leading)
	}
}

// leads records that the loop holds the lease, logging the change.
func (l *ExportLoop) leads() {
	l.mu.Lock()
	was := l.leading
	l.leading, l.followed = true, false
	l.mu.Unlock()
	if !was {
		l.onLeading(true)
		l.cfg.Logger.Info("export lease acquired; this process exports", "exporter", l.exp.Name(), "lease", l.lease, "owner", l.cfg.Owner)
	}
}

// follows records that the loop does not hold the lease, saying so when it
// held it before or has not said so yet.
func (l *ExportLoop) follows(why string) {
	l.mu.Lock()
	was, followed := l.leading, l.followed
	l.leading, l.followed = false, true
	l.mu.Unlock()
	if was || !followed {
		l.setLag(0) // another process delivers the calls
		l.onLeading(false)
		l.cfg.Logger.Info("export lease not held; another process exports, this one follows", "exporter", l.exp.Name(),
			"lease", l.lease, "owner", l.cfg.Owner, "reason", why)
	}
}

// export runs rounds until ctx ends, or until the lease is found lost.
func (l *ExportLoop) export(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := l.round(ctx)
		switch {
		case errors.Is(err, ErrLeaseLost):
			l.follows("the cursor write was fenced off: " + err.Error())
			return
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
// With a Leaser it drains only when it holds or can take the lease (another
// process holding it delivers the calls: Drain returns nil at once), renews
// it while draining, and releases it at the end.
func (l *ExportLoop) Drain(ctx context.Context) error {
	if l.leaser == nil {
		return l.drain(ctx, func() bool { return true })
	}
	held, err := l.leaser.Lease(ctx, l.lease, l.cfg.Owner, l.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("drain %s: %w", l.exp.Name(), err)
	}
	if !held {
		l.follows("another process holds the lease")
		return nil
	}
	l.leads()
	defer l.release()
	renewed := time.Now()
	return l.drain(ctx, func() bool {
		if ctx.Err() != nil || time.Since(renewed) < l.cfg.LeaseTTL/3 {
			return true // a round reports the end of ctx
		}
		renewed = time.Now()
		return l.acquire(ctx)
	})
}

// drain runs rounds until one finds nothing to export, ctx ends, or hold
// reports the lease lost (then it returns nil: its new holder delivers).
func (l *ExportLoop) drain(ctx context.Context, hold func() bool) error {
	for {
		if !hold() {
			return nil
		}
		n, err := l.round(ctx)
		if errors.Is(err, ErrLeaseLost) {
			l.follows("the cursor write was fenced off: " + err.Error())
			return nil
		}
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
		return 0, l.failUnlessDone(ctx, fmt.Errorf("read cursor: %w", err))
	}
	calls, err := l.out.After(ctx, cursor, l.cfg.Batch)
	if err != nil {
		return 0, l.failUnlessDone(ctx, fmt.Errorf("read calls after %d: %w", cursor, err))
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
		return 0, l.failUnlessDone(ctx, err)
	}
	if l.leaser != nil {
		err = l.leaser.SetCursorLeased(ctx, l.lease, l.cfg.Owner, name, calls[len(calls)-1].Seq)
		if errors.Is(err, ErrLeaseLost) {
			// Whoever holds the lease now reads the cursor as it was and
			// delivers these calls again: the one batch a takeover repeats.
			return 0, err
		}
	} else {
		err = l.out.SetCursor(ctx, name, calls[len(calls)-1].Seq)
	}
	if err != nil {
		// The calls were delivered; the next round sends them again, which
		// the exporter's idempotence absorbs.
		return 0, l.fail(fmt.Errorf("save cursor: %w", err))
	}
	l.ok()
	return len(calls), nil
}

// failUnlessDone is fail, except that an error of a round cut short by the
// end of ctx (a stop, a lost lease) is returned without counting it.
func (l *ExportLoop) failUnlessDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return l.fail(err)
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
