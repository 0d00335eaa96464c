package mlflowtest

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestStartRestartStop(t *testing.T) {
	s := Start(t)
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/api/2.0/mlflow/experiments/create", `{"name":"persist"}`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	url := s.URL
	oldPid := s.cmd.Process.Pid
	s.Restart(t)
	if s.URL != url {
		t.Fatalf("URL changed: %s -> %s", url, s.URL)
	}
	if syscall.Kill(-oldPid, 0) == nil {
		t.Fatalf("old process group %d still alive after Restart", oldPid)
	}
	resp, err := http.Get(s.URL + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=persist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("experiment lost across restart: %d", resp.StatusCode)
	}
	pid := s.cmd.Process.Pid
	s.Stop()
	s.Stop() // idempotent
	if syscall.Kill(-pid, 0) == nil {
		t.Fatalf("process group %d still alive after Stop", pid)
	}
	if _, err := http.Get(s.URL + "/health"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if !strings.Contains(s.Log(), "Uvicorn running") {
		t.Logf("server log:\n%s", s.Log())
	}
}
