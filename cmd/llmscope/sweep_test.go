package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
	"llmscope/sim"
	"llmscope/sqlite"
	"llmscope/sweep"
)

// simAnswer returns the simulator's (deterministic) answer to prompt under
// model, as the sweep's built-in simulator gives it.
func simAnswer(t *testing.T, model, prompt string) string {
	t.Helper()
	srv := httptest.NewServer(sim.New(sim.Config{}))
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": prompt}}})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Choices) == 0 {
		t.Fatalf("simulator answer: %v", err)
	}
	return out.Choices[0].Message.Content
}

// writeDataset writes n items; the first `right` expect gpt-4o-mini's
// simulated answer, the rest an answer no model gives.
func writeDataset(t *testing.T, path string, n, right int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		prompt := fmt.Sprintf("Question %d: name a color.", i)
		want := "no model says this"
		if i < right {
			want = simAnswer(t, "gpt-4o-mini", prompt)
		}
		row, _ := json.Marshal(map[string]string{"id": "q" + strconv.Itoa(i), "prompt": prompt, "expected": want})
		b.Write(row)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSweepEndToEndWithMLflow(t *testing.T) {
	ml := mlflowtest.Start(t)
	dir := t.TempDir()
	writeDataset(t, filepath.Join(dir, "items.jsonl"), 6, 4)
	spec := `name: colors
experiment: sweep-e2e
dataset: items.jsonl
grid:
  model: [gpt-4o-mini, gpt-4.1-nano]
  temperature: [0, 0.5]
scorer:
  type: exact
concurrency: 3
sort_by: accuracy
`
	specPath := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	db, out := filepath.Join(dir, "llmscope.db"), filepath.Join(dir, "results")
	stdout, stderr, code := runCmd(t, "", "sweep", "--spec", specPath, "--upstream", "sim", "--db", db, "--mlflow", ml.URL, "--out", out)
	if code != 0 {
		t.Fatalf("sweep exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// The store: 6 calls per configuration, each tagged with its item.
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	res := readResults(t, filepath.Join(out, "results.json"))
	if len(res.Rows) != 4 {
		t.Fatalf("%d result rows, want 4 configurations", len(res.Rows))
	}
	wantAcc := map[string]float64{"gpt-4o-mini": 4.0 / 6, "gpt-4.1-nano": 0}
	for i, row := range res.Rows {
		st, err := store.Stats(context.Background(), llmscope.Filter{Experiment: "sweep-e2e", Run: row.Run})
		if err != nil {
			t.Fatal(err)
		}
		if row.Calls != st.Totals {
			t.Errorf("row %s: %+v, store says %+v", row.Run, row.Calls, st.Totals)
		}
		if st.Totals.Calls != 6 || row.Done != 6 || row.Failed != 0 {
			t.Errorf("row %s: %d calls, %d done, %d failed; want 6, 6, 0", row.Run, st.Totals.Calls, row.Done, row.Failed)
		}
		if row.Accuracy == nil || math.Abs(*row.Accuracy-wantAcc[row.Model]) > 1e-9 {
			t.Errorf("row %s: accuracy %v, want %v", row.Run, row.Accuracy, wantAcc[row.Model])
		}
		if i > 0 && *res.Rows[i-1].Accuracy < *row.Accuracy {
			t.Errorf("rows not sorted by accuracy: %v before %v", *res.Rows[i-1].Accuracy, *row.Accuracy)
		}
		// The printed table has the row with the store's figures.
		line := fmt.Sprintf("%s  6/6  0  %.1f%%  %s  %.1f  %.1f", row.Config, *row.Accuracy*100, llmscope.FormatUSD(st.Totals.CostUSD), st.Totals.LatencyP50MS, st.Totals.LatencyP95MS)
		if !strings.Contains(squeeze(stdout), squeeze(line)) {
			t.Errorf("table lacks %q:\n%s", line, stdout)
		}
		calls, err := store.List(context.Background(), llmscope.Filter{Run: row.Run, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		items := map[string]bool{}
		for _, c := range calls {
			items[c.Tags[sweep.TagItem]] = true
			if c.Tags[sweep.TagSweep] != "colors" || c.Output == "" || c.Input == "" { // capture is on by default with --mlflow
				t.Errorf("call %s: tags %v, output %q", c.ID, c.Tags, c.Output)
			}
		}
		if len(items) != 6 {
			t.Errorf("run %s covers items %v, want 6", row.Run, items)
		}
	}
	for _, f := range []string{"results.md", "scores.jsonl", "cost_vs_accuracy.png", "cost_vs_accuracy.svg"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("results file %s: %v", f, err)
		}
	}

	// MLflow: one run per configuration, with its params and summary.
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := client.GetExperimentByName(context.Background(), "sweep-e2e")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := client.SearchRuns(context.Background(), []string{exp.ID}, "tags.`llmscope.sweep` = 'colors'")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d MLflow runs tagged with the sweep, want 4", len(runs))
	}
	byName := map[string]mlflow.Run{}
	for _, r := range runs {
		byName[r.Name] = r
	}
	for _, row := range res.Rows {
		r, ok := byName[row.Run]
		if !ok {
			t.Errorf("no MLflow run named %q", row.Run)
			continue
		}
		full, err := client.GetRun(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantTemp := strings.TrimPrefix(strings.Fields(row.Config)[1], "temperature=")
		if full.Params["model"] != row.Model || full.Params["temperature"] != wantTemp || full.Params["sweep"] != "colors" || full.Params["scorer"] != "exact" {
			t.Errorf("run %s params %v", row.Run, full.Params)
		}
		want := map[string]float64{
			"accuracy": *row.Accuracy, "calls": 6, "errors": 0, "latency_p50_ms": row.Calls.LatencyP50MS,
			"latency_p95_ms": row.Calls.LatencyP95MS, "tokens_sum": float64(row.Calls.TotalTokens), "cost_usd_sum": row.Calls.CostUSD,
		}
		for k, v := range want {
			if got, ok := full.Metrics[k]; !ok || math.Abs(got-v) > 1e-9*math.Max(1, math.Abs(v)) {
				t.Errorf("run %s metric %s = %v (present %v), want %v", row.Run, k, got, ok, v)
			}
		}
		scores, err := client.MetricHistory(context.Background(), r.ID, "score")
		if err != nil || len(scores) != 6 {
			t.Errorf("run %s: %d score points (%v), want 6", row.Run, len(scores), err)
		}
		if lat, err := client.MetricHistory(context.Background(), r.ID, "latency_ms"); err != nil || len(lat) != 6 {
			t.Errorf("run %s: %d per-call latency points (%v), want 6", row.Run, len(lat), err)
		}
	}
	if tr := traces(t, client, exp.ID, ""); len(tr) != 24 {
		t.Errorf("%d traces in the experiment, want one per call (24)", len(tr))
	}

	// Run again: nothing to send, the same table, and logging the results
	// again adds no points to the score series.
	stdout2, stderr2, code := runCmd(t, "", "sweep", "--spec", specPath, "--upstream", "sim", "--db", db, "--mlflow", ml.URL, "--out", out)
	if code != 0 || !strings.Contains(stderr2, "resuming: 24 already done, 0 to send") {
		t.Fatalf("second run exited %d:\n%s", code, stderr2)
	}
	if squeeze(stdout2) != squeeze(stdout) {
		t.Errorf("second table differs:\n%s\nfirst:\n%s", stdout2, stdout)
	}
	for _, r := range runs {
		if scores, err := client.MetricHistory(context.Background(), r.ID, "score"); err != nil || len(scores) != 6 {
			t.Errorf("run %s after a second run: %d score points (%v), want 6", r.Name, len(scores), err)
		}
	}
}

// readResults reads a sweep's results.json.
func readResults(t *testing.T, path string) sweep.Results {
	t.Helper()
	var res sweep.Results
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// squeeze collapses runs of spaces, so a test can match a table row
// whatever its alignment.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestSweepResumesAfterCrashAndInterrupt(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeDataset(t, filepath.Join(dir, "items.jsonl"), 20, 10)
	spec := `name: resume
dataset: items.jsonl
grid:
  model: [gpt-4o-mini, gpt-4.1-nano]
concurrency: 2
headers:
  X-Sim-Fault: delay=60ms
`
	if err := os.WriteFile(filepath.Join(dir, "sweep.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"sweep", "--spec", "sweep.yaml", "--upstream", "sim", "--db", "llmscope.db"}
	units := 40
	// progress returns the number of units the items log holds.
	progress := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "sweep-resume", sweep.ItemsFile))
		return bytes.Count(b, []byte("\n"))
	}
	// A crash (SIGKILL) after about a quarter, then Ctrl-C (SIGINT) after
	// about half, then a run to the end.
	for _, stop := range []struct {
		sig   syscall.Signal
		after int
	}{{syscall.SIGKILL, 10}, {syscall.SIGINT, 20}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("%d units in the items log", stop.after), 30*time.Second, func() bool { return progress() >= stop.after })
		_ = cmd.Process.Signal(stop.sig)
		err := cmd.Wait()
		if err == nil {
			t.Fatalf("the sweep finished before %v reached it:\n%s", stop.sig, out.String())
		}
		if stop.sig == syscall.SIGINT && !strings.Contains(out.String(), "run the same command again to resume") {
			t.Errorf("an interrupted sweep does not say how to resume:\n%s", out.String())
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "resuming:") {
		t.Errorf("the last run did not resume:\n%s", out)
	}

	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "llmscope.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	calls, err := store.List(context.Background(), llmscope.Filter{Experiment: "llmscope", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]int{}
	for _, c := range calls {
		if !c.Failed() {
			done[c.Run+"|"+c.Tags[sweep.TagItem]]++
		}
	}
	if len(done) != units {
		t.Errorf("%d units have a successful call, want %d", len(done), units)
	}
	for k, n := range done {
		if n != 1 {
			t.Errorf("unit %s was answered %d times, want once", k, n)
		}
	}
	res := readResults(t, filepath.Join(dir, "sweep-resume", "results.json"))
	for _, row := range res.Rows {
		want := 0.0
		if row.Model == "gpt-4o-mini" {
			want = 0.5
		}
		if row.Done != 20 || row.Accuracy == nil || *row.Accuracy != want {
			t.Errorf("row %s: done %d, accuracy %v; want 20 and %v", row.Run, row.Done, row.Accuracy, want)
		}
	}
}

func TestSweepThroughAGateway(t *testing.T) {
	_, base, _, _ := startServe(t) // no --capture: the answers come from the items log
	dir := t.TempDir()
	writeDataset(t, filepath.Join(dir, "items.jsonl"), 5, 3)
	out := filepath.Join(dir, "out")
	stdout, stderr, code := runCmd(t, "", "sweep", "--dataset", filepath.Join(dir, "items.jsonl"), "--grid", "model=gpt-4o-mini",
		"--grid", "temperature=0.2,0.4", "--gateway", base, "--out", out, "--experiment", "gw-sweep")
	if code != 0 {
		t.Fatalf("sweep exited %d\n%s\n%s", code, stdout, stderr)
	}
	res := readResults(t, filepath.Join(out, "results.json"))
	if len(res.Rows) != 2 {
		t.Fatalf("%d rows, want 2", len(res.Rows))
	}
	for _, row := range res.Rows {
		if row.Done != 5 || row.Accuracy == nil || *row.Accuracy != 0.6 {
			t.Errorf("row %s: done %d, accuracy %v; want 5 and 0.6", row.Run, row.Done, row.Accuracy)
		}
		var st llmscope.Stats
		resp, err := http.Get(base + "/api/stats?experiment=gw-sweep&run=" + url.QueryEscape(row.Run))
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Totals != row.Calls || st.Totals.Calls != 5 {
			t.Errorf("row %s: %+v; the gateway's stats: %+v (%v)", row.Run, row.Calls, st.Totals, err)
		}
	}
}

// TestSweepExampleSpec keeps the README's example valid: its plan covers
// 8 configurations of 10 items, each priced.
func TestSweepExampleSpec(t *testing.T) {
	stdout, stderr, code := runCmd(t, "", "sweep", "--spec", "../../examples/sweep/sweep.yaml", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "8 configurations × 10 items × 1 repeats = 80 requests") || strings.Contains(stdout, "unknown price") {
		t.Errorf("plan:\n%s", stdout)
	}
}

// TestSweepFlagsCompleteAndOverrideASpec: flags fill what a spec leaves
// out, a --dataset path is relative to the working directory, and an
// invalid flag value is blamed on the flag, not on a line of the spec.
func TestSweepFlagsCompleteAndOverrideASpec(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("specs", 0o755); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, "mine.jsonl", 3, 0)
	if err := os.WriteFile("specs/s.yaml", []byte("name: partial\ngrid:\n  temperature: [0.5]\nretries: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCmd(t, "", "sweep", "--spec", "specs/s.yaml", "--dataset", "mine.jsonl", "--grid", "model=gpt-4o-mini,gpt-4o", "--dry-run")
	if code != 0 || !strings.Contains(stdout, "2 configurations × 3 items") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	_, stderr, code = runCmd(t, "", "sweep", "--spec", "specs/s.yaml", "--dataset", "mine.jsonl", "--grid", "model=a", "--grid", "temperature=3", "--dry-run")
	if code != 1 || !strings.Contains(stderr, "llmscope sweep: grid.temperature: 3 is outside 0 to 2") || strings.Contains(stderr, "s.yaml") {
		t.Errorf("exit %d, stderr %q; want the flag's value blamed", code, stderr)
	}
	_, stderr, code = runCmd(t, "", "sweep", "--spec", "specs/s.yaml", "--dry-run")
	if code != 1 || !strings.Contains(stderr, "specs/s.yaml: dataset: missing") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestDirectUpstream(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-test")
	base, key, stop, err := directUpstream("", "0", io.Discard, "sweep")
	if err != nil || base != defaultUpstream || key != "sk-test" {
		t.Errorf("with a key and no upstream: %q %q %v; want OpenAI", base, key, err)
	}
	stop()
	var msg bytes.Buffer
	base, key, stop, err = directUpstream("sim", "0", &msg, "sweep")
	if err != nil || !strings.HasPrefix(base, "http://127.0.0.1:") || key != "sim" || !strings.Contains(msg.String(), "--upstream sim") {
		t.Errorf("sim: %q %q %v %q", base, key, err, msg.String())
	}
	stop()
	t.Setenv("OPENAI_API_KEY", "")
	if _, _, _, err := directUpstream("http://example.invalid/v1", "0", io.Discard, "sweep"); err == nil {
		t.Error("an upstream without a key: no error")
	}
}
