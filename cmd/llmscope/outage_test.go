package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
	"llmscope/sqlite"
)

// burst sends n chat calls through base with 8 workers; every 3rd call
// belongs to the named run "outage-run".
func burst(t *testing.T, base string, n, offset int) {
	t.Helper()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				h := map[string]string{"X-Llmscope-Experiment": "outage"}
				if i%3 == 0 {
					h["X-Llmscope-Run"] = "outage-run"
				}
				chatCall(t, base, i%2 == 0, 0.3, h)
			}
		}()
	}
	for i := range n {
		jobs <- offset + i
	}
	close(jobs)
	wg.Wait()
}

// sigProc adapts an *exec.Cmd to stopServe.
type sigProc struct{ cmd *exec.Cmd }

func (p sigProc) Signal(s syscall.Signal) error { return p.cmd.Process.Signal(s) }
func (p sigProc) Wait() error                   { return p.cmd.Wait() }

func stopServe(t *testing.T, cmd interface {
	Signal(syscall.Signal) error
	Wait() error
}) {
	t.Helper()
	if err := cmd.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestMLflowOutage: MLflow dies during 300 calls and comes back later, and
// llmscope restarts once in between; afterwards MLflow holds every call
// exactly once: one trace each, and one metric point per step of the run.
func TestMLflowOutage(t *testing.T) {
	ml := mlflowtest.Start(t)
	db := filepath.Join(t.TempDir(), "shared.db")
	ctx := context.Background()
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}

	first, base, _, _ := startServe(t, "--db", db, "--mlflow", ml.URL, "--shutdown-timeout", "3s")
	burst(t, base, 100, 0)
	ml.Stop() // MLflow dies mid-traffic
	burst(t, base, 100, 100)
	stopServe(t, sigProc{first})

	second, base, _, _ := startServe(t, "--db", db, "--mlflow", ml.URL, "--shutdown-timeout", "3s")
	burst(t, base, 100, 200)
	restarted := time.Now()
	ml.Restart(t)

	exp := ""
	eventually(t, "all 300 traces after MLflow came back", 120*time.Second, func() bool {
		e, err := client.GetExperimentByName(ctx, "outage")
		if err != nil {
			return false
		}
		exp = e.ID
		return len(traces(t, client, exp, "")) >= 300
	})
	caughtUp := time.Since(restarted)
	stopServe(t, sigProc{second})

	store, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored, err := store.List(ctx, llmscope.Filter{Limit: 1000})
	if err != nil || len(stored) != 300 {
		t.Fatalf("store holds %d calls (%v), want 300", len(stored), err)
	}
	got := traces(t, client, exp, "")
	if len(got) != 300 {
		t.Errorf("MLflow holds %d traces, want exactly 300", len(got))
	}
	named := 0
	for _, c := range stored {
		if _, ok := got["tr-"+c.TraceID]; !ok {
			t.Errorf("call %s has no trace", c.ID)
		}
		if c.Run == "outage-run" {
			named++
		}
	}
	checkOneRunSteps(t, client, exp, "outage-run", named)
	t.Logf("backlog after the outage delivered %s after MLflow's restart began (includes its ~6 s start)", caughtUp.Round(time.Millisecond))
}

// checkOneRunSteps checks that experiment exp holds exactly one MLflow run
// tagged llmscope.run = name, whose latency_ms points have the steps 1..n,
// each once.
func checkOneRunSteps(t *testing.T, client *mlflow.Client, exp, name string, n int) {
	t.Helper()
	runs, err := client.SearchRuns(t.Context(), []string{exp}, "tags.`llmscope.run` = '"+name+"'")
	if err != nil || len(runs) != 1 {
		t.Fatalf("MLflow runs named %s: %d (%v), want exactly 1", name, len(runs), err)
	}
	hist, err := client.MetricHistory(t.Context(), runs[0].ID, "latency_ms")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[int64]int{}
	for _, m := range hist {
		steps[m.Step]++
	}
	keys := make([]int64, 0, len(steps))
	for s, k := range steps {
		keys = append(keys, s)
		if k != 1 {
			t.Errorf("step %d logged %d times", s, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	if len(keys) != n || len(keys) == 0 || keys[0] != 1 || keys[len(keys)-1] != int64(n) {
		t.Errorf("run %s has %d distinct steps, want 1..%d", name, len(keys), n)
	}
}
