package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestClient(t *testing.T, h http.HandlerFunc, cfg Config) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.TrackingURI = srv.URL
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Millisecond
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error_code":%q,"message":%q}`, code, msg)
}

func TestNewClientValidatesURI(t *testing.T) {
	for _, u := range []string{"", "localhost:5000", "ftp://x", "http://", "::"} {
		if _, err := NewClient(Config{TrackingURI: u}); err == nil {
			t.Errorf("NewClient(%q): want error", u)
		}
	}
	c, err := NewClient(Config{TrackingURI: "https://host:8443/mlflow/"})
	if err != nil || c.URL() != "https://host:8443/mlflow" {
		t.Fatalf("got %v, %v", c, err)
	}
}

func TestRetryOn503ThenSuccess(t *testing.T) {
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) != `{"name":"e"}` {
			t.Errorf("attempt %d: body %q", n.Load(), body)
		}
		if n.Add(1) <= 2 {
			writeErr(w, 503, "TEMPORARILY_UNAVAILABLE", "busy")
			return
		}
		io.WriteString(w, `{"experiment_id":"7"}`)
	}, Config{})
	id, err := c.CreateExperiment(context.Background(), "e")
	if err != nil || id != "7" {
		t.Fatalf("got %q, %v", id, err)
	}
	if n.Load() != 3 {
		t.Fatalf("attempts = %d, want 3", n.Load())
	}
}

func TestRetryGivesUpAfterMaxRetries(t *testing.T) {
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(502)
	}, Config{MaxRetries: 2})
	_, err := c.GetRun(context.Background(), "r")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 502 || n.Load() != 3 {
		t.Fatalf("err=%v attempts=%d", err, n.Load())
	}
}

func TestNoRetryOn400(t *testing.T) {
	var n atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeErr(w, 400, "INVALID_PARAMETER_VALUE", "bad")
	}, Config{})
	err := c.SetTag(context.Background(), "r", "k", "v")
	if !IsCode(err, "INVALID_PARAMETER_VALUE") || n.Load() != 1 {
		t.Fatalf("err=%v attempts=%d", err, n.Load())
	}
	if !strings.HasPrefix(err.Error(), "mlflow: set tag: HTTP 400 INVALID_PARAMETER_VALUE: bad") {
		t.Fatalf("message %q", err)
	}
}

func TestRetryOnConnectionErrorHonorsContext(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c, err := NewClient(Config{TrackingURI: url, MaxRetries: 100, RetryBase: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var sleeps atomic.Int32
	c.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps.Add(1)
		return sleepCtx(ctx, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetRun(ctx, "r")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if sleeps.Load() < 2 || time.Since(start) > 2*time.Second {
		t.Fatalf("sleeps=%d elapsed=%s", sleeps.Load(), time.Since(start))
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	c, _ := NewClient(Config{TrackingURI: "http://x", RetryBase: 100 * time.Millisecond})
	for attempt := 0; attempt < 12; attempt++ {
		cap := min(100*time.Millisecond<<attempt, maxBackoff)
		for i := 0; i < 50; i++ {
			if d := c.backoff(attempt); d < 0 || d > cap {
				t.Fatalf("attempt %d: %s outside [0,%s]", attempt, d, cap)
			}
		}
	}
}

func TestAuthHeaders(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Token: "tok"}, "Bearer tok"},
		{Config{Token: "tok", Username: "u", Password: "p"}, "Bearer tok"},
		{Config{Username: "user", Password: "pa:ss"}, "Basic dXNlcjpwYTpzcw=="},
		{Config{}, ""},
	} {
		var got string
		c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			got = r.Header.Get("Authorization")
			io.WriteString(w, `{"experiment":{"experiment_id":"1","name":"n","lifecycle_stage":"active"}}`)
		}, tc.cfg)
		e, err := c.GetExperimentByName(context.Background(), "n")
		if err != nil || e.ID != "1" || e.LifecycleStage != "active" {
			t.Fatalf("%+v %v", e, err)
		}
		if got != tc.want {
			t.Errorf("cfg %+v: Authorization %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestAPIErrorDecoding(t *testing.T) {
	for _, tc := range []struct {
		status     int
		body       string
		code, msg  string
		isNotExist bool
	}{
		{404, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Could not find experiment"}`, "RESOURCE_DOES_NOT_EXIST", "Could not find experiment", true},
		{400, `{"detail":"Invalid OpenTelemetry format"}`, "", "Invalid OpenTelemetry format", false},
		{422, `{"detail":[{"type":"missing"}]}`, "", `[{"type":"missing"}]`, false},
		{403, `Invalid Host header`, "", "Invalid Host header", false},
		{401, ``, "", "Unauthorized", false},
	} {
		c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}, Config{})
		_, err := c.GetExperimentByName(context.Background(), "x")
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%d: %v is not an APIError", tc.status, err)
		}
		if ae.Status != tc.status || ae.Code != tc.code || ae.Message != tc.msg {
			t.Errorf("got %+v, want %d %q %q", ae, tc.status, tc.code, tc.msg)
		}
		if IsCode(err, "RESOURCE_DOES_NOT_EXIST") != tc.isNotExist {
			t.Errorf("%d: IsCode mismatch", tc.status)
		}
	}
	if IsCode(errors.New("x"), "") || IsCode(nil, "") {
		t.Error("IsCode on a non-API error")
	}
}

