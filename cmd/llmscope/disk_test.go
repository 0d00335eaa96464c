package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"llmscope"
	"llmscope/sqlite"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and returns it.
// Mounting needs root: elsewhere the test is skipped loudly, and under CI
// it fails.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "\n\n*** cannot mount a small tmpfs (needs root): " + strings.TrimSpace(string(out)) + " ***\n"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + "(skipping; under CI=true this test fails)")
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes zeros to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	// The last pages: smaller writes until not even one byte fits.
	for n := 4096; n > 0; n /= 2 {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}

type health struct {
	Status string
	Checks map[string]string
}

func getHealth(t *testing.T, base string) health {
	t.Helper()
	r, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var h health
	if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	return h
}

// TestFullDiskDegradesThenRecovers: with the store's disk full, serve keeps
// answering, /healthz says degraded with the reason, the failed writes are
// counted; once space is back it recovers by itself and every answered call
// is stored.
func TestFullDiskDegradesThenRecovers(t *testing.T) {
	dir := smallDisk(t, "16m")
	db := filepath.Join(dir, "calls.db")
	_, base, _, _ := startServe(t, "--db", db, "--capture", "--commit-wait", "5ms")
	prompt := strings.Repeat("lorem ipsum ", 1500)
	answered := 0
	send := func(n int) {
		for range n {
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + prompt + `"}]}`
			if sendJSON(t, base+"/v1/chat/completions", body, nil) != 200 {
				t.Fatal("a call was not answered 200 while the disk was full")
			}
			answered++
		}
	}
	send(5)
	waitStats(t, base, 5)
	filler := filepath.Join(dir, "filler")
	fill(t, filler)

	deadline := time.Now().Add(60 * time.Second)
	for getHealth(t, base).Status != "degraded" {
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %+v after %d calls on a full disk", getHealth(t, base), answered)
		}
		send(10)
	}
	h := getHealth(t, base)
	if !strings.Contains(h.Checks["store"], "disk_full") {
		t.Errorf("degraded /healthz does not name the reason: %+v", h)
	}
	if v := metric(t, base, `llmscope_store_write_errors_total{reason="disk_full"}`); v == "" || v == "0" {
		t.Errorf("llmscope_store_write_errors_total{reason=\"disk_full\"} = %q", v)
	}
	send(10) // still answered while writes fail

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/healthz ok again", 60*time.Second, func() bool { return getHealth(t, base).Status == "ok" })
	stats := waitStats(t, base, int64(answered))
	if stats.Totals.Calls != int64(answered) {
		t.Errorf("%d calls stored, %d answered", stats.Totals.Calls, answered)
	}
	if v := metric(t, base, `llmscope_dropped_total{reason="store_error"}`); v != "" && v != "0" {
		t.Errorf("calls dropped as store errors: %s", v)
	}
}

// TestServeRefusesReadOnlyStore: serve does not start on a store it cannot
// write, and says so.
func TestServeRefusesReadOnlyStore(t *testing.T) {
	dir := smallDisk(t, "8m")
	db := filepath.Join(dir, "calls.db")
	s, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []*llmscope.Call{{ID: "c1", TraceID: llmscope.TraceIDFor("c1"), Start: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("serve exited 0 on a read-only store")
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("serve started on a read-only store")
	}
	if !strings.Contains(stderr.String(), "does not accept writes") {
		t.Errorf("serve's refusal does not say why: %s", stderr.String())
	}
}
