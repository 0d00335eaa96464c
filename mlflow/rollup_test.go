package mlflow

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// storeStats answers Stats over a fixed set of calls, as a store would.
type storeStats struct {
	mu    sync.Mutex
	calls []*llmscope.Call
}

func (s *storeStats) add(calls ...*llmscope.Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, calls...)
}

func (s *storeStats) Stats(_ context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := llmscope.NewStatsBuilder(f)
	if err != nil {
		return nil, err
	}
	for _, c := range s.calls {
		if f.Experiment != "" && c.Experiment != f.Experiment || f.NoRun && c.Run != "" ||
			c.Start.Before(f.Since) || !f.Until.IsZero() && !c.Start.Before(f.Until) {
			continue
		}
		var cost *float64
		if c.Cost != nil {
			cost = &c.Cost.TotalUSD
		}
		b.Add([][]byte{[]byte(c.Model())}, c.Failed(), &c.Usage, cost, c.DurationMS, 0)
	}
	return b.Stats(0), nil
}

// point is one logged metric value.
type point struct {
	run, key string
	step     int64
	value    float64
}

// rollupTracking is a fake MLflow that keeps runs (with tags and start
// times) and logged points, and answers search and metric history from them.
type rollupTracking struct {
	mu     sync.Mutex
	runs   []Run
	points []point
}

func (f *rollupTracking) client(t *testing.T) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{TrackingURI: srv.URL, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *rollupTracking) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	var in struct {
		RunID     string `json:"run_id"`
		RunName   string `json:"run_name"`
		StartTime int64  `json:"start_time"`
		Tags      []struct{ Key, Value string }
		Metrics   []struct {
			Key   string
			Value float64
			Step  int64
		}
		Filter string
	}
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&in)
	}
	enc := json.NewEncoder(w)
	switch {
	case strings.HasSuffix(r.URL.Path, "/experiments/get-by-name"):
		_, _ = w.Write([]byte(`{"experiment":{"experiment_id":"7","name":"e"}}`))
	case strings.HasSuffix(r.URL.Path, "/runs/create"):
		run := Run{ID: "run-" + string(rune('a'+len(f.runs))), Name: in.RunName, StartTime: in.StartTime, Tags: map[string]string{}}
		for _, tg := range in.Tags {
			run.Tags[tg.Key] = tg.Value
		}
		f.runs = append(f.runs, run)
		_ = enc.Encode(map[string]any{"run": map[string]any{"info": map[string]any{"run_id": run.ID, "experiment_id": "7"}}})
	case strings.HasSuffix(r.URL.Path, "/runs/search"):
		var out []map[string]any
		for _, run := range f.runs {
			if strings.Contains(in.Filter, tagShared) && run.Tags[tagShared] != "true" {
				continue
			}
			var tags []map[string]string
			for k, v := range run.Tags {
				tags = append(tags, map[string]string{"key": k, "value": v})
			}
			out = append(out, map[string]any{"info": map[string]any{"run_id": run.ID, "start_time": run.StartTime, "run_name": run.Name},
				"data": map[string]any{"tags": tags}})
		}
		_ = enc.Encode(map[string]any{"runs": out})
	case strings.HasSuffix(r.URL.Path, "/metrics/get-history"):
		var out []map[string]any
		for _, p := range f.points {
			if p.run == r.URL.Query().Get("run_id") && p.key == r.URL.Query().Get("metric_key") {
				out = append(out, map[string]any{"key": p.key, "value": p.value, "step": p.step})
			}
		}
		_ = enc.Encode(map[string]any{"metrics": out})
	case strings.HasSuffix(r.URL.Path, "/runs/log-batch"):
		for _, m := range in.Metrics {
			f.points = append(f.points, point{in.RunID, m.Key, m.Step, m.Value})
		}
		_, _ = w.Write([]byte(`{}`))
	default:
		_, _ = w.Write([]byte(`{}`))
	}
}

// series returns the steps and values of key, in logging order, of every run.
func (f *rollupTracking) series(key string) (runs []string, steps []int64, values []float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.points {
		if p.key == key {
			if !slices.Contains(runs, p.run) {
				runs = append(runs, p.run)
			}
			steps, values = append(steps, p.step), append(values, p.value)
		}
	}
	return runs, steps, values
}

// minuteCalls returns n unnamed calls of experiment e in the minute that
// starts at at, and one call of a named run that the rollup must ignore.
func minuteCalls(at time.Time, n int) []*llmscope.Call {
	var out []*llmscope.Call
	for i := range n {
		out = append(out, &llmscope.Call{ID: llmscope.NewID(), Start: at.Add(time.Duration(i) * time.Second),
			Experiment: "e", Status: 200, DurationMS: float64(10 * (i + 1)),
			Usage: llmscope.Usage{TotalTokens: 7}, Cost: &llmscope.Cost{TotalUSD: 0.5}})
	}
	return append(out, &llmscope.Call{ID: llmscope.NewID(), Start: at, Experiment: "e", Run: "named", Status: 200})
}

