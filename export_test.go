package llmscope_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
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

// TestCallJSONTTFT: ttft_ms is null for a call that did not stream, or
// streamed without a first chunk, and a number otherwise; each form reads
// back to the same Call (a non-streamed call's stray TTFT reads back as 0).
func TestCallJSONTTFT(t *testing.T) {
	start := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	for _, tc := range []struct {
		name     string
		stream   bool
		ttft     float64
		want     string
		readBack float64
	}{
		{"streamed", true, 143.2, `"ttft_ms":143.2`, 143.2},
		{"streamed, no chunk", true, 0, `"ttft_ms":null`, 0},
		{"not streamed", false, 0, `"ttft_ms":null`, 0},
		{"not streamed, stray ttft", false, 12.5, `"ttft_ms":null`, 0},
	} {
		c := llmscope.Call{ID: "c1", TraceID: llmscope.TraceIDFor("c1"), Start: start, DurationMS: 812.4, TTFTMS: tc.ttft, Stream: tc.stream,
			Operation: "chat", RequestModel: "m", Status: 200, Cost: &llmscope.Cost{TotalUSD: 2.4e-7}, Tags: map[string]string{"ttft_ms": "x"},
			Input: `<b>"quoted" & 日本語</b>`}
		for _, v := range []any{c, &c} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(b), `"ttft_ms":`) != 2 || !strings.Contains(string(b), tc.want) { // one in tags
				t.Errorf("%s: %s, want %s", tc.name, b, tc.want)
			}
			if a, err := c.AppendJSON([]byte("x")); err != nil || string(a) != "x"+string(b) {
				t.Errorf("%s: AppendJSON = %s, %v; want x%s", tc.name, a, err, b)
			}
			back := llmscope.Call{TTFTMS: 99} // decoding must not keep an old TTFT
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			want := c
			want.TTFTMS = tc.readBack
			if !reflect.DeepEqual(back, want) {
				t.Errorf("%s: round trip\n got  %+v\n want %+v", tc.name, back, want)
			}
		}
	}
	var c llmscope.Call
	if err := json.Unmarshal([]byte(`{"id":"x","stream":true}`), &c); err != nil || c.TTFTMS != 0 || c.ID != "x" {
		t.Errorf("absent ttft_ms: %+v %v", c, err)
	}
	if err := json.Unmarshal([]byte(`{"ttft_ms":"fast"}`), &c); err == nil {
		t.Error("a string ttft_ms was accepted")
	}
}

func TestParseGroupBy(t *testing.T) {
	for in, want := range map[string][]string{
		"":                           {"model"},
		"model":                      {"model"},
		"experiment,run":             {"experiment", "run"},
		" run , user ":               {"run", "user"},
		"provider,operation,session": {"provider", "operation", "session"},
	} {
		got, err := llmscope.ParseGroupBy(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseGroupBy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"color", "model,model", "run,", "Model"} {
		_, err := llmscope.ParseGroupBy(bad)
		if err == nil {
			t.Errorf("ParseGroupBy(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "model, experiment, run, user") && !strings.Contains(err.Error(), "twice") {
			t.Errorf("ParseGroupBy(%q): %v does not name the allowed keys", bad, err)
		}
	}
}

// TestStatsJSON: the JSON of grouped stats carries group_by and each
// group's keys; grouping by model keeps "key"; TTFT percentiles are null
// when none was counted; the JSON reads back to the same Stats.
func TestStatsJSON(t *testing.T) {
	st := &llmscope.Stats{
		GroupBy: []string{"experiment", "run"},
		Totals:  llmscope.Summary{Calls: 3, LatencyP50MS: 10, TTFTP50MS: 4, TTFTP95MS: 5},
		Groups: []llmscope.Summary{
			{Values: llmscope.GroupValues{Experiment: "a", Run: "r1"}, Calls: 2, LatencyP50MS: 10, TTFTP50MS: 4, TTFTP95MS: 5},
			{Values: llmscope.GroupValues{Experiment: "a"}, Calls: 1, LatencyP50MS: 20},
		},
		GroupsTotal: 3, Truncated: true,
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"group_by":["experiment","run"]`, `"keys":{"experiment":"a","run":"r1"}`, `"keys":{"experiment":"a","run":""}`,
		`"ttft_p50_ms":null,"ttft_p95_ms":null}`, `"ttft_p50_ms":4,"ttft_p95_ms":5`, `"groups_total":3`, `"truncated":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("stats JSON lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"key":`) {
		t.Errorf("grouping by two keys has a \"key\": %s", b)
	}
	var back llmscope.Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, st) {
		t.Errorf("round trip\n got  %+v\n want %+v", back, *st)
	}

	// The default grouping (by model, Key only) and an empty set.
	def := &llmscope.Stats{Groups: []llmscope.Summary{{Key: "gpt-4o", Calls: 1}}}
	b, _ = json.Marshal(def)
	for _, want := range []string{`"group_by":["model"]`, `"keys":{"model":"gpt-4o"},"key":"gpt-4o","calls":1`, `"groups_total":1`, `"truncated":false`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("default stats JSON lacks %s:\n%s", want, b)
		}
	}
	b, _ = json.Marshal(&llmscope.Stats{})
	if !strings.Contains(string(b), `"groups":[]`) {
		t.Errorf("empty stats: %s", b)
	}
}

