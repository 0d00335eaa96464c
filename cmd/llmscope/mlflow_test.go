package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
)

// chatCall sends one chat request through the gateway at base and returns
// its call id.
func chatCall(t *testing.T, base string, stream bool, temperature float64, headers map[string]string) string {
	t.Helper()
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"temperature":%g,"max_tokens":64,"messages":[{"role":"user","content":"Name a colour."}]}`, stream, temperature)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Llmscope-Call-Id")
}

// storedCalls reads the calls of a run from the gateway's API, oldest first.
func storedCalls(t *testing.T, base, query string) []llmscope.Call {
	t.Helper()
	r, err := http.Get(base + "/api/calls?limit=1000&" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var list struct{ Calls []llmscope.Call }
	if err := json.NewDecoder(r.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Calls, func(i, j int) bool { return list.Calls[i].Start.Before(list.Calls[j].Start) })
	return list.Calls
}

// traces returns the trace infos of an experiment, keyed by trace id.
func traces(t *testing.T, c *mlflow.Client, expID, filter string) map[string]map[string]any {
	t.Helper()
	raw, err := c.SearchTraces(context.Background(), []string{expID}, filter, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range raw {
		var info map[string]any
		if err := json.Unmarshal(r, &info); err != nil {
			t.Fatal(err)
		}
		id, _ := info["trace_id"].(string)
		out[id] = info
	}
	return out
}

func eventually(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestMLflowExportEndToEnd(t *testing.T) {
	ml := mlflowtest.Start(t)
	_, base, _, stderr := startServe(t, "--mlflow", ml.URL, "--run-idle", "2s")
	ctx := context.Background()
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}

	run := map[string]string{"X-Llmscope-Experiment": "exp-a", "X-Llmscope-Run": "sweep-1", "X-Llmscope-User": "ann"}
	var runIDs []string
	for i, stream := range []bool{false, true, false, true} {
		temp := 0.2
		if i == 3 {
			temp = 0.9 // a value that varies inside the run
		}
		runIDs = append(runIDs, chatCall(t, base, stream, temp, run))
	}
	unnamed := map[string]string{"X-Llmscope-Experiment": "exp-b"}
	var unnamedIDs []string
	for _, stream := range []bool{true, false, true} {
		unnamedIDs = append(unnamedIDs, chatCall(t, base, stream, 0.5, unnamed))
	}

	var expA, expB string
	eventually(t, "both experiments", 30*time.Second, func() bool {
		a, errA := client.GetExperimentByName(ctx, "exp-a")
		b, errB := client.GetExperimentByName(ctx, "exp-b")
		if errA != nil || errB != nil {
			return false
		}
		expA, expB = a.ID, b.ID
		return true
	})
	eventually(t, "one trace per call", 30*time.Second, func() bool {
		return len(traces(t, client, expA, "")) == 4 && len(traces(t, client, expB, "")) == 3
	})

	// The named run: params from the first call, the varied one tagged,
	// per-call metrics whose steps and values are the store's.
	runs, err := client.SearchRuns(ctx, []string{expA}, "tags.`llmscope.run` = 'sweep-1'")
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs named sweep-1: %v, %v", runs, err)
	}
	r, err := client.GetRun(ctx, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "sweep-1" || r.Params["model"] != "gpt-4o-mini" || r.Params["temperature"] != "0.2" || r.Params["max_tokens"] != "64" {
		t.Errorf("run %q params %v", r.Name, r.Params)
	}
	if r.Tags["llmscope.varied.temperature"] != "true" {
		t.Errorf("varied temperature not tagged: %v", r.Tags)
	}
	stored := storedCalls(t, base, "run=sweep-1")
	if len(stored) != 4 {
		t.Fatalf("store holds %d calls of the run", len(stored))
	}
	for key, value := range map[string]func(c llmscope.Call) float64{
		"latency_ms":        func(c llmscope.Call) float64 { return c.DurationMS },
		"prompt_tokens":     func(c llmscope.Call) float64 { return float64(c.Usage.InputTokens) },
		"completion_tokens": func(c llmscope.Call) float64 { return float64(c.Usage.OutputTokens) },
		"cost_usd":          func(c llmscope.Call) float64 { return c.Cost.TotalUSD },
	} {
		hist, err := client.MetricHistory(ctx, r.ID, key)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(hist, func(i, j int) bool { return hist[i].Step < hist[j].Step })
		if len(hist) != 4 {
			t.Errorf("%s: %d points, want 4", key, len(hist))
			continue
		}
		for i, m := range hist {
			if m.Step != int64(i+1) || m.Value != value(stored[i]) {
				t.Errorf("%s[%d] = step %d value %v, want step %d value %v", key, i, m.Step, m.Value, i+1, value(stored[i]))
			}
		}
	}
	if hist, _ := client.MetricHistory(ctx, r.ID, "ttft_ms"); len(hist) != 2 {
		t.Errorf("ttft_ms has %d points, want 2 (the streamed calls)", len(hist))
	}

	// Traces: one per call, id from the call, usage and cost in the trace
	// info, the run's traces linked to the run.
	linked := traces(t, client, expA, "attributes.run_id = '"+r.ID+"'")
	if len(linked) != 4 {
		t.Errorf("%d traces linked to the run, want 4", len(linked))
	}
	for _, c := range stored {
		info, ok := linked["tr-"+c.TraceID]
		if !ok {
			t.Errorf("no trace tr-%s for call %s", c.TraceID, c.ID)
			continue
		}
		meta, _ := info["trace_metadata"].(map[string]any)
		var usage struct{ InputTokens, OutputTokens int64 }
		_ = json.Unmarshal([]byte(fmt.Sprint(meta["mlflow.trace.tokenUsage"])), &struct {
			In  *int64 `json:"input_tokens"`
			Out *int64 `json:"output_tokens"`
		}{&usage.InputTokens, &usage.OutputTokens})
		var cost struct {
			Total float64 `json:"total_cost"`
		}
		_ = json.Unmarshal([]byte(fmt.Sprint(meta["mlflow.trace.cost"])), &cost)
		if usage.InputTokens != c.Usage.InputTokens || usage.OutputTokens != c.Usage.OutputTokens || cost.Total != c.Cost.TotalUSD {
			t.Errorf("trace of %s: usage %+v cost %v; store has %+v, %v", c.ID, usage, cost.Total, c.Usage, c.Cost.TotalUSD)
		}
		if meta["mlflow.trace.user"] != "ann" {
			t.Errorf("trace of %s: user %v", c.ID, meta["mlflow.trace.user"])
		}
	}
	full, err := client.GetTrace(ctx, "tr-"+stored[0].TraceID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(full), "gpt-4o-mini") || !strings.Contains(string(full), "CHAT_MODEL") {
		t.Errorf("trace spans lack model or span type: %.400s", full)
	}

	// Unnamed traffic: traces plus the rollup run.
	rollups, err := client.SearchRuns(ctx, []string{expB}, "tags.`llmscope.rollup` = 'true'")
	if err != nil || len(rollups) != 1 || !strings.HasPrefix(rollups[0].Name, "gateway-") {
		t.Fatalf("rollup runs: %+v, %v", rollups, err)
	}

	// After the idle time the named run ends with its summary.
	eventually(t, "the run's summary", 30*time.Second, func() bool {
		r, err := client.GetRun(ctx, runs[0].ID)
		return err == nil && r.Status == "FINISHED" && r.Metrics["calls"] == 4
	})

	// The same, read with MLflow's own Python client.
	py := filepath.Join(filepath.Dir(mlflowtest.Binary()), "python")
	script := `
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
a = mlflow.get_experiment_by_name("exp-a").experiment_id
b = mlflow.get_experiment_by_name("exp-b").experiment_id
runs = mlflow.search_runs(experiment_ids=[a], filter_string="tags.\"llmscope.run\" = 'sweep-1'")
tr = mlflow.search_traces(locations=[a, b], return_type="list")
print(len(runs), runs.iloc[0]["params.temperature"], len(tr))
`
	out, err := exec.Command(py, "-c", script, ml.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("python check: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "1 0.2 7") {
		t.Errorf("python mlflow client sees %q, want runs=1 temperature=0.2 traces=7", got)
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("serve logged errors:\n%s", stderr.String())
	}
	_ = os.Getenv
}