func unnamed(calls []*llmscope.Call) []*llmscope.Call {
	return slices.DeleteFunc(slices.Clone(calls), func(c *llmscope.Call) bool { return c.Run != "" })
}

func TestRollupCountsRetriedBatchOnce(t *testing.T) {
	ml := &rollupTracking{}
	stats := &storeStats{}
	traces := &refusingTraces{down: true}
	exp, _ := NewExporter(ExporterConfig{Client: ml.client(t), Traces: traces, Stats: stats})
	minute := time.Now().Add(-time.Hour).Truncate(time.Minute) // a minute long over
	calls := unnamed(minuteCalls(minute, 3))
	stats.add(calls...)
	if err := exp.Export(context.Background(), calls); err == nil {
		t.Fatal("export with traces down succeeded")
	}
	traces.down = false
	if err := exp.Export(context.Background(), calls); err != nil {
		t.Fatal(err)
	}
	if err := exp.Idle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, steps, got := ml.series("requests"); !slices.Equal(got, []float64{3}) || steps[0] != minute.Unix()/60 {
		t.Errorf("rollup requests logged %v at steps %v, want [3] at %d (a retried batch counted once)", got, steps, minute.Unix()/60)
	}
}

// Two gateways share a store: A exports the first minutes and dies; B
// takes over and continues the same run, from the minute after the last
// one A logged, counting every gateway's calls once.
func TestRollupSharedAcrossGateways(t *testing.T) {
	ml := &rollupTracking{}
	client := ml.client(t)
	stats := &storeStats{}
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	m := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	// Minutes 0..2: A exports. Minute 3: A exported its calls but died
	// before the minute was over, so it never logged it.
	a, _ := NewExporter(ExporterConfig{Client: client, Traces: &refusingTraces{}, Stats: stats, Host: "a", SharedRollup: true, Started: t0})
	for i, n := range []int{2, 3, 1, 4} {
		calls := minuteCalls(m(i), n)
		stats.add(calls...)
		if i == 3 {
			// A's last export: the minute is not over by its latest call.
			a.mu.Lock()
			r := a.rollupOf("7", "e")
			r.first = min(r.first, m(i).Unix()/60)
			a.mu.Unlock()
			continue
		}
		if err := a.Export(context.Background(), calls); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.flushRollup(context.Background(), "7", a.rollups["7"], m(3)); err != nil {
		t.Fatal(err)
	}
	// Another gateway stores calls of minute 3 too before B logs it.
	stats.add(minuteCalls(m(3).Add(30*time.Second), 2)...)
	// B takes over: it exports minute 5 and is idle well after.
	b, _ := NewExporter(ExporterConfig{Client: client, Traces: &refusingTraces{}, Stats: stats, Host: "b", SharedRollup: true, Started: t0.Add(time.Hour)})
	later := minuteCalls(m(5), 1)
	stats.add(later...)
	if err := b.Export(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	if err := b.Idle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	runs, steps, got := ml.series("requests")
	base := t0.Unix() / 60
	wantSteps := []int64{base, base + 1, base + 2, base + 3, base + 5}
	if len(runs) != 1 || !slices.Equal(steps, wantSteps) || !slices.Equal(got, []float64{2, 3, 1, 6, 1}) {
		t.Errorf("requests: runs %v, steps %v (want %v), values %v (want [2 3 1 6 1])", runs, steps, wantSteps, got)
	}
	var rollups []Run
	for _, r := range ml.runs {
		if r.Tags[tagRollup] == "true" {
			rollups = append(rollups, r)
		}
	}
	if len(rollups) != 1 || !strings.HasPrefix(rollups[0].Name, "gateway-a-") || rollups[0].Tags[tagShared] != "true" {
		t.Errorf("rollup runs %+v, want one shared run created by gateway a", rollups)
	}
	if _, _, p50 := ml.series("latency_p50_ms"); p50[1] != 20 {
		t.Errorf("latency p50 of minute 1 = %v, want 20", p50[1])
	}
}

// Without a shared store each process has its own rollup run, ended at
// Close with its last minute even if it is not over.
func TestRollupPerProcess(t *testing.T) {
	ml := &rollupTracking{}
	client := ml.client(t)
	stats := &storeStats{}
	now := time.Now().Truncate(time.Minute)
	for i, host := range []string{"a", "b"} {
		exp, _ := NewExporter(ExporterConfig{Client: client, Traces: &refusingTraces{}, Stats: stats, Host: host, Started: now.Add(time.Duration(i) * time.Second)})
		calls := minuteCalls(now, 2+i)
		stats.add(calls...)
		if err := exp.Export(context.Background(), calls); err != nil {
			t.Fatal(err)
		}
		if err := exp.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	runs, _, got := ml.series("requests")
	// b's run counts the minute's unnamed calls of both processes: they
	// are all in the store.
	if len(runs) != 2 || !slices.Equal(got, []float64{2, 5}) {
		t.Errorf("requests: runs %v values %v, want two runs with [2] and [5]", runs, got)
	}
}
