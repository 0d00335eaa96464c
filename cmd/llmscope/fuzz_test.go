package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"llmscope"
)

// FuzzServe sends arbitrary requests (method, path, Host, Origin,
// Authorization, content type, body) through serve's whole handler — the
// guard, the gateway in front of the simulator, the API and the dashboard.
// No request may panic, leave body bytes or an in-flight slot held, or be
// answered by the gateway without its call reaching the store.
func FuzzServe(f *testing.F) {
	f.Setenv("GOMEMLIMIT", "off") // serve's heap target is for serve, not for the fuzzer's workers
	o := newServeOptions(io.Discard)
	if err := o.s.parse([]string{"--db", filepath.Join(f.TempDir(), "fuzz.db"), "--upstream", "sim", "--commit-wait", "1ms",
		"--admin-token", testAdminToken, "--max-buffered-bytes", "4MiB", "--max-body-bytes", "1MiB", "--capture"}); err != nil {
		f.Fatal(err)
	}
	svc, err := newService(context.Background(), o, io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.drain(slog.New(slog.DiscardHandler)); svc.closeStore() })

	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, s := range []struct{ method, path, host, origin, auth, ctype, body string }{
		{"POST", "/v1/chat/completions", "127.0.0.1:8700", "", "", "application/json", chat},
		{"POST", "/v1/chat/completions", "localhost", "", "", "application/json", `{"model":"m","stream":true,"frequency_penalty":-1e999,"messages":[]}`},
		{"POST", "/v1/embeddings", "127.0.0.1", "", "", "application/json", `{"model":"text-embedding-3-small","input":["a","b"]}`},
		{"POST", "/v1/responses", "127.0.0.1", "", "", "application/json", `{"model":"gpt-4o","input":"x","stream":true}`},
		{"POST", "/v1/%2e%2e/admin", "127.0.0.1", "", "", "application/json", chat},
		{"POST", "/v1/chat/completions", "127.0.0.1", "http://evil.example", "", "text/plain", chat},
		{"POST", "/v1/chat/completions", "evil.example", "", "", "application/json", chat},
		{"GET", "/v1/models", "127.0.0.1", "", "", "", ""},
		{"GET", "/api/calls?limit=5", "127.0.0.1", "", "Bearer " + testAdminToken, "", ""},
		{"GET", "/api/calls?cursor=%ff", "127.0.0.1", "", "Bearer " + testAdminToken, "", ""},
		{"GET", "/api/stats?since=1h", "127.0.0.1", "", "", "", ""},
		{"GET", "/", "127.0.0.1", "", "", "", ""},
		{"POST", "/login", "127.0.0.1", "", "", "application/x-www-form-urlencoded", "token=x&next=//evil"},
		{"GET", "/metrics", "127.0.0.1", "", "Bearer " + testAdminToken, "", ""},
		{"PUT", "/v1/embeddings", "127.0.0.1", "", "", "", "{"},
		{"POST", "/v1/chat/completions", "127.0.0.1", "", "", "application/json", "[[[[[[[[[[[[[[[[[[[["},
	} {
		f.Add(s.method, s.path, s.host, s.origin, s.auth, s.ctype, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, host, origin, authz, ctype string, body []byte) {
		// Only requests an HTTP server would hand to a handler.
		if method == "" || !httpguts.ValidHostHeader(host) || strings.IndexFunc(method, func(r rune) bool { return !httpguts.IsTokenRune(r) }) >= 0 {
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return
		}
		for _, v := range []string{origin, authz, ctype} {
			if !httpguts.ValidHeaderFieldValue(v) {
				return
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(context.Background())
		req.Method, req.URL, req.RequestURI, req.Host = method, u, path, host
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		for k, v := range map[string]string{"Origin": origin, "Authorization": authz, "Content-Type": ctype} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		func() {
			defer func() {
				// The gateway aborts a response whose upstream stream broke,
				// as net/http expects; anything else is a bug.
				if p := recover(); p != nil && p != http.ErrAbortHandler {
					t.Fatalf("panic: %v", p)
				}
			}()
			svc.handler.ServeHTTP(w, req)
		}()
		if n := svc.gw.BufferedBytes(); n != 0 {
			t.Errorf("%d body bytes still held after the request ended", n)
		}
		if n := svc.guard.Inflight(); n != 0 {
			t.Errorf("%d requests still in flight after the request ended", n)
		}
		id := w.Header().Get("X-Llmscope-Call-Id")
		if id == "" {
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := svc.store.Get(context.Background(), id)
			if err == nil {
				break
			}
			if !errors.Is(err, llmscope.ErrNotFound) || time.Now().After(deadline) {
				t.Fatalf("%s %s answered %d with call %s, which the store does not have: %v", method, path, w.Code, id, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
}
