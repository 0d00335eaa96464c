package llmscope_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"llmscope"
)

// memStore is a Store that keeps calls in memory, optionally slowly or
// failing a number of times first.
type memStore struct {
	mu       sync.Mutex
	calls    map[string]*llmscope.Call
	batches  int
	delay    time.Duration
	failures atomic.Int32
	block    chan struct{}
	poison   string         // a batch holding a call with this id always fails
	flaky    map[string]int // a batch holding one of these ids fails while its count is > 0
}

func newMemStore() *memStore { return &memStore{calls: map[string]*llmscope.Call{}} }

func (m *memStore) Write(ctx context.Context, calls []*llmscope.Call) error {
	if m.block != nil {
		<-m.block
	}
	time.Sleep(m.delay)
	if m.failures.Add(-1) >= 0 {
		return errors.New("disk on fire")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range calls {
		if m.poison != "" && c.ID == m.poison {
			return errors.New("cannot encode call")
		}
	}
	failed := false
	for _, c := range calls {
		if m.flaky[c.ID] > 0 {
			m.flaky[c.ID]--
			failed = true
		}
	}
	if failed {
		return errors.New("database is locked")
	}
	m.batches++
	for _, c := range calls {
		m.calls[c.ID] = c
	}
	return nil
}

func (m *memStore) count() (calls, batches int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls), m.batches
}

func TestRecorderCloseFlushesEverything(t *testing.T) {
	store := newMemStore()
	store.delay = 2 * time.Millisecond // slower than the producers
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{QueueSize: 5000, BatchSize: 64})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				rec.Record(&llmscope.Call{ID: llmscope.NewID()})
			}
		}()
	}
	wg.Wait()
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls, batches := store.count()
	if calls != 2000 || rec.Written() != 2000 || rec.Dropped() != 0 {
		t.Fatalf("stored %d, written %d, dropped %d; want 2000, 2000, 0", calls, rec.Written(), rec.Dropped())
	}
	if batches >= 2000 {
		t.Errorf("%d batches for 2000 calls: no group commit", batches)
	}
	// After Close, Record drops and counts.
	rec.Record(&llmscope.Call{ID: "late"})
	if rec.Dropped() != 1 {
		t.Errorf("a call recorded after Close was not counted as dropped")
	}
}

func TestRecorderDropsWhenFullAndCounts(t *testing.T) {
	store := newMemStore()
	store.block = make(chan struct{})
	var reasons sync.Map
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{QueueSize: 10, BatchSize: 1, OnDrop: func(r string) {
		n, _ := reasons.LoadOrStore(r, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}})
	start := time.Now()
	for range 100 {
		rec.Record(&llmscope.Call{ID: llmscope.NewID()}) // must not block
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Record blocked on a stuck store")
	}
	close(store.block)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls, _ := store.count()
	n, _ := reasons.Load(llmscope.DropQueueFull)
	if calls+int(rec.Dropped()) != 100 || rec.Dropped() == 0 || n == nil || n.(*atomic.Int64).Load() != rec.Dropped() {
		t.Fatalf("stored %d + dropped %d != 100, or drops not reported", calls, rec.Dropped())
	}
}

func TestRecorderRetriesFailedWrites(t *testing.T) {
	store := newMemStore()
	store.failures.Store(3)
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{})
	for range 10 {
		rec.Record(&llmscope.Call{ID: llmscope.NewID()})
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := store.count(); calls != 10 {
		t.Fatalf("stored %d of 10 after transient failures", calls)
	}
}

func TestRecorderDropsPoisonCallOnly(t *testing.T) {
	store := newMemStore()
	store.poison = "poison"
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{BatchWait: 50 * time.Millisecond})
	for i := range 10 {
		id := llmscope.NewID()
		if i == 4 {
			id = "poison"
		}
		rec.Record(&llmscope.Call{ID: id})
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := store.count(); calls != 9 || rec.Dropped() != 1 {
		t.Fatalf("stored %d, dropped %d; want the 9 good calls stored and the poison one dropped", calls, rec.Dropped())
	}
}

func TestRecorderKeepsCallsWithTransientErrors(t *testing.T) {
	store := newMemStore()
	store.flaky = map[string]int{} // calls that fail their first 4 writes
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{BatchWait: 50 * time.Millisecond})
	ids := make([]string, 6)
	for i := range ids {
		ids[i] = llmscope.NewID()
		if i > 0 { // the first call goes through at once, so the store is "up"
			store.flaky[ids[i]] = 4
		}
	}
	for _, id := range ids {
		rec.Record(&llmscope.Call{ID: id})
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls, _ := store.count(); calls != 6 || rec.Dropped() != 0 {
		t.Fatalf("stored %d, dropped %d; transient errors must not lose calls", calls, rec.Dropped())
	}
}

