package llmscope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RecorderConfig configures a Recorder. Zero fields take the defaults.
//
// BatchBytes bounds the captured text (Input, Output, Tools, ToolCalls) of
// a transaction: a batch ends with the call that reaches it, and the next
// starts at once. A store's commit writes its batch in one go, so this
// bounds how long the writer runs without a pause when calls carry long
// prompts.
type RecorderConfig struct {
	QueueSize   int           // calls waiting for the store; default 10000
	BatchSize   int           // calls per transaction at most; default 256
	BatchBytes  int           // captured text per transaction at most (see above); default 1 MiB
	BatchWait   time.Duration // how long a partial batch waits for more; default 5ms
	RetryMax    time.Duration // longest pause between retries of a failed write; default 5s
	Logger      *slog.Logger  // default: discard
	OnDrop      func(reason string)
	OnQueueSize func(depth int) // called after each batch with the queue depth
	// OnWriteError is called for each failed write attempt with the
	// error's reason (WriteErrorReason).
	OnWriteError func(reason string)
}

// Recorder hands calls from the request path to a Store without blocking:
// Record puts a call on a bounded queue and one writer goroutine commits
// batches (group commit). A failed write is retried with backoff while the
// queue fills; a call that finds the queue full is dropped, counted and logged.
// A call the store can never accept is dropped alone (see write).
type Recorder struct {
	store   Writer
	cfg     RecorderConfig
	queue   chan *Call
	full    chan struct{} // a full batch is waiting in queue
	closing chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // guards closed against Record
	closed  bool

	dropped     atomic.Int64
	written     atomic.Int64
	queuedBytes atomic.Int64                 // textBytes of the calls queued and of the one the writer holds while it waits
	health      atomic.Pointer[writeFailure] // nil after a successful write
}

// Drop reasons passed to RecorderConfig.OnDrop.
const (
	DropQueueFull  = "queue_full"
	DropClosed     = "closed"
	DropStoreError = "store_error" // the store refused the call itself
)

// Writer is the part of a Store the Recorder needs.
type Writer interface {
	Write(ctx context.Context, calls []*Call) error
}

// NewRecorder starts a Recorder writing to store. Close must be called to
// flush it.
func NewRecorder(store Writer, cfg RecorderConfig) *Recorder {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		store:   store,
		cfg:     cfg,
		queue:   make(chan *Call, cfg.QueueSize),
		full:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.run()
	return r
}

var _ Sink = (*Recorder)(nil)

// Record queues c for the store. It never blocks; when the queue is full or
// the recorder is closed the call is dropped and counted.
func (r *Recorder) Record(c *Call) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.drop(c, DropClosed)
		return
	}
	// The bytes count before the send, so that a writer that receives c at
	// once never sees them missing.
	n := int64(c.textBytes())
	var queued int64
	if n > 0 {
		queued = r.queuedBytes.Add(n)
	}
	select {
	case r.queue <- c:
		// The writer lets a batch gather in the queue rather than taking
		// calls one by one (which would wake it for each): say when a
		// full batch is waiting.
		if len(r.queue) >= r.cfg.BatchSize-1 || queued >= int64(r.cfg.BatchBytes) {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
	default:
		if n > 0 {
			r.queuedBytes.Add(-n)
		}
		r.drop(c, DropQueueFull)
	}
}

func (r *Recorder) drop(c *Call, reason string) {
	n := r.dropped.Add(1)
	if r.cfg.OnDrop != nil {
		r.cfg.OnDrop(reason)
	}
	// Log the first drop and then every 1000th, so overload does not flood the log.
	if n == 1 || n%1000 == 0 {
		r.cfg.Logger.Warn("call dropped", "reason", reason, "call_id", c.ID, "dropped_total", n)
	}
}

// Dropped returns how many calls were dropped since the recorder started.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Written returns how many calls were committed to the store.
func (r *Recorder) Written() int64 { return r.written.Load() }

// QueueDepth returns the number of calls waiting for the store.
func (r *Recorder) QueueDepth() int { return len(r.queue) }

// QueueCapacity returns the queue's size.
func (r *Recorder) QueueCapacity() int { return cap(r.queue) }

