package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"llmscope/gateway"
)

// TestBodyBufferNotReusedWhileSending: request bodies live in pooled
// buffers. Concurrent requests, half of them answered before the upstream
// read their body (so the transport may still be sending it after
// RoundTrip returned), must each reach the upstream intact; a buffer reused
// too early shows as mixed-up bytes, or as a data race under -race.
func TestBodyBufferNotReusedWhileSending(t *testing.T) {
	var mu sync.Mutex
	bad := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Early") != "" {
			w.WriteHeader(http.StatusRequestEntityTooLarge) // answer first, read never
			return
		}
		b, _ := io.ReadAll(r.Body)
		want := r.Header.Get("X-Fill")
		if len(b) == 0 || strings.Trim(string(b[len(`{"model":"m","input":"`):len(b)-2]), want) != "" {
			mu.Lock()
			bad++
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	}))
	defer up.Close()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			fill := string(rune('a' + i%26))
			body := `{"model":"m","input":"` + strings.Repeat(fill, 256<<10) + `"}`
			req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/embeddings", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Fill", fill)
			if i%2 == 0 {
				req.Header.Set("X-Early", "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d requests reached the upstream with another request's bytes", bad)
	}
}