func TestEnsureExperimentRace(t *testing.T) {
	var gets atomic.Int32
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/2.0/mlflow/experiments/get-by-name":
			if gets.Add(1) == 1 {
				writeErr(w, 404, "RESOURCE_DOES_NOT_EXIST", "no")
				return
			}
			io.WriteString(w, `{"experiment":{"experiment_id":"9"}}`)
		case "/api/2.0/mlflow/experiments/create":
			writeErr(w, 400, "RESOURCE_ALREADY_EXISTS", "someone else won")
		}
	}, Config{})
	id, err := c.EnsureExperiment(context.Background(), "e")
	if err != nil || id != "9" {
		t.Fatalf("got %q, %v", id, err)
	}
}

type batchBody struct {
	RunID   string       `json:"run_id"`
	Metrics []wireMetric `json:"metrics"`
	Params  []wireKV     `json:"params"`
	Tags    []wireKV     `json:"tags"`
}

// batchRecorder is a fake log-batch endpoint that enforces MLflow's limits.
func batchRecorder(t *testing.T) (http.HandlerFunc, func() []batchBody) {
	var mu sync.Mutex
	var got []batchBody
	h := func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b batchBody
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Errorf("bad body: %v", err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if len(raw) > MaxBatchBodyBytes || len(b.Metrics) > 1000 || len(b.Params) > 100 || len(b.Tags) > 100 ||
			len(b.Metrics)+len(b.Params)+len(b.Tags) > 1000 || len(b.Metrics)+len(b.Params)+len(b.Tags) == 0 {
			t.Errorf("request over limits: %d bytes, %d metrics, %d params, %d tags",
				len(raw), len(b.Metrics), len(b.Params), len(b.Tags))
		}
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		io.WriteString(w, `{}`)
	}
	return h, func() []batchBody { mu.Lock(); defer mu.Unlock(); return got }
}

func TestLogBatchSplitting(t *testing.T) {
	h, got := batchRecorder(t)
	c := newTestClient(t, h, Config{})
	var ms []Metric
	for i := range 2500 {
		ms = append(ms, Metric{Key: fmt.Sprintf("m%d", i%7), Value: float64(i), Timestamp: int64(1000 + i), Step: int64(i)})
	}
	var ps []Param
	for i := range 150 {
		ps = append(ps, Param{fmt.Sprintf("p%03d", i), fmt.Sprint(i)})
	}
	ts := []Tag{{"a", "1"}, {"b", "2"}}
	if err := c.LogBatch(context.Background(), "run1", ms, ps, ts); err != nil {
		t.Fatal(err)
	}
	bodies := got()
	if len(bodies) != 3 { // 2652 items, ≤1000 per request, params split 100+50
		t.Fatalf("%d requests, want 3", len(bodies))
	}
	seenM, seenP, seenT := map[int64]bool{}, map[string]bool{}, map[string]bool{}
	for _, b := range bodies {
		if b.RunID != "run1" {
			t.Errorf("run_id %q", b.RunID)
		}
		for _, m := range b.Metrics {
			if float64(m.Value) != float64(m.Step) || int64(m.Timestamp) != 1000+int64(m.Step) {
				t.Errorf("metric mangled: %+v", m)
			}
			seenM[int64(m.Step)] = true
		}
		for _, p := range b.Params {
			seenP[p.Key] = true
		}
		for _, tg := range b.Tags {
			seenT[tg.Key] = true
		}
	}
	if len(seenM) != 2500 || len(seenP) != 150 || len(seenT) != 2 {
		t.Fatalf("lost items: %d metrics, %d params, %d tags", len(seenM), len(seenP), len(seenT))
	}
}