// Close stops accepting calls and waits until every queued call is committed
// or ctx ends; in the latter case it returns ctx's error and the calls still
// queued are lost (and logged as such).
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.closing)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		if n := len(r.queue); n > 0 {
			r.cfg.Logger.Error("recorder closed before flushing", "lost", n)
		}
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]*Call, 0, r.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	more := false // the last batch ended at BatchBytes with calls left
	for {
		batch = batch[:0]
		select {
		case c := <-r.queue:
			batch = append(batch, c)
		case <-r.closing:
			// Drain what is left; Record no longer adds to the queue.
			for len(r.queue) > 0 {
				r.write(r.fill(batch[:0]), true)
			}
			return
		}
		// Group commit: let more calls queue up until a batch is full (by
		// count or by bytes) or BatchWait passes, then take them. Record
		// does not wake this goroutine for each call meanwhile, only when a
		// batch is full. queuedBytes still counts batch[0].
		need := r.cfg.BatchSize - 1
		full := func() bool {
			return len(r.queue) >= need || r.queuedBytes.Load() >= int64(r.cfg.BatchBytes)
		}
		if !more && !full() {
			select {
			case <-r.full: // left from an earlier batch
			default:
			}
			if !full() {
				timer.Reset(r.cfg.BatchWait)
				select {
				case <-timer.C:
				case <-r.full:
				case <-r.closing:
				}
				timer.Stop()
			}
		}
		r.took(batch[0])
		batch = r.fill(batch)
		more = len(r.queue) > 0 && r.textBytes(batch) >= r.cfg.BatchBytes
		r.write(batch, false)
		if r.cfg.OnQueueSize != nil {
			r.cfg.OnQueueSize(len(r.queue))
		}
	}
}

// fill appends queued calls to batch until it holds BatchSize calls or
// BatchBytes of captured text (ending with the call that reaches it), or
// the queue is empty. Only the writer goroutine receives from the queue.
func (r *Recorder) fill(batch []*Call) []*Call {
	size := r.textBytes(batch)
	for len(batch) < r.cfg.BatchSize && len(r.queue) > 0 && size < r.cfg.BatchBytes {
		c := r.took(<-r.queue)
		batch = append(batch, c)
		size += c.textBytes()
	}
	return batch
}

func (r *Recorder) textBytes(batch []*Call) int {
	n := 0
	for _, c := range batch {
		n += c.textBytes()
	}
	return n
}

// took accounts for c leaving the queue and returns it.
func (r *Recorder) took(c *Call) *Call {
	if n := c.textBytes(); n > 0 {
		r.queuedBytes.Add(-int64(n))
	}
	return c
}

// textBytes is the size of the captured text c carries.
func (c *Call) textBytes() int {
	if c == nil {
		return 0
	}
	return len(c.Input) + len(c.Output) + len(c.Tools) + len(c.ToolCalls)
}

// write commits batch, retrying with backoff until it succeeds: while the
// store is down (every call refused, or a WriteError saying so) nothing is
// lost, the queue just fills. A call the store names as one it cannot store
// (WriteInvalidCall) is sanitized and retried at once, and dropped as
// DropStoreError if it is refused again; the rest of the batch is written.
// A batch that keeps failing for an unclassified reason is topped up from
// the queue and split, so that a call refused while the store accepts the
// calls around it is found even when it was alone, and dropped after a few
// more tries. While closing, retries are bounded so that shutdown ends.
func (r *Recorder) write(batch []*Call, closing bool) {
	wait := 10 * time.Millisecond
	var refused map[*Call]bool // calls sanitized after the store refused them
	for attempt := 1; ; attempt++ {
		err := r.commit(batch)
		if err == nil {
			return
		}
		reason := WriteErrorReason(err)
		r.cfg.Logger.Error("store write failed", "calls", len(batch), "attempt", attempt, "reason", reason, "err", err)
		if i := invalidCall(batch, err); i >= 0 {
			c := batch[i]
			if !refused[c] {
				if refused == nil {
					refused = make(map[*Call]bool)
				}
				refused[c] = true
				r.sanitizeRefused(c)
				continue // at once: nothing to wait for
			}
			r.cfg.Logger.Error("store refuses call: dropped", "call_id", c.ID, "err", err)
			r.drop(c, DropStoreError)
			if batch = slices.Delete(batch, i, i+1); len(batch) == 0 {
				return
			}
			continue
		}
		if !closing {
			select {
			case <-r.closing:
				closing = true
			default:
			}
		}
		if closing && attempt >= 5 {
			for _, c := range batch {
				r.drop(c, DropStoreError)
			}
			return
		}
		if attempt >= 3 && !storeDown(reason) {
			// The store may refuse one of these calls while accepting others:
			// take what waits in the queue too, so a lone call is tried
			// beside others, then write them one by one.
			batch = r.fill(batch)
			if len(batch) == 1 {
				if c := batch[0]; !refused[c] {
					if refused == nil {
						refused = make(map[*Call]bool)
					}
					refused[c] = true
					r.sanitizeRefused(c)
				}
			} else if batch = r.split(batch, wait, refused); len(batch) == 0 {
				return
			}
		}
		time.Sleep(wait)
		wait = min(wait*2, r.cfg.RetryMax)
	}
}