// leaseOutbox is a memOutbox shared by several loops, with leases timed by
// its own clock; the owners in cut get errors, as if partitioned away.
type leaseOutbox struct {
	*memOutbox
	lmu    sync.Mutex
	leases map[string]leaseRow
	cut    map[string]bool
	fenced int // SetCursorLeased calls refused
}

type leaseRow struct {
	owner   string
	expires time.Time
}

var _ llmscope.Leaser = (*leaseOutbox)(nil)

func newLeaseOutbox(n int) *leaseOutbox {
	out := &leaseOutbox{memOutbox: &memOutbox{cursor: map[string]int64{}}, leases: map[string]leaseRow{}, cut: map[string]bool{}}
	out.add(n)
	return out
}

// add appends n calls.
func (o *leaseOutbox) add(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		o.calls = append(o.calls, &llmscope.Call{ID: llmscope.NewID(), Seq: int64(len(o.calls) + 1), Start: time.Now()})
	}
}

func (o *leaseOutbox) setCut(owner string, cut bool) {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	o.cut[owner] = cut
}

func (o *leaseOutbox) Lease(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	if o.cut[owner] {
		return false, errors.New("connection refused")
	}
	now := time.Now()
	if l, ok := o.leases[name]; ok && l.owner != owner && now.Before(l.expires) {
		return false, nil
	}
	o.leases[name] = leaseRow{owner, now.Add(ttl)}
	return true, nil
}

func (o *leaseOutbox) Release(_ context.Context, name, owner string) error {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	if o.cut[owner] {
		return errors.New("connection refused")
	}
	if o.leases[name].owner == owner {
		delete(o.leases, name)
	}
	return nil
}

func (o *leaseOutbox) SetCursorLeased(ctx context.Context, lease, owner, cursor string, seq int64) error {
	o.lmu.Lock()
	defer o.lmu.Unlock()
	if o.cut[owner] {
		return errors.New("connection refused")
	}
	if l, ok := o.leases[lease]; !ok || l.owner != owner || !time.Now().Before(l.expires) {
		o.fenced++
		return llmscope.ErrLeaseLost
	}
	return o.memOutbox.SetCursor(ctx, cursor, seq)
}

// runLoop runs loop until the test ends or the returned stop is called.
func runLoop(t *testing.T, loop *llmscope.ExportLoop) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// counts returns how many calls were delivered and the most times one was.
func (f *flakyExporter) counts() (calls, most int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.accepted {
		most = max(most, n)
	}
	return len(f.accepted), most
}

func leaders(loops ...*llmscope.ExportLoop) int {
	n := 0
	for _, l := range loops {
		if l.Leading() {
			n++
		}
	}
	return n
}