func TestLogBatchSplitsBySize(t *testing.T) {
	h, got := batchRecorder(t)
	c := newTestClient(t, h, Config{})
	var ts []Tag
	for i := range 250 { // 250 × ~8 KB > 1 MB and > 100 tags
		ts = append(ts, Tag{fmt.Sprintf("t%d", i), strings.Repeat("x", 8000)})
	}
	if err := c.LogBatch(context.Background(), "r", nil, nil, ts); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range got() {
		n += len(b.Tags)
	}
	if n != 250 || len(got()) != 3 {
		t.Fatalf("%d tags in %d requests", n, len(got()))
	}
	// Escaped characters grow the body: "<" becomes \u003c (6 bytes).
	h2, got2 := batchRecorder(t)
	c2 := newTestClient(t, h2, Config{})
	ts = ts[:0]
	for i := range 100 {
		ts = append(ts, Tag{fmt.Sprintf("t%d", i), strings.Repeat("<", 8000)})
	}
	if err := c2.LogBatch(context.Background(), "r", nil, nil, ts); err != nil {
		t.Fatal(err)
	}
	if len(got2()) < 5 {
		t.Fatalf("%d requests for ~4.8 MB of tags", len(got2()))
	}
}

func TestLogBatchTruncatesAndEmpty(t *testing.T) {
	h, got := batchRecorder(t)
	c := newTestClient(t, h, Config{})
	if err := c.LogBatch(context.Background(), "r", nil, nil, nil); err != nil || len(got()) != 0 {
		t.Fatalf("empty batch sent %d requests (%v)", len(got()), err)
	}
	long := strings.Repeat("é", 9000) // 2 bytes per character
	err := c.LogBatch(context.Background(), "r",
		[]Metric{{Key: long, Value: math.NaN()}, {Key: "inf", Value: math.Inf(-1)}},
		[]Param{{long, long}}, []Tag{{long, long}})
	if err != nil {
		t.Fatal(err)
	}
	b := got()[0]
	runes := func(s string) int { return len([]rune(s)) }
	if runes(b.Params[0].Key) != 250 || runes(b.Params[0].Value) != 6000 ||
		runes(b.Tags[0].Key) != 250 || runes(b.Tags[0].Value) != 8000 || runes(b.Metrics[0].Key) != 250 {
		t.Fatalf("lengths: %d %d %d %d %d", runes(b.Params[0].Key), runes(b.Params[0].Value),
			runes(b.Tags[0].Key), runes(b.Tags[0].Value), runes(b.Metrics[0].Key))
	}
	if !math.IsNaN(float64(b.Metrics[0].Value)) || !math.IsInf(float64(b.Metrics[1].Value), -1) {
		t.Fatalf("non-finite values: %v %v", b.Metrics[0].Value, b.Metrics[1].Value)
	}
	if truncate("abc", 5) != "abc" || truncate("abcdef", 3) != "abc" || truncate("ééé", 2) != "éé" {
		t.Fatal("truncate")
	}
}

func TestUpdateRunAndSearchPaging(t *testing.T) {
	var bodies []map[string]any
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		bodies = append(bodies, m)
		switch r.URL.Path {
		case "/api/2.0/mlflow/runs/update":
			io.WriteString(w, `{}`)
		case "/api/2.0/mlflow/runs/search":
			if m["page_token"] == nil {
				io.WriteString(w, `{"runs":[{"info":{"run_id":"a","start_time":"5"}}],"next_page_token":"p2"}`)
				return
			}
			io.WriteString(w, `{"runs":[{"info":{"run_id":"b"},"data":{"metrics":[{"key":"x","value":"NaN"}],"params":[{"key":"k","value":"v"}]}}]}`)
		}
	}, Config{})
	ctx := context.Background()
	if err := c.UpdateRun(ctx, "r", "DONE", time.Time{}); err == nil {
		t.Fatal("invalid status accepted")
	}
	if err := c.UpdateRun(ctx, "r", StatusFinished, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := bodies[0]["end_time"]; ok {
		t.Fatal("zero end time sent")
	}
	if err := c.UpdateRun(ctx, "r", StatusFailed, time.UnixMilli(42)); err != nil || bodies[1]["end_time"] != 42.0 {
		t.Fatalf("end_time %v (%v)", bodies[1]["end_time"], err)
	}
	runs, err := c.SearchRuns(ctx, []string{"1"}, "tags.x = 'y'")
	if err != nil || len(runs) != 2 || runs[0].ID != "a" || runs[0].StartTime != 5 || runs[1].Params["k"] != "v" ||
		!math.IsNaN(runs[1].Metrics["x"]) {
		t.Fatalf("%+v %v", runs, err)
	}
	if bodies[2]["filter"] != "tags.x = 'y'" || bodies[3]["page_token"] != "p2" {
		t.Fatalf("search bodies %v %v", bodies[2], bodies[3])
	}
}
