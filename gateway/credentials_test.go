package gateway_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"llmscope"
	"llmscope/gateway"
)

// TestServerKeyOnlyForClientKeys: with PassAuthorization, the gateway's own
// upstream key goes only with requests a client key authenticated; a
// request with some other credential (or none) never gets it, and no
// request's cookies reach the upstream.
func TestServerKeyOnlyForClientKeys(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer up.Close()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: newSink(), APIKey: "sk-server-secret", PassAuthorization: true})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Client-Key") != "" { // stands for the guard
			r = r.WithContext(llmscope.WithClient(r.Context(), "alice"))
		}
		gw.ServeHTTP(w, r)
	}))
	defer front.Close()
	for _, h := range []map[string]string{
		{"X-Api-Key": "junk"},
		{"Authorization": "Bearer sk-client-own"},
		{"X-Test-Client-Key": "1", "Cookie": "llmscope_session=abc"},
	} {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/v1/models", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(seen) != 3 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	if got := seen[0].Get("Authorization"); got != "" {
		t.Errorf("a request with a junk X-Api-Key went upstream with Authorization %q", got)
	}
	if got := seen[1].Get("Authorization"); got != "Bearer sk-client-own" {
		t.Errorf("a client's own key became %q", got)
	}
	if got := seen[2].Get("Authorization"); got != "Bearer sk-server-secret" {
		t.Errorf("a client-key request went upstream with Authorization %q", got)
	}
	if c := seen[2].Get("Cookie"); c != "" {
		t.Errorf("the upstream got the client's cookies: %q", c)
	}
}

// TestLogsHideQueryKeys: a provider key in the query (Gemini's ?key=) is
// not written to the log when the upstream cannot be reached.
func TestLogsHideQueryKeys(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	gw, err := gateway.New(gateway.Config{Upstream: "http://" + dead + "/v1", Sink: newSink(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	resp, err := http.Get(front.URL + "/v1/models?key=AIza-provider-secret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "upstream unreachable") || strings.Contains(logs.String(), "AIza-provider-secret") {
		t.Errorf("log:\n%s", logs.String())
	}
}