func TestTraceIDFor(t *testing.T) {
	id := llmscope.NewID()
	tid := llmscope.TraceIDFor(id)
	if len(tid) != 32 || tid != llmscope.TraceIDFor(id) {
		t.Fatalf("trace id %q of %q", tid, id)
	}
	if other := llmscope.TraceIDFor("not-a-uuid"); len(other) != 32 || other == llmscope.TraceIDFor("not-a-uuid2") {
		t.Errorf("hashed trace id %q", other)
	}
	if a, b := llmscope.NewID(), llmscope.NewID(); a == b || len(a) != 36 || a[14] != '7' {
		t.Errorf("ids %q %q are not distinct UUIDv7", a, b)
	}
}

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 95: 10, 99: 10, 10: 1, 100: 10} {
		if got := llmscope.Percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if llmscope.Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

type discardStore struct{}

func (discardStore) Write(context.Context, []*llmscope.Call) error { return nil }

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecord measures Record as the request path sees it, with the
// writer goroutine running and calls arriving 20µs apart (spinning, as a
// busy request path would), from 1 and from 16 goroutines. cpu-ns/op is the
// CPU of the whole process per call, the writer's wake-ups included; the
// "none" cases spin without recording, so the difference is Record's cost.
func BenchmarkRecord(b *testing.B) {
	c := &llmscope.Call{ID: "x"}
	spin := func() {
		for t := time.Now(); time.Since(t) < 20*time.Microsecond; {
		}
	}
	for _, par := range []int{1, 16} {
		for _, record := range []bool{false, true} {
			name := fmt.Sprintf("callers=%d/none", par)
			if record {
				name = fmt.Sprintf("callers=%d/record", par)
			}
			b.Run(name, func(b *testing.B) {
				rec := llmscope.NewRecorder(discardStore{}, llmscope.RecorderConfig{QueueSize: 1 << 20})
				defer rec.Close(context.Background())
				call := func() {
					if record {
						rec.Record(c)
					}
					spin()
				}
				b.ReportAllocs()
				cpu := cpuTime()
				if par == 1 {
					for b.Loop() {
						call()
					}
				} else {
					b.SetParallelism(max(1, par/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							call()
						}
					})
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
				if n := rec.Dropped(); n > 0 {
					b.Fatalf("dropped %d", n)
				}
			})
		}
	}
}

// faultStore is a Writer whose faults a test switches: down makes every
// write fail with a classified error, invalid names a call it refuses as
// one it cannot store, refused a call it refuses without saying why.
type faultStore struct {
	mu       sync.Mutex
	calls    map[string]*llmscope.Call
	down     string // a WriteError reason, or "" when up
	invalid  string
	refused  string
	failures map[string]int // failed attempts by reason
}

func newFaultStore() *faultStore {
	return &faultStore{calls: map[string]*llmscope.Call{}, failures: map[string]int{}}
}

func (s *faultStore) Write(_ context.Context, calls []*llmscope.Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down != "" {
		return &llmscope.WriteError{Reason: s.down, Err: errors.New("database or disk is full")}
	}
	for _, c := range calls {
		if c.ID == s.invalid {
			return &llmscope.WriteError{Reason: llmscope.WriteInvalidCall, CallID: c.ID, Err: errors.New("encode params")}
		}
		if c.ID == s.refused {
			return errors.New("no idea")
		}
	}
	for _, c := range calls {
		s.calls[c.ID] = c
	}
	return nil
}

func (s *faultStore) set(f func(s *faultStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *faultStore) stored() map[string]*llmscope.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*llmscope.Call, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// counter counts calls of a func(reason string) by reason.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[reason]++
}

func (c *counter) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

func closeWithin(t *testing.T, rec *llmscope.Recorder, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatalf("Close: %v (the writer is stuck)", err)
	}
}

func TestRecorderDropsCallStoreCannotStore(t *testing.T) {
	for _, alone := range []bool{false, true} {
		store := newFaultStore()
		store.invalid = "bad"
		var drops, writeErrs counter
		cfg := llmscope.RecorderConfig{BatchWait: 20 * time.Millisecond, OnDrop: drops.add, OnWriteError: writeErrs.add}
		if alone {
			cfg.BatchSize = 1 // the refused call is a batch of its own
		}
		rec := llmscope.NewRecorder(store, cfg)
		var ids []string
		for i := range 20 {
			id := llmscope.NewID()
			if i == 3 {
				id = "bad"
			} else {
				ids = append(ids, id)
			}
			rec.Record(&llmscope.Call{ID: id})
		}
		closeWithin(t, rec, 20*time.Second)
		got := store.stored()
		for _, id := range ids {
			if got[id] == nil {
				t.Errorf("alone=%v: call %s not written", alone, id)
			}
		}
		if got["bad"] != nil || len(got) != 19 || rec.Dropped() != 1 || drops.get(llmscope.DropStoreError) != 1 {
			t.Errorf("alone=%v: stored %d, dropped %d (%v); want 19 stored and the refused call dropped as %s",
				alone, len(got), rec.Dropped(), drops.n, llmscope.DropStoreError)
		}
		// Refused, sanitized and tagged, refused again: two failed writes.
		if n := writeErrs.get(llmscope.WriteInvalidCall); n != 2 {
			t.Errorf("alone=%v: OnWriteError(invalid_call) called %d times, want 2", alone, n)
		}
	}
}