// TestExportLoopLeaseOneExporter: loops of three processes sharing a store
// that is a Leaser deliver every call exactly once between them, one
// leading at a time.
func TestExportLoopLeaseOneExporter(t *testing.T) {
	out := newLeaseOutbox(300)
	exp := &flakyExporter{accepted: map[string]int{}}
	var loops []*llmscope.ExportLoop
	for i := range 3 {
		loop := llmscope.NewExportLoop(out, exp, llmscope.ExportConfig{Batch: 50, Poll: 5 * time.Millisecond,
			Owner: fmt.Sprintf("gw%d", i), LeaseTTL: 300 * time.Millisecond})
		loops = append(loops, loop)
		runLoop(t, loop)
	}
	waitFor(t, "300 calls delivered", 5*time.Second, func() bool { n, _ := exp.counts(); return n == 300 })
	for range 20 { // more calls while the leases are renewed
		out.add(10)
		time.Sleep(10 * time.Millisecond)
		if n := leaders(loops...); n != 1 {
			t.Fatalf("%d loops lead at once, want 1", n)
		}
	}
	waitFor(t, "500 calls delivered", 5*time.Second, func() bool { n, _ := exp.counts(); return n == 500 })
	if _, most := exp.counts(); most != 1 {
		t.Errorf("a call was delivered %d times, want once", most)
	}
}

// TestExportLoopLeaseTakeover: when the leading loop is cut off from the
// store, it stops exporting once its lease is gone, another takes over
// within the lease time and a retry interval, the cut-off one cannot move
// the cursor, and at most one batch is delivered twice.
func TestExportLoopLeaseTakeover(t *testing.T) {
	const ttl = 300 * time.Millisecond
	out := newLeaseOutbox(100)
	exp := &flakyExporter{accepted: map[string]int{}}
	cfg := func(owner string) llmscope.ExportConfig {
		return llmscope.ExportConfig{Batch: 20, Poll: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Owner: owner, LeaseTTL: ttl}
	}
	a := llmscope.NewExportLoop(out, exp, cfg("a"))
	runLoop(t, a)
	waitFor(t, "a leads and delivers", 5*time.Second, func() bool { n, _ := exp.counts(); return n == 100 && a.Leading() })
	b := llmscope.NewExportLoop(out, exp, cfg("b"))
	runLoop(t, b)
	time.Sleep(ttl)
	if b.Leading() {
		t.Fatal("b leads while a renews its lease")
	}
	out.setCut("a", true)
	took := waitFor(t, "b takes over", 3*ttl, b.Leading)
	t.Logf("takeover %v after the holder was cut off (ttl %v)", took, ttl)
	if took < ttl/2 {
		t.Errorf("b took over after %v, before a's lease could expire", took)
	}
	waitFor(t, "a stops leading", ttl, func() bool { return !a.Leading() })
	out.add(100)
	waitFor(t, "200 calls delivered", 5*time.Second, func() bool { n, _ := exp.counts(); return n == 200 })
	out.setCut("a", false) // a comes back and follows
	time.Sleep(ttl)
	if a.Leading() || !b.Leading() {
		t.Errorf("after a is back: a leads %t, b leads %t; want b only", a.Leading(), b.Leading())
	}
	if _, most := exp.counts(); most > 1 {
		t.Errorf("a call was delivered %d times, want once: nothing was in flight at the takeover", most)
	}
}

