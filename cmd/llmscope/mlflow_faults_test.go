package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
)

// metric returns the value of one sample line of base's /metrics, or "".
func metric(t *testing.T, base, sample string) string {
	t.Helper()
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestMLflowFaults: a 401, a malformed OTLP answer and a param conflict each
// give a log line and a counter; the exporter is never stuck and the gateway
// keeps answering.
func TestMLflowFaults(t *testing.T) {
	ml := mlflowtest.Start(t)
	target, _ := url.Parse(ml.URL)
	var mode atomic.Value
	mode.Store("unauthorized")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(r *http.Response) error {
		if mode.Load() == "malformed" && r.Request.URL.Path == "/v1/traces" && r.StatusCode == 200 {
			r.Body = io.NopCloser(strings.NewReader("<html>this is not protobuf</html>"))
			r.Header.Set("Content-Type", "text/html")
			r.ContentLength = -1
			r.Header.Del("Content-Length")
		}
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode.Load() == "unauthorized" {
			http.Error(w, `{"error_code":"UNAUTHENTICATED","message":"You are not authenticated."}`, http.StatusUnauthorized)
			return
		}
		r.Host = target.Host
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	_, base, _, stderr := startServe(t, "--mlflow", front.URL)
	ctx := context.Background()
	client, _ := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})

	// 401: the gateway answers, the exporter fails, counts, logs and reports degraded.
	chatCall(t, base, false, 0.2, map[string]string{"X-Llmscope-Experiment": "faults"})
	eventually(t, "an export failure counted", 30*time.Second, func() bool {
		return metric(t, base, `llmscope_export_failures_total{exporter="mlflow"}`) != ""
	})
	r, _ := http.Get(base + "/healthz")
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 503 || !strings.Contains(string(body), "401") {
		t.Errorf("healthz during 401s: %d %s", r.StatusCode, body)
	}
	if !strings.Contains(stderr.String(), "export failed") || !strings.Contains(stderr.String(), "401") {
		t.Errorf("no clear log line for the 401:\n%s", stderr.String())
	}

	// Malformed OTLP answers: data counts as accepted, a counter says so.
	mode.Store("malformed")
	eventually(t, "a malformed answer counted", 60*time.Second, func() bool {
		return metric(t, base, `llmscope_export_problems_total{exporter="mlflow",kind="malformed_response"}`) != ""
	})
	if !strings.Contains(stderr.String(), "malformed") {
		t.Errorf("no log line for the malformed answer")
	}

	// A param conflict: once llmscope knows the run, someone else logs
	// temperature=0.9 to it; llmscope's next call sends temperature 0.2.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"no temperature here"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Llmscope-Experiment", "faults")
	req.Header.Set("X-Llmscope-Run", "conflict")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expID, err := client.EnsureExperiment(ctx, "faults")
	if err != nil {
		t.Fatal(err)
	}
	var run mlflow.Run
	eventually(t, "the run created by llmscope", 30*time.Second, func() bool {
		runs, err := client.SearchRuns(ctx, []string{expID}, "tags.`llmscope.run` = 'conflict'")
		if err != nil || len(runs) != 1 {
			return false
		}
		run = runs[0]
		return true
	})
	if err := client.LogBatch(ctx, run.ID, nil, []mlflow.Param{{Key: "temperature", Value: "0.9"}}, nil); err != nil {
		t.Fatal(err)
	}
	id := chatCall(t, base, false, 0.2, map[string]string{"X-Llmscope-Experiment": "faults", "X-Llmscope-Run": "conflict"})
	eventually(t, "the conflict counted and the call delivered anyway", 60*time.Second, func() bool {
		if metric(t, base, `llmscope_export_problems_total{exporter="mlflow",kind="param_conflict"}`) == "" {
			return false
		}
		_, ok := traces(t, client, expID, "")["tr-"+strings.ReplaceAll(id, "-", "")]
		return ok
	})
	got, _ := client.GetRun(ctx, run.ID)
	if got.Params["temperature"] != "0.9" || got.Tags["llmscope.varied.temperature"] != "true" {
		t.Errorf("after the conflict: params %v tags %v", got.Params, got.Tags)
	}
	if !strings.Contains(stderr.String(), "refused a param value") {
		t.Errorf("no log line for the param conflict")
	}
	// And the exporter caught up: healthy again.
	eventually(t, "healthy again", 30*time.Second, func() bool {
		r, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
}
