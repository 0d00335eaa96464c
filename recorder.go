package llmscope

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RecorderConfig configures a Recorder. Zero fields take the defaults.
type RecorderConfig struct {
	QueueSize   int           // calls waiting for the store; default 10000
	BatchSize   int           // calls per transaction at most; default 256
	BatchWait   time.Duration // how long a partial batch waits for more; default 5ms
	RetryMax    time.Duration // longest pause between retries of a failed write; default 5s
	Logger      *slog.Logger  // default: discard
	OnDrop      func(reason string)
	OnQueueSize func(depth int) // called after each batch with the queue depth
}

// Recorder hands calls from the request path to a Store without blocking:
// Record puts a call on a bounded queue and one writer goroutine commits
// batches (group commit). A failed write is retried with backoff while the
// queue fills; a call that finds the queue full is dropped, counted and logged.
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

	dropped atomic.Int64
	written atomic.Int64
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
	select {
	case r.queue <- c:
		// The writer lets a batch gather in the queue rather than taking
		// calls one by one (which would wake it for each): say when a
		// full batch is waiting.
		if len(r.queue) >= r.cfg.BatchSize-1 {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
	default:
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
	for {
		batch = batch[:0]
		select {
		case c := <-r.queue:
			batch = append(batch, c)
		case <-r.closing:
			// Drain what is left; Record no longer adds to the queue.
			for len(r.queue) > 0 {
				batch = batch[:0]
				for len(batch) < r.cfg.BatchSize && len(r.queue) > 0 {
					batch = append(batch, <-r.queue)
				}
				r.write(batch, true)
			}
			return
		}
		// Group commit: let more calls queue up until a batch is full or
		// BatchWait passes, then take them. Record does not wake this
		// goroutine for each call meanwhile, only when a batch is full.
		need := r.cfg.BatchSize - 1
		if len(r.queue) < need {
			select {
			case <-r.full: // left from an earlier batch
			default:
			}
			if len(r.queue) < need {
				timer.Reset(r.cfg.BatchWait)
				select {
				case <-timer.C:
				case <-r.full:
				case <-r.closing:
				}
				timer.Stop()
			}
		}
		for len(batch) < r.cfg.BatchSize && len(r.queue) > 0 {
			batch = append(batch, <-r.queue) // only this goroutine receives
		}
		r.write(batch, false)
		if r.cfg.OnQueueSize != nil {
			r.cfg.OnQueueSize(len(r.queue))
		}
	}
}

// write commits batch, retrying with backoff until it succeeds: while the
// store is down nothing is lost, the queue just fills. A batch that keeps
// failing is split and written call by call; a call that the store keeps
// refusing while it accepts the others cannot be written at all (poison) and
// is dropped as DropStoreError. While closing, retries are bounded so that
// shutdown ends.
func (r *Recorder) write(batch []*Call, closing bool) {
	wait := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.commit(batch)
		if err == nil {
			return
		}
		r.cfg.Logger.Error("store write failed", "calls", len(batch), "attempt", attempt, "err", err)
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
		if attempt >= 3 && len(batch) > 1 {
			if batch = r.split(batch, wait); len(batch) == 0 {
				return
			}
		}
		time.Sleep(wait)
		wait = min(wait*2, r.cfg.RetryMax)
	}
}

// split writes the calls of a failing batch one by one. When the store
// accepts none of them it is down: all are returned to retry. Otherwise each
// refused call gets a few more tries (a transient error such as a busy
// database passes) and is dropped if it is still refused.
func (r *Recorder) split(batch []*Call, wait time.Duration) []*Call {
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

func (r *Recorder) commit(batch []*Call) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store.Write(ctx, batch); err != nil {
		return err
	}
	r.written.Add(int64(len(batch)))
	return nil
}
