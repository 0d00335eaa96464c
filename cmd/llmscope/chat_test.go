package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"llmscope"
	"llmscope/chat"
	"llmscope/internal/golden"
	"llmscope/internal/mlflowtest"
	"llmscope/mlflow"
	"llmscope/sqlite"
)

var timing = regexp.MustCompile(`ttft \d+ ms · \d+ ms · \d+ tok/s`)

// TestChatPiped drives the chat through a pipe against the simulator and
// compares the transcript with a golden file; each stats line must equal the
// stored call's figures.
func TestChatPiped(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	in := strings.Join([]string{"Hello there", "/temperature 0.2", "/max_tokens 30", "Tell me more", "/model gpt-4o", "One more thing", "/bogus", "/save t.json", "/save t.md", "/quit", "never sent"}, "\n")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"chat", "--db", "chat.db", "--run", "piped", "--sim-tokens-per-second", "0"}, strings.NewReader(in), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "simulator") {
		t.Errorf("no word that the simulator answers: %q", errb.String())
	}
	golden.Equal(t, filepath.Join(testdataDir(t), "chat", "piped.golden"), []byte(timing.ReplaceAllString(out.String(), "ttft <n> ms · <n> ms · <n> tok/s")))

	store, err := sqlite.Open(context.Background(), "chat.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	calls, err := store.List(context.Background(), llmscope.Filter{Run: "piped"})
	if err != nil || len(calls) != 3 {
		t.Fatalf("stored %d calls (%v), want 3", len(calls), err)
	}
	var stats []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "[in ") {
			stats = append(stats, l)
		}
	}
	for i, line := range stats {
		c := calls[len(calls)-1-i] // newest first
		want := fmt.Sprintf("[in %d · out %d tokens · ttft %.0f ms · %.0f ms", c.Usage.InputTokens, c.Usage.OutputTokens, c.TTFTMS, c.DurationMS)
		if !strings.HasPrefix(line, want) || !strings.Contains(line, fmt.Sprintf("$%.6f |", c.Cost.TotalUSD)) {
			t.Errorf("stats line %d %q does not match the store %q $%.6f", i+1, line, want, c.Cost.TotalUSD)
		}
		if c.Session == "" || c.Session != calls[0].Session {
			t.Errorf("calls do not share one session id: %q", c.Session)
		}
	}
	if p := calls[0].Params; p.Temperature == nil || *p.Temperature != 0.2 || p.MaxTokens == nil || *p.MaxTokens != 30 || calls[0].RequestModel != "gpt-4o" {
		t.Errorf("settings not applied: %+v %s", p, calls[0].RequestModel)
	}
	for _, f := range []string{"t.json", "t.md"} {
		if b, err := os.ReadFile(f); err != nil || !bytes.Contains(b, []byte("One more thing")) {
			t.Errorf("/save %s: %v", f, err)
		}
	}
}

func testdataDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(srcDir, "testdata")
}

// srcDir is this package's directory, taken before tests change directory.
var srcDir = func() string { d, _ := os.Getwd(); return d }()

// TestChatTerminal drives the chat through a pseudo-terminal: a streamed
// reply and its stats line, /temperature and /stats, Ctrl-C mid-reply, and
// the session going on.
func TestChatTerminal(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "chat", "--db", filepath.Join(dir, "c.db"), "--sim-tokens-per-second", "15")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	screen := &syncBuffer{}
	go func() { _, _ = io.Copy(screen, tty) }()
	waitFor := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(screen.String(), what) < n {
			if time.Now().After(deadline) {
				t.Fatalf("never saw %q (%d times); screen:\n%s", what, n, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("> ", 1)
	fmt.Fprint(tty, "Tell me a story\r")
	waitFor("[in ", 1)
	fmt.Fprint(tty, "/temperature 0.2\r")
	waitFor("temperature = 0.2", 1)
	fmt.Fprint(tty, "/stats\r")
	waitFor("TURN", 1)
	before := len(screen.String())
	fmt.Fprint(tty, "Another long story please\r")
	deadline := time.Now().Add(20 * time.Second)
	for len(screen.String()) < before+len("Another long story please")+40 { // a few tokens in
		if time.Now().After(deadline) {
			t.Fatalf("the reply did not start; screen:\n%s", screen.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprint(tty, "\x03") // Ctrl-C
	waitFor("cancelled", 1)
	waitFor("> ", 5) // the prompt is back: type as a user would, not ahead of it
	fmt.Fprint(tty, "And a last one\r")
	waitFor("[in ", 3)
	fmt.Fprint(tty, "\x04") // Ctrl-D
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chat exited with %v; screen:\n%s", err, screen.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("chat did not quit on Ctrl-D; screen:\n%s", screen.String())
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	calls, _ := store.List(context.Background(), llmscope.Filter{})
	if len(calls) != 3 || calls[1].ErrorType != llmscope.ErrTypeCancelled {
		t.Errorf("stored calls: %d, the middle one %q; want 3 with it cancelled", len(calls), calls[min(1, len(calls)-1)].ErrorType)
	}
}

// TestChatSessionIsOneMLflowRun: the session is one MLflow run with the
// right params and one metric point per turn.
func TestChatSessionIsOneMLflowRun(t *testing.T) {
	ml := mlflowtest.Start(t)
	t.Chdir(t.TempDir())
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	in := "First question\n/temperature 0.9\nSecond question\nThird question\n"
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"chat", "--db", "c.db", "--run", "chat-mlflow", "--mlflow", ml.URL,
		"--temperature", "0.3", "--top-p", "0.8", "--max-tokens", "60", "--system", "Be brief.", "--sim-tokens-per-second", "0"},
		strings.NewReader(in), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	client, _ := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL})
	ctx := context.Background()
	exp, err := client.GetExperimentByName(ctx, "llmscope")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := client.SearchRuns(ctx, []string{exp.ID}, "tags.`llmscope.run` = 'chat-mlflow'")
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %d (%v), want 1", len(runs), err)
	}
	r, _ := client.GetRun(ctx, runs[0].ID)
	want := map[string]string{"model": "gpt-4o-mini", "temperature": "0.3", "top_p": "0.8", "max_tokens": "60", "system_prompt_hash": chat.SystemHash("Be brief.")}
	for k, v := range want {
		if r.Params[k] != v {
			t.Errorf("param %s = %q, want %q", k, r.Params[k], v)
		}
	}
	if r.Tags["llmscope.varied.temperature"] != "true" {
		t.Errorf("changed temperature not tagged varied: %v", r.Tags)
	}
	hist, _ := client.MetricHistory(ctx, r.ID, "completion_tokens")
	if len(hist) != 3 {
		t.Errorf("%d per-turn metric points, want 3", len(hist))
	}
	if r.Status != "FINISHED" || r.Metrics["calls"] != 3 {
		t.Errorf("run %s with summary calls=%v, want FINISHED and 3", r.Status, r.Metrics["calls"])
	}
}
