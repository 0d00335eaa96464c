package mlflow_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
)

// TestIntegration runs against a real MLflow server (see internal/mlflowtest).
func TestIntegration(t *testing.T) {
	srv := mlflowtest.Start(t)
	c, err := mlflow.NewClient(mlflow.Config{TrackingURI: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Experiments.
	_, err = c.GetExperimentByName(ctx, "llmscope-it")
	if !mlflow.IsCode(err, "RESOURCE_DOES_NOT_EXIST") {
		t.Fatalf("get missing experiment: %v", err)
	}
	expID, err := c.EnsureExperiment(ctx, "llmscope-it")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.EnsureExperiment(ctx, "llmscope-it")
	if err != nil || again != expID {
		t.Fatalf("ensure twice: %q vs %q (%v)", again, expID, err)
	}
	if _, err := c.CreateExperiment(ctx, "llmscope-it"); !mlflow.IsCode(err, "RESOURCE_ALREADY_EXISTS") {
		t.Fatalf("create existing: %v", err)
	}
	e, err := c.GetExperimentByName(ctx, "llmscope-it")
	if err != nil || e.ID != expID || e.Name != "llmscope-it" || e.LifecycleStage != "active" {
		t.Fatalf("%+v %v", e, err)
	}

	// Runs, params, metrics, tags.
	start := time.UnixMilli(time.Now().UnixMilli())
	run, err := c.CreateRun(ctx, expID, "sweep-1", start, map[string]string{"llmscope.run": "x", "owner": "it"})
	if err != nil {
		t.Fatal(err)
	}
	if run.ID == "" || run.Name != "sweep-1" || run.Status != "RUNNING" || run.StartTime != start.UnixMilli() ||
		run.Tags["llmscope.run"] != "x" || run.ExperimentID != expID {
		t.Fatalf("created run %+v", run)
	}
	var ms []mlflow.Metric
	for i := range 1200 { // more than one request
		ms = append(ms, mlflow.Metric{Key: "latency_ms", Value: float64(i) + 0.5, Timestamp: start.UnixMilli() + int64(i), Step: int64(i)})
	}
	ms = append(ms, mlflow.Metric{Key: "cost_usd", Value: 0.000123, Timestamp: start.UnixMilli(), Step: 3})
	params := []mlflow.Param{{Key: "model", Value: "gpt-4o"}, {Key: "temperature", Value: "0.7"},
		{Key: "prompt", Value: strings.Repeat("p", 7000)}}
	tags := []mlflow.Tag{{Key: "llmscope.varied.seed", Value: "true"}}
	if err := c.LogBatch(ctx, run.ID, ms, params, tags); err != nil {
		t.Fatal(err)
	}
	// Same params again (truncated the same way) are accepted.
	if err := c.LogBatch(ctx, run.ID, nil, params, nil); err != nil {
		t.Fatalf("re-log identical params: %v", err)
	}
	if err := c.SetTag(ctx, run.ID, "phase", "eval"); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Params["model"] != "gpt-4o" || got.Params["temperature"] != "0.7" || len(got.Params["prompt"]) != 6000 ||
		got.Tags["llmscope.varied.seed"] != "true" || got.Tags["phase"] != "eval" || got.Tags["owner"] != "it" ||
		got.Metrics["latency_ms"] != 1199.5 || got.Metrics["cost_usd"] != 0.000123 {
		t.Fatalf("read back run: params=%v tags=%v metrics=%v", len(got.Params), got.Tags, got.Metrics)
	}
	hist, err := c.MetricHistory(ctx, run.ID, "latency_ms")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1200 {
		t.Fatalf("history has %d points", len(hist))
	}
	byStep := map[int64]mlflow.Metric{}
	for _, m := range hist {
		byStep[m.Step] = m
	}
	for i := range 1200 {
		m := byStep[int64(i)]
		if m.Value != float64(i)+0.5 || m.Timestamp != start.UnixMilli()+int64(i) || m.Key != "latency_ms" {
			t.Fatalf("step %d: %+v", i, m)
		}
	}

	// A param is immutable.
	err = c.LogBatch(ctx, run.ID, nil, []mlflow.Param{{Key: "model", Value: "gpt-5"}}, nil)
	if !mlflow.IsCode(err, "INVALID_PARAMETER_VALUE") {
		t.Fatalf("changed param: %v", err)
	}

	// Finish, search.
	end := start.Add(3 * time.Second)
	if err := c.UpdateRun(ctx, run.ID, mlflow.StatusFinished, end); err != nil {
		t.Fatal(err)
	}
	other, err := c.CreateRun(ctx, expID, "other", time.Time{}, map[string]string{"llmscope.run": "y"})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := c.SearchRuns(ctx, []string{expID}, "tags.`llmscope.run` = 'x'")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != run.ID || runs[0].Status != "FINISHED" || runs[0].EndTime != end.UnixMilli() {
		t.Fatalf("search: %+v", runs)
	}
	all, err := c.SearchRuns(ctx, []string{expID}, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("search all: %d runs (%v)", len(all), err)
	}
	if _, err := c.GetRun(ctx, "0123456789abcdef"); !mlflow.IsCode(err, "RESOURCE_DOES_NOT_EXIST") {
		t.Fatalf("missing run: %v", err)
	}

	t.Run("traces", func(t *testing.T) { testTraces(ctx, t, c, expID, other.ID) })
}

func testTraces(ctx context.Context, t *testing.T, c *mlflow.Client, expID, runID string) {
	traceID := "5ca1ab1e0123456789abcdef01234567"
	now := time.Now()
	body := otlpRequest(traceID, "00000000000000a1", now, map[string]string{
		"mlflow.spanType":        `"CHAT_MODEL"`,
		"mlflow.chat.tokenUsage": `{"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}`,
		"mlflow.llm.model":       `"gpt-4o"`,
		"mlflow.llm.cost":        `{"input_cost": 0.25, "output_cost": 0.5, "total_cost": 0.75}`,
	})
	if err := c.ExportTraces(ctx, expID, runID, body); err != nil {
		t.Fatal(err)
	}
	tr, err := c.GetTrace(ctx, "tr-"+traceID)
	if err != nil {
		t.Fatal(err)
	}
	var trace struct {
		Info struct {
			TraceID  string            `json:"trace_id"`
			State    string            `json:"state"`
			Metadata map[string]string `json:"trace_metadata"`
		} `json:"trace_info"`
		Spans []struct {
			Name string `json:"name"`
		} `json:"spans"`
	}
	if err := json.Unmarshal(tr, &trace); err != nil {
		t.Fatal(err)
	}
	var usage map[string]int
	json.Unmarshal([]byte(trace.Info.Metadata["mlflow.trace.tokenUsage"]), &usage)
	var cost map[string]float64
	json.Unmarshal([]byte(trace.Info.Metadata["mlflow.trace.cost"]), &cost)
	if trace.Info.TraceID != "tr-"+traceID || trace.Info.State != "OK" || len(trace.Spans) != 1 ||
		usage["total_tokens"] != 18 || cost["total_cost"] != 0.75 {
		t.Fatalf("trace: %s", tr)
	}
	found, err := c.SearchTraces(ctx, []string{expID}, fmt.Sprintf("attributes.run_id = '%s'", runID), 10)
	if err != nil || len(found) != 1 || !strings.Contains(string(found[0]), traceID) {
		t.Fatalf("search traces by run: %d (%v)", len(found), err)
	}
	if _, err := c.GetTrace(ctx, "tr-00000000000000000000000000000000"); !mlflow.IsCode(err, "RESOURCE_DOES_NOT_EXIST") {
		t.Fatalf("missing trace: %v", err)
	}
	err = c.ExportTraces(ctx, expID, "", []byte{0xff, 0xff})
	var ae *mlflow.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Message != "Invalid OpenTelemetry format" {
		t.Fatalf("bad OTLP body: %v", err)
	}
}

// otlpRequest hand-encodes an OTLP ExportTraceServiceRequest holding one
// root span with string attributes (protobuf wire format).
func otlpRequest(traceHex, spanHex string, start time.Time, attrs map[string]string) []byte {
	tid, _ := hex.DecodeString(traceHex)
	sid, _ := hex.DecodeString(spanHex)
	kv := func(k, v string) []byte {
		return cat(pbBytes(1, []byte(k)), pbBytes(2, pbBytes(1, []byte(v))))
	}
	span := cat(pbBytes(1, tid), pbBytes(2, sid), pbBytes(5, []byte("chat gpt-4o")), pbVarint(6, 3),
		pbFixed64(7, uint64(start.UnixNano())), pbFixed64(8, uint64(start.Add(120*time.Millisecond).UnixNano())))
	for k, v := range attrs {
		span = append(span, pbBytes(9, kv(k, v))...)
	}
	span = append(span, pbBytes(15, pbVarint(3, 1))...) // status OK
	resource := pbBytes(1, kv("service.name", "llmscope"))
	scope := cat(pbBytes(1, pbBytes(1, []byte("llmscope"))), pbBytes(2, span))
	return pbBytes(1, cat(pbBytes(1, resource), pbBytes(2, scope)))
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func pbBytes(field int, b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(field<<3|2))
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

func pbVarint(field int, v uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(nil, uint64(field<<3)), v)
}

func pbFixed64(field int, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(binary.AppendUvarint(nil, uint64(field<<3|1)), v)
}

// TestFindRunQuotesNames finds runs back by names that need quoting in
// MLflow's search syntax.
func TestFindRunQuotesNames(t *testing.T) {
	srv := mlflowtest.Start(t)
	c, err := mlflow.NewClient(mlflow.Config{TrackingURI: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	expID, err := c.EnsureExperiment(ctx, "quoting")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{`plain`, `it's`, `back\slash`, `both\'mixed`, `sweep: model=a temperature=0.7 system="Be brief."#ab12`}
	ids := map[string]string{}
	for _, n := range names {
		r, err := c.CreateRun(ctx, expID, n, time.Now(), map[string]string{mlflow.RunTag: n, mlflow.RunKeyTag: mlflow.RunKey(n)})
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = r.ID
	}
	for _, n := range names {
		r, err := c.FindRun(ctx, expID, n)
		if err != nil || r == nil || r.ID != ids[n] {
			t.Errorf("FindRun(%q) = %+v, %v; want run %s", n, r, err, ids[n])
		}
	}
	if r, err := c.FindRun(ctx, expID, "absent"); r != nil || err != nil {
		t.Errorf("FindRun(absent) = %+v, %v", r, err)
	}
}
