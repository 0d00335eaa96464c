package llmscope_test

import (
	"context"
	"encoding/json"
	"errors"
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