func TestRecorderSanitizesCallStoreRefusesOnce(t *testing.T) {
	store := newFaultStore()
	store.invalid = "bad"
	var tagged atomic.Bool
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{OnWriteError: func(string) {
		// Accept the call at the next attempt, after the recorder sanitized it.
		store.set(func(s *faultStore) { s.invalid = "" })
		tagged.Store(true)
	}})
	rec.Record(&llmscope.Call{ID: "bad", RequestModel: "m\x00"})
	closeWithin(t, rec, 20*time.Second)
	c := store.stored()["bad"]
	if !tagged.Load() || rec.Dropped() != 0 || c == nil {
		t.Fatalf("refused call not retried and written: dropped %d", rec.Dropped())
	}
	if c.RequestModel != "m" || c.Tags[llmscope.TagSanitized] != "request_model,store_refused" {
		t.Errorf("written call %q with tags %q, want it sanitized and tagged", c.RequestModel, c.Tags)
	}
}

func TestRecorderDropsLoneCallRefusedWithoutReason(t *testing.T) {
	store := newFaultStore()
	store.refused = "bad"
	var writeErrs counter
	first := make(chan struct{})
	var once sync.Once
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{OnWriteError: func(r string) {
		writeErrs.add(r)
		once.Do(func() { close(first) })
	}})
	rec.Record(&llmscope.Call{ID: "bad"})
	<-first // the writer holds the refused call alone
	for range 10 {
		rec.Record(&llmscope.Call{ID: llmscope.NewID()})
	}
	closeWithin(t, rec, 30*time.Second)
	got := store.stored()
	if len(got) != 10 || got["bad"] != nil || rec.Dropped() != 1 {
		t.Fatalf("stored %d, dropped %d; want the 10 others stored and the refused call dropped", len(got), rec.Dropped())
	}
	if writeErrs.get(llmscope.WriteOther) == 0 {
		t.Error("OnWriteError(other) not called")
	}
}

func TestRecorderHealthWhileStoreDown(t *testing.T) {
	store := newFaultStore()
	store.down = llmscope.WriteDiskFull
	var writeErrs counter
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{
		QueueSize: 1000, BatchSize: 4, RetryMax: 20 * time.Millisecond, OnWriteError: writeErrs.add,
	})
	if err := rec.Health(); err != nil {
		t.Fatalf("Health before any write: %v", err)
	}
	for range 50 {
		rec.Record(&llmscope.Call{ID: llmscope.NewID()})
	}
	// Many failed attempts: the writer retries with backoff, and splits
	// nothing off while the store says it is full.
	for writeErrs.get(llmscope.WriteDiskFull) < 10 {
		time.Sleep(5 * time.Millisecond)
	}
	err := rec.Health()
	if err == nil || !strings.Contains(err.Error(), "store writes failing for") || !strings.Contains(err.Error(), "disk_full") {
		t.Errorf("Health while the disk is full = %v", err)
	}
	if rec.Dropped() != 0 || rec.Written() != 0 {
		t.Fatalf("while down: dropped %d, written %d; want nothing dropped", rec.Dropped(), rec.Written())
	}
	store.set(func(s *faultStore) { s.down = "" })
	for rec.Written() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := rec.Health(); err != nil {
		t.Errorf("Health after the store came back: %v", err)
	}
	closeWithin(t, rec, 10*time.Second)
	if got := store.stored(); len(got) != 50 || rec.Dropped() != 0 {
		t.Errorf("stored %d, dropped %d; want all 50 and none", len(got), rec.Dropped())
	}
	for reason := range writeErrs.n {
		if reason != llmscope.WriteDiskFull {
			t.Errorf("OnWriteError(%q): want only disk_full", reason)
		}
	}
}

