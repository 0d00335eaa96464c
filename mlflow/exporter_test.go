package mlflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// fakeTracking answers the few tracking calls the exporter makes for
// unnamed traffic.
func fakeTracking(t *testing.T) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/experiments/get-by-name"):
			_, _ = w.Write([]byte(`{"experiment":{"experiment_id":"7","name":"e"}}`))
		case strings.HasSuffix(r.URL.Path, "/runs/create"):
			_, _ = w.Write([]byte(`{"run":{"info":{"run_id":"r1","experiment_id":"7"}}}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{TrackingURI: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type permanentErr struct{}

func (permanentErr) Error() string   { return "HTTP 400: Invalid OpenTelemetry format" }
func (permanentErr) Permanent() bool { return true }

// refusingTraces refuses any batch holding a poisoned call, and remembers
// the calls it accepted.
type refusingTraces struct {
	mu       sync.Mutex
	poison   string
	accepted []string
	down     bool
}

func (r *refusingTraces) WriteTraces(_ context.Context, _, _ string, calls []*llmscope.Call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errors.New("connection refused")
	}
	for _, c := range calls {
		if c.ID == r.poison {
			return permanentErr{}
		}
	}
	for _, c := range calls {
		r.accepted = append(r.accepted, c.ID)
	}
	return nil
}

type zeroStats struct{}

func (zeroStats) Stats(context.Context, llmscope.Filter) (*llmscope.Stats, error) {
	return &llmscope.Stats{}, nil
}

func testCalls(n int) []*llmscope.Call {
	calls := make([]*llmscope.Call, n)
	for i := range calls {
		calls[i] = &llmscope.Call{ID: llmscope.NewID(), Seq: int64(i + 1), Start: time.Now(), Experiment: "e", Status: 200}
	}
	return calls
}

func TestRefusedTraceDoesNotBlockTheRest(t *testing.T) {
	calls := testCalls(10)
	traces := &refusingTraces{poison: calls[4].ID}
	var problems []string
	exp, err := NewExporter(ExporterConfig{Client: fakeTracking(t), Traces: traces, Stats: zeroStats{},
		OnProblem: func(k string) { problems = append(problems, k) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(context.Background(), calls); err != nil {
		t.Fatalf("one refused trace failed the batch: %v", err)
	}
	if len(traces.accepted) != 9 || len(problems) != 1 || problems[0] != "trace_refused" {
		t.Errorf("accepted %d of 10, problems %v; want 9 and one trace_refused", len(traces.accepted), problems)
	}
	// A server that is down is not a refusal: the batch fails, to be retried.
	traces.down = true
	if err := exp.Export(context.Background(), testCalls(3)); err == nil {
		t.Error("export to a down server succeeded")
	}
}

func TestConfigOf(t *testing.T) {
	temp, maxc := 0.7, int64(300)
	c := &llmscope.Call{RequestModel: "o4-mini", Params: llmscope.Params{Temperature: &temp, MaxCompletionTokens: &maxc, ReasoningEffort: "low"}}
	got := configOf(c)
	want := map[string]string{"model": "o4-mini", "temperature": "0.7", "max_tokens": "300", "reasoning_effort": "low"}
	if len(got) != len(want) {
		t.Fatalf("configOf = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("configOf[%s] = %q, want %q", k, got[k], v)
		}
	}
}
