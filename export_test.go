package llmscope_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// memOutbox is an outbox over a slice.
type memOutbox struct {
	mu     sync.Mutex
	calls  []*llmscope.Call
	cursor map[string]int64
}

func (o *memOutbox) After(_ context.Context, seq int64, limit int) ([]*llmscope.Call, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*llmscope.Call
	for _, c := range o.calls {
		if c.Seq > seq && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}
func (o *memOutbox) Cursor(_ context.Context, name string) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cursor[name], nil
}
func (o *memOutbox) SetCursor(_ context.Context, name string, seq int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cursor[name] = seq
	return nil
}

// flakyExporter fails while down is set and remembers what it accepted.
type flakyExporter struct {
	mu       sync.Mutex
	down     bool
	accepted map[string]int
}

func (f *flakyExporter) Name() string { return "test" }
func (f *flakyExporter) Export(_ context.Context, calls []*llmscope.Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	for _, c := range calls {
		f.accepted[c.ID]++
	}
	return nil
}
func (f *flakyExporter) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func TestExportLoopSurvivesOutage(t *testing.T) {
	out := &memOutbox{cursor: map[string]int64{}}
	for i := range 250 {
		out.calls = append(out.calls, &llmscope.Call{ID: llmscope.NewID(), Seq: int64(i + 1), Start: time.Now().Add(-time.Minute)})
	}
	exp := &flakyExporter{down: true, accepted: map[string]int{}}
	failures := 0
	var mu sync.Mutex
	loop := llmscope.NewExportLoop(out, exp, llmscope.ExportConfig{Batch: 100, Poll: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		OnFailure: func() { mu.Lock(); failures++; mu.Unlock() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()

	time.Sleep(150 * time.Millisecond)
	if c, _ := out.Cursor(ctx, "test"); c != 0 {
		t.Fatalf("cursor moved to %d while the exporter was down", c)
	}
	if loop.Health() == nil || loop.Lag() < time.Minute {
		t.Errorf("down: health %v lag %v; want an error and a lag of a minute or more", loop.Health(), loop.Lag())
	}
	exp.set(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := out.Cursor(ctx, "test"); c == 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never caught up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(exp.accepted) != 250 {
		t.Errorf("%d calls delivered, want 250", len(exp.accepted))
	}
	for id, n := range exp.accepted {
		if n != 1 {
			t.Errorf("call %s delivered %d times", id, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if failures == 0 || loop.Health() != nil || loop.Lag() != 0 {
		t.Errorf("after recovery: %d failures counted, health %v, lag %v", failures, loop.Health(), loop.Lag())
	}
}

func TestExportLoopDrain(t *testing.T) {
	out := &memOutbox{cursor: map[string]int64{}}
	for i := range 450 {
		out.calls = append(out.calls, &llmscope.Call{ID: llmscope.NewID(), Seq: int64(i + 1)})
	}
	exp := &flakyExporter{accepted: map[string]int{}}
	if err := llmscope.NewExportLoop(out, exp, llmscope.ExportConfig{Batch: 100}).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(exp.accepted) != 450 {
		t.Errorf("drained %d of 450", len(exp.accepted))
	}
	exp.set(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	out.calls = append(out.calls, &llmscope.Call{ID: "late", Seq: 451})
	if err := llmscope.NewExportLoop(out, exp, llmscope.ExportConfig{}).Drain(ctx); err == nil {
		t.Error("Drain against a down exporter returned nil")
	}
}