func TestRecorderHealthWhenQueueNearlyFull(t *testing.T) {
	store := newMemStore()
	store.block = make(chan struct{})
	rec := llmscope.NewRecorder(store, llmscope.RecorderConfig{QueueSize: 10, BatchSize: 1})
	for range 11 { // one is taken by the blocked writer
		rec.Record(&llmscope.Call{ID: llmscope.NewID()})
	}
	if err := rec.Health(); err == nil || !strings.Contains(err.Error(), "queue") {
		t.Errorf("Health with a full queue = %v", err)
	}
	close(store.block)
	closeWithin(t, rec, 10*time.Second)
	if err := rec.Health(); err != nil {
		t.Errorf("Health after the queue drained: %v", err)
	}
}

func TestWriteErrorReason(t *testing.T) {
	we := &llmscope.WriteError{Reason: llmscope.WriteBusy, Err: syscall.EBUSY}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("x"), llmscope.WriteOther},
		{we, llmscope.WriteBusy},
		{fmt.Errorf("write: %w", we), llmscope.WriteBusy},
	} {
		if got := llmscope.WriteErrorReason(tc.err); got != tc.want {
			t.Errorf("WriteErrorReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(we, syscall.EBUSY) || we.Error() != syscall.EBUSY.Error() {
		t.Errorf("WriteError %q does not wrap its error", we)
	}
}

// sizedStore records the captured text of each batch it is given.
type sizedStore struct {
	mu      sync.Mutex
	batches [][]int // textBytes of each call, per batch
}

func (s *sizedStore) Write(_ context.Context, calls []*llmscope.Call) error {
	sizes := make([]int, len(calls))
	for i, c := range calls {
		sizes[i] = len(c.Input) + len(c.Output)
	}
	s.mu.Lock()
	s.batches = append(s.batches, sizes)
	s.mu.Unlock()
	return nil
}

func (s *sizedStore) stored() (calls int, batches [][]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		calls += len(b)
	}
	return calls, slices.Clone(s.batches)
}

// TestRecorderBoundsBatchBytes: calls with long captured texts are written
// in transactions of about BatchBytes, each ending with the call that
// reaches it, and without waiting BatchWait for more: a batch over its
// bytes is full. Only the calls after the last full batch wait.
func TestRecorderBoundsBatchBytes(t *testing.T) {
	st := &sizedStore{}
	const limit = 1 << 20
	rec := llmscope.NewRecorder(st, llmscope.RecorderConfig{BatchBytes: limit, BatchWait: time.Hour})
	text := strings.Repeat("x", 300<<10)
	const n = 20
	for i := range n {
		rec.Record(&llmscope.Call{ID: fmt.Sprint(i), Input: text, Output: "ok"})
	}
	tail := limit/len(text) + 1 // calls that may wait for company
	deadline := time.Now().Add(10 * time.Second)
	calls, _ := st.stored()
	for ; calls < n-tail && time.Now().Before(deadline); calls, _ = st.stored() {
		time.Sleep(time.Millisecond)
	}
	if calls < n-tail {
		t.Fatalf("%d of %d calls written in 10 s with BatchWait an hour: a batch over BatchBytes waited", calls, n)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls, batches := st.stored()
	if calls != n {
		t.Fatalf("%d of %d calls written after Close", calls, n)
	}
	for i, b := range batches {
		sum := 0
		for _, s := range b[:len(b)-1] {
			sum += s
		}
		if sum >= limit {
			t.Errorf("batch %d: %d bytes before its last call, want the batch to end at %d: %v", i, sum, limit, b)
		}
	}
	if len(batches) < n*len(text)/(limit+len(text)) {
		t.Errorf("%d batches for %d calls of %d bytes", len(batches), n, len(text))
	}
}

// TestRecorderWritesAFullBatchByBytesAtOnce: the call the writer holds
// while it waits counts toward BatchBytes, so two calls that reach it
// together, or one call that reaches it alone, are written without
// waiting BatchWait.
func TestRecorderWritesAFullBatchByBytesAtOnce(t *testing.T) {
	for _, sizes := range [][]int{{600 << 10, 600 << 10}, {1 << 20}} {
		st := &sizedStore{}
		rec := llmscope.NewRecorder(st, llmscope.RecorderConfig{BatchBytes: 1 << 20, BatchWait: time.Hour})
		for i, n := range sizes {
			rec.Record(&llmscope.Call{ID: fmt.Sprint(i), Input: strings.Repeat("x", n)})
			time.Sleep(20 * time.Millisecond) // the writer takes the first call and waits
		}
		deadline := time.Now().Add(10 * time.Second)
		calls, _ := st.stored()
		for ; calls < len(sizes) && time.Now().Before(deadline); calls, _ = st.stored() {
			time.Sleep(time.Millisecond)
		}
		if calls < len(sizes) {
			t.Errorf("calls of %v bytes: %d written in 10 s with BatchWait an hour", sizes, calls)
		}
		rec.Close(context.Background())
	}
}