// invalidCall returns the index in batch of the call err says the store
// cannot store, or -1.
func invalidCall(batch []*Call, err error) int {
	var we *WriteError
	if !errors.As(err, &we) || we.Reason != WriteInvalidCall || we.CallID == "" {
		return -1
	}
	return slices.IndexFunc(batch, func(c *Call) bool { return c != nil && c.ID == we.CallID })
}

// sanitizeRefused makes a call the store refused as storable as it can be
// and says so in its TagSanitized tag.
func (r *Recorder) sanitizeRefused(c *Call) {
	changed := c.Sanitize()
	c.addSanitized("store_refused")
	r.cfg.Logger.Warn("store refused call: sanitized", "call_id", c.ID, "changed", changed)
}

// split writes the calls of a failing batch one by one. When the store
// accepts none of them it is down: all are returned to retry. Otherwise each
// refused call is sanitized and gets a few more tries (a transient error
// such as a busy database passes) and is dropped if it is still refused.
// refused holds the calls sanitized already.
func (r *Recorder) split(batch []*Call, wait time.Duration, refused map[*Call]bool) []*Call {
	var failed []*Call
	for _, c := range batch {
		if r.commit([]*Call{c}) != nil {
			failed = append(failed, c)
		}
	}
	if len(failed) == len(batch) {
		return batch
	}
	for _, c := range failed {
		if !refused[c] {
			r.sanitizeRefused(c)
		}
		var err error
		for try := 0; try < 5; try++ {
			time.Sleep(wait)
			if err = r.commit([]*Call{c}); err == nil {
				break
			}
		}
		if err != nil {
			r.cfg.Logger.Error("store refuses call: dropped", "call_id", c.ID, "err", err)
			r.drop(c, DropStoreError)
		}
	}
	return nil
}

// commit writes batch once and keeps the store's health up to date.
func (r *Recorder) commit(batch []*Call) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store.Write(ctx, batch); err != nil {
		reason := WriteErrorReason(err)
		if r.cfg.OnWriteError != nil {
			r.cfg.OnWriteError(reason)
		}
		r.health.Store(&writeFailure{reason: reason, err: err, since: r.failingSince()})
		return err
	}
	r.health.Store(nil)
	r.written.Add(int64(len(batch)))
	return nil
}

// writeFailure describes the latest failed write.
type writeFailure struct {
	reason string
	err    error
	since  time.Time // when writes started failing
}

// failingSince returns when the current run of failed writes began: now, or
// the start of the run already under way.
func (r *Recorder) failingSince() time.Time {
	if f := r.health.Load(); f != nil {
		return f.since
	}
	return time.Now()
}

// Health returns nil while the recorder keeps up: an error, naming the
// reason and since when, while its latest write attempt failed, or while
// the queue is at least 90% full. It recovers by itself after a
// successful write.
func (r *Recorder) Health() error {
	if f := r.health.Load(); f != nil {
		return fmt.Errorf("store writes failing for %s: %s: %w", time.Since(f.since).Round(time.Second), f.reason, f.err)
	}
	if depth, capacity := len(r.queue), cap(r.queue); depth*10 >= capacity*9 {
		return fmt.Errorf("store queue %d%% full (%d of %d calls)", depth*100/capacity, depth, capacity)
	}
	return nil
}
