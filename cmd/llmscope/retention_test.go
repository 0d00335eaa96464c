package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
)

func TestRetentionParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "0s": 0, "0d": 0, " 12h ": 12 * time.Hour, "90m": 90 * time.Minute, "1m": time.Minute,
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "7d30m": 7*24*time.Hour + 30*time.Minute,
	} {
		got, err := parseRetention(in)
		if err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"-1d": "negative", "-5h": "negative", "-0d1h": "negative",
		"30": "not a duration", "abc": "not a duration", "1.5d": "not a duration", "d": "not a duration",
		"1dx": "not a duration", "30dd": "not a duration", "99999999d": "not a duration", "+3d": "not a duration",
		"30s": "under a minute", "1ns": "under a minute",
	} {
		_, err := parseRetention(in)
		if err == nil || !strings.HasPrefix(err.Error(), "--retention: ") || !strings.Contains(err.Error(), msg) {
			t.Errorf("parseRetention(%q) = %v; want an error about --retention saying %q", in, err, msg)
		}
	}
}

// TestRetentionServeRejectsBadValues checks that serve refuses a bad
// --retention or LLMSCOPE_RETENTION before it listens.
func TestRetentionServeRejectsBadValues(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--retention", "-3d"}, "", "--retention: \"-3d\" is negative"},
		{[]string{"--retention", "soon"}, "", "--retention: \"soon\" is not a duration"},
		{nil, "LLMSCOPE_RETENTION=30", "--retention: \"30\" is not a duration"},
		{[]string{"--export-lease-ttl", "300ms"}, "", "--export-lease-ttl: 300ms is too short"},
		{nil, "LLMSCOPE_EXPORT_LEASE_TTL=soon", "--export-lease-ttl: \"soon\" is not a duration"},
	} {
		dir := t.TempDir()
		cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "calls.db")}, tc.args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=", tc.env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("serve %v %s: %v, stderr:\n%s\nwant a failure saying %s", tc.args, tc.env, err, stderr.String(), tc.want)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("serve %v %s did not exit", tc.args, tc.env)
		}
	}
}

// retentionCall returns a small call that started at start.
func retentionCall(start time.Time) *llmscope.Call {
	return &llmscope.Call{
		ID: llmscope.NewID(), Start: start, DurationMS: 100, Operation: llmscope.OpChat, Provider: "sim",
		Endpoint: "/v1/chat/completions", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini",
		Status: 200, Experiment: "llmscope", Usage: llmscope.Usage{InputTokens: 5, OutputTokens: 7, TotalTokens: 12},
	}
}

// TestRetentionServeDeletesOldCalls runs serve --retention 1h over a store
// holding calls of two hours ago and of now: the old ones go, the recent
// ones and the calls made through the gateway meanwhile stay.
func TestRetentionServeDeletesOldCalls(t *testing.T) {
	db := filepath.Join(t.TempDir(), "old.db")
	store, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	var old, recent []*llmscope.Call
	for i := range 2500 {
		old = append(old, retentionCall(time.Now().Add(-2*time.Hour-time.Duration(i)*time.Second)))
	}
	for i := range 20 {
		recent = append(recent, retentionCall(time.Now().Add(-time.Duration(i)*time.Minute)))
	}
	if err := store.Write(t.Context(), append(append([]*llmscope.Call(nil), old...), recent...)); err != nil {
		t.Fatal(err)
	}
	store.Close()

	_, base, _, stderr := startServe(t, "--db", db, "--retention", "1h")
	// Traffic goes on while the first round (3s after start) deletes.
	var made []string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "deleted calls older than the retention") {
		if time.Now().After(deadline) {
			t.Fatalf("no round deleted anything within 30s; stderr:\n%s", stderr.String())
		}
		made = append(made, chatCall(t, base, len(made)%2 == 0, 0.5, nil))
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "deleted=2500") {
		t.Errorf("the round's log line does not count 2500 deleted calls:\n%s", stderr.String())
	}
	// More traffic after the round is still recorded.
	for range 5 {
		made = append(made, chatCall(t, base, false, 0.5, nil))
	}
	ids := map[string]bool{}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && len(ids) < len(recent)+len(made); {
		time.Sleep(100 * time.Millisecond)
		clear(ids)
		for _, c := range storedCalls(t, base, "") {
			ids[c.ID] = true
		}
	}
	for _, c := range recent {
		if !ids[c.ID] {
			t.Errorf("recent call %s (started %v) was deleted", c.ID, c.Start)
		}
	}
	for _, id := range made {
		if !ids[id] {
			t.Errorf("call %s made through the gateway is not stored", id)
		}
	}
	if len(ids) != len(recent)+len(made) {
		t.Errorf("the store holds %d calls, want %d recent + %d made through the gateway", len(ids), len(recent), len(made))
	}
	for _, c := range old {
		if ids[c.ID] {
			t.Errorf("old call %s is still stored", c.ID)
		}
	}
	r, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Contains(metrics, []byte("llmscope_retention_deleted_calls_total 2500")) {
		t.Errorf("/metrics does not count the 2500 deleted calls:\n%s", grepLines(metrics, "retention"))
	}
}

func grepLines(b []byte, word string) string {
	var out []string
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// TestRetentionWaitsForExporters checks the pruner's rounds: nothing goes
// while an exporter of the process has no cursor, then only what every
// exporter delivered, with a warning about the calls held back.
func TestRetentionWaitsForExporters(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "calls.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var calls []*llmscope.Call
	for i := range 25 {
		calls = append(calls, retentionCall(time.Now().Add(-3*time.Hour+time.Duration(i)*time.Second)))
	}
	if err := store.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r := newRetention(store, store, time.Hour, slog.New(slog.NewTextHandler(&log, nil)))
	r.exporters, r.batch, r.pause = []string{"mlflow"}, 4, time.Millisecond

	if n, err := r.round(ctx); err != nil || n != 0 {
		t.Fatalf("round with no mlflow cursor = %d, %v; want 0", n, err)
	}
	if !strings.Contains(log.String(), "exporter=mlflow") {
		t.Errorf("no log line names the exporter waited for:\n%s", log.String())
	}
	if err := store.SetCursor(ctx, "mlflow", 10); err != nil {
		t.Fatal(err)
	}
	if n, err := r.round(ctx); err != nil || n != 10 {
		t.Fatalf("round with mlflow at 10 = %d, %v; want 10", n, err)
	}
	if !strings.Contains(log.String(), "kept until every exporter has delivered them") {
		t.Errorf("no warning about the calls held back:\n%s", log.String())
	}
	if err := store.SetCursor(ctx, "mlflow", 25); err != nil {
		t.Fatal(err)
	}
	if n, err := r.round(ctx); err != nil || n != 15 {
		t.Fatalf("round with mlflow at 25 = %d, %v; want 15", n, err)
	}
	if left, _ := store.List(ctx, llmscope.Filter{}); len(left) != 0 {
		t.Errorf("%d calls left", len(left))
	}

	// start and stop: the first round runs, and stop waits for it.
	if err := store.Write(ctx, []*llmscope.Call{retentionCall(time.Now().Add(-2 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetCursor(ctx, "mlflow", 26); err != nil {
		t.Fatal(err)
	}
	var deleted int64
	r.first, r.onDeleted = time.Millisecond, func(n int64) { deleted += n }
	stop := r.start(context.Background())
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if left, _ := store.List(ctx, llmscope.Filter{}); len(left) == 0 {
			break
		}
	}
	stop()
	if deleted != 1 {
		t.Errorf("the background rounds deleted %d calls, want 1", deleted)
	}
}
