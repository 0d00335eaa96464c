package llmscope_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