// TestExportLoopLeaseFenced: a holder that lost its lease while exporting
// (paused past its lease) cannot move the cursor; the batch it was
// exporting is delivered again by the new holder, and only that batch.
func TestExportLoopLeaseFenced(t *testing.T) {
	const ttl = 200 * time.Millisecond
	out := newLeaseOutbox(100)
	slow := &pausingExporter{flakyExporter: flakyExporter{accepted: map[string]int{}}, pause: make(chan struct{})}
	a := llmscope.NewExportLoop(out, slow, llmscope.ExportConfig{Batch: 20, Poll: 5 * time.Millisecond, Owner: "a", LeaseTTL: ttl})
	runLoop(t, a)
	waitFor(t, "a exports its first batch", 5*time.Second, func() bool { return slow.started() })
	out.setCut("a", true) // a's renewals fail while its Export hangs
	b := llmscope.NewExportLoop(out, &slow.flakyExporter, llmscope.ExportConfig{Batch: 20, Poll: 5 * time.Millisecond, Owner: "b", LeaseTTL: ttl})
	runLoop(t, b)
	waitFor(t, "100 calls delivered by b", 5*time.Second, func() bool { n, _ := slow.counts(); return n == 100 })
	out.setCut("a", false)
	close(slow.pause) // a's Export returns; its cursor write is fenced off
	waitFor(t, "a follows", 5*time.Second, func() bool { return !a.Leading() })
	time.Sleep(ttl)
	if c, _ := out.Cursor(t.Context(), "test"); c != 100 {
		t.Errorf("cursor %d, want 100", c)
	}
	twice := 0
	slow.mu.Lock()
	for _, n := range slow.accepted {
		if n > 1 {
			twice++
		}
	}
	slow.mu.Unlock()
	if twice > 20 {
		t.Errorf("%d calls delivered twice, want at most one batch (20)", twice)
	}
}

// pausingExporter's first Export hangs until pause is closed, then accepts.
type pausingExporter struct {
	flakyExporter
	pause chan struct{}
	once  sync.Once
	began bool
}

func (p *pausingExporter) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.began
}

func (p *pausingExporter) Export(ctx context.Context, calls []*llmscope.Call) error {
	first := false
	p.once.Do(func() { first = true })
	if first {
		p.mu.Lock()
		p.began = true
		p.mu.Unlock()
		<-p.pause // a paused process: it does not see its context either
	}
	return p.flakyExporter.Export(ctx, calls)
}

// TestExportLoopLeaseRelease: a loop that stops releases its lease, so a
// follower takes over at its next try rather than at the lease's expiry;
// Drain while another process holds the lease exports nothing and returns.
func TestExportLoopLeaseRelease(t *testing.T) {
	const ttl = 3 * time.Second
	out := newLeaseOutbox(10)
	exp := &flakyExporter{accepted: map[string]int{}}
	var mu sync.Mutex
	said := map[string][]bool{} // OnLeading calls by owner
	cfg := func(owner string) llmscope.ExportConfig {
		return llmscope.ExportConfig{Poll: 5 * time.Millisecond, Owner: owner, LeaseTTL: ttl, OnLeading: func(leading bool) {
			mu.Lock()
			defer mu.Unlock()
			said[owner] = append(said[owner], leading)
		}}
	}
	a := llmscope.NewExportLoop(out, exp, cfg("a"))
	stopA := runLoop(t, a)
	waitFor(t, "a leads", time.Second, a.Leading)
	b := llmscope.NewExportLoop(out, exp, cfg("b"))
	runLoop(t, b)
	out.add(5)
	if err := llmscope.NewExportLoop(out, exp, cfg("c")).Drain(t.Context()); err != nil {
		t.Errorf("Drain while another holds the lease: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // b has tried once and follows
	stopA()
	if a.Leading() {
		t.Error("a still leads after Run ended")
	}
	took := waitFor(t, "b takes over", ttl, b.Leading)
	t.Logf("takeover %v after a clean stop (ttl %v)", took, ttl)
	waitFor(t, "15 calls delivered", time.Second, func() bool { n, _ := exp.counts(); return n == 15 })
	mu.Lock()
	defer mu.Unlock()
	// a led then gave the lease up; b followed, then led.
	if got := said["a"]; len(got) < 2 || !got[0] || got[len(got)-1] {
		t.Errorf("OnLeading for a: %v, want true first and false last", got)
	}
	if got := said["b"]; len(got) < 2 || got[0] || !got[len(got)-1] {
		t.Errorf("OnLeading for b: %v, want false first and true last", got)
	}
}
