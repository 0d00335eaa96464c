package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
	"llmscope/postgres"
)

// answer is one call answered 200 by a gateway.
type answer struct {
	id      string
	gateway int
	at      time.Time // when the answer's last byte arrived
}

// scaleoutLoad sends calls numbered from..to-1 to the gateways in turn (a
// gateway whose alive returns false is skipped), every third in the named
// run "scale-run", half of them streamed, with 6 clients; it returns the
// calls answered 200.
func scaleoutLoad(bases []string, alive func(int) bool, from, to int, out chan<- answer) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for i := range jobs {
				g := i % len(bases)
				for !alive(g) {
					g = (g + 1) % len(bases)
				}
				body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"max_tokens":16,"messages":[{"role":"user","content":"scale %d"}]}`, i%2 == 0, i)
				req, _ := http.NewRequest(http.MethodPost, bases[g]+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Llmscope-Experiment", "scaleout")
				if i%3 == 0 {
					req.Header.Set("X-Llmscope-Run", "scale-run")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 {
					out <- answer{resp.Header.Get("X-Llmscope-Call-Id"), g, time.Now()}
				}
			}
		})
	}
	for i := from; i < to; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// TestScaleOutOneTruth runs three gateways on one PostgreSQL and one real
// MLflow, spreads traffic (named run and unnamed calls, streamed and not)
// over them, and SIGKILLs the gateway that exports mid-load without
// restarting it. Afterwards: every call answered 200 is stored exactly once
// (but those the killed gateway answered within its commit window before
// the kill, which the test measures and reports), every stored call is one
// trace in MLflow, and the named run is one MLflow run with steps 1..N.
func TestScaleOutOneTruth(t *testing.T) {
	ml := mlflowtest.Start(t)
	url := newPostgresDB(t)
	type gateway struct {
		kill   func() error
		base   string
		stderr *syncBuffer
	}
	var gws []gateway
	var bases []string
	for range 3 {
		cmd, base, _, stderr := startServe(t, "--db", url, "--mlflow", ml.URL, "--rollup-grace", "1s")
		gws = append(gws, gateway{kill: func() error { return cmd.Process.Signal(syscall.SIGKILL) }, base: base, stderr: stderr})
		bases = append(bases, base)
	}
	var mu sync.Mutex
	dead := -1
	alive := func(g int) bool { mu.Lock(); defer mu.Unlock(); return g != dead }

	answers := make(chan answer, 1000)
	var answered []answer
	collected := make(chan struct{})
	midway := make(chan struct{}) // 250 calls answered: 100 into the second part
	go func() {
		for a := range answers {
			answered = append(answered, a)
			if len(answered) == 250 {
				close(midway)
			}
		}
		close(collected)
	}()

	// Load, then the exporting gateway is killed while more load runs.
	scaleoutLoad(bases, alive, 0, 150, answers)
	leader := -1
	eventually(t, "one gateway exporting", 30*time.Second, func() bool {
		for i, gw := range gws {
			if strings.Contains(gw.stderr.String(), "export lease acquired") {
				leader = i
				return true
			}
		}
		return false
	})
	loadDone := make(chan struct{})
	go func() { scaleoutLoad(bases, alive, 150, 450, answers); close(loadDone) }()
	<-midway
	mu.Lock()
	dead = leader
	mu.Unlock()
	killedAt := time.Now()
	if err := gws[leader].kill(); err != nil {
		t.Fatal(err)
	}
	<-loadDone
	close(answers)
	<-collected

	store, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// The survivors commit what they hold: wait until the count is still.
	var stored []*llmscope.Call
	for last, still := -1, 0; still < 10; time.Sleep(200 * time.Millisecond) {
		if stored, err = store.After(context.Background(), 0, 100000); err != nil {
			t.Fatal(err)
		}
		if len(stored) == last {
			still++
		} else {
			last, still = len(stored), 0
		}
	}
	byID := map[string]int{}
	for _, c := range stored {
		byID[c.ID]++
	}
	for id, n := range byID {
		if n != 1 {
			t.Errorf("call %s stored %d times", id, n)
		}
	}
	// Calls answered but not stored: only the killed gateway's last ones.
	var lost []answer
	for _, a := range answered {
		if byID[a.id] == 0 {
			lost = append(lost, a)
		}
	}
	window := time.Duration(0)
	for _, a := range lost {
		if a.gateway != leader {
			t.Errorf("call %s answered by gateway %d (not killed) is not stored", a.id, a.gateway)
		}
		if d := killedAt.Sub(a.at); d > window {
			window = d
		}
	}
	if window > 2*time.Second {
		t.Errorf("the killed gateway lost calls answered %v before the kill; its commit window is 100 ms", window)
	}
	after := 0
	for _, a := range answered {
		if a.at.After(killedAt) {
			after++
		}
	}
	if after < 100 {
		t.Errorf("only %d calls answered after the kill: it was not mid-load", after)
	}
	t.Logf("%d calls answered (%d after the kill), %d stored; the SIGKILLed gateway lost %d it had answered, the oldest %v before the kill (commit window 100 ms)",
		len(answered), after, len(stored), len(lost), window.Round(time.Millisecond))

	// MLflow: every stored call is one trace; the named run is one run with
	// steps 1..N.
	client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	if err != nil {
		t.Fatal(err)
	}
	exp := ""
	eventually(t, "every stored call in MLflow", 180*time.Second, func() bool {
		e, err := client.GetExperimentByName(t.Context(), "scaleout")
		if err != nil {
			return false
		}
		exp = e.ID
		return len(traces(t, client, exp, "")) >= len(stored)
	})
	time.Sleep(2 * time.Second) // a second delivery would show by now
	got := traces(t, client, exp, "")
	if len(got) != len(stored) {
		t.Errorf("MLflow holds %d traces for %d stored calls, want exactly one each", len(got), len(stored))
	}
	named := 0
	for _, c := range stored {
		if _, ok := got["tr-"+c.TraceID]; !ok {
			t.Errorf("call %s has no trace", c.ID)
		}
		if c.Run == "scale-run" {
			named++
		}
	}
	checkOneRunSteps(t, client, exp, "scale-run", named)
	t.Logf("MLflow: %d traces, named run with steps 1..%d", len(got), named)
	checkSharedRollup(t, client, exp, stored)

	// The survivors' metrics say which one exports now.
	leaders := 0
	for i, gw := range gws {
		if i == leader {
			continue
		}
		v := metric(t, gw.base, `llmscope_export_leader{exporter="mlflow"}`)
		switch v {
		case "1":
			leaders++
		case "0":
		default:
			t.Errorf("gateway %d: llmscope_export_leader = %q, want 0 or 1", i, v)
		}
	}
	if leaders != 1 {
		t.Errorf("%d surviving gateways say they export, want exactly 1", leaders)
	}
}

// checkSharedRollup checks that the unnamed calls of gateways sharing a
// store went into one rollup run, each minute logged once, counting every
// unnamed stored call once: through the takeover, whoever logged a minute.
func checkSharedRollup(t *testing.T, client *mlflow.Client, exp string, stored []*llmscope.Call) {
	t.Helper()
	unnamed, last := 0, time.Time{}
	for _, c := range stored {
		if c.Run == "" {
			unnamed++
			if c.Start.After(last) {
				last = c.Start
			}
		}
	}
	// The last minute with calls is logged once it is over, plus the grace.
	time.Sleep(time.Until(last.Truncate(time.Minute).Add(time.Minute + 2*time.Second)))
	var hist []mlflow.Metric
	var runs []mlflow.Run
	sum := 0.0
	eventually(t, "every unnamed call in the rollup", 60*time.Second, func() bool {
		var err error
		if runs, err = client.SearchRuns(t.Context(), []string{exp}, "tags.`llmscope.rollup` = 'true'"); err != nil || len(runs) != 1 {
			return false
		}
		if hist, err = client.MetricHistory(t.Context(), runs[0].ID, "requests"); err != nil {
			return false
		}
		sum = 0
		for _, m := range hist {
			sum += m.Value
		}
		return sum >= float64(unnamed)
	})
	steps := map[int64]int{}
	for _, m := range hist {
		if steps[m.Step]++; steps[m.Step] > 1 {
			t.Errorf("rollup minute %d logged twice", m.Step)
		}
	}
	if len(runs) != 1 || sum != float64(unnamed) {
		t.Errorf("rollup: %d runs, %v requests over %d minutes; the store holds %d unnamed calls", len(runs), sum, len(hist), unnamed)
	}
	t.Logf("rollup: one run (%s) for all gateways, %d minutes, %v requests", runs[0].Name, len(hist), sum)
}
