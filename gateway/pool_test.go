package gateway_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestClientLeavingAfterDoneIsNotCancelled: a client that hangs up once it
// has read data: [DONE] has the whole answer; the upstream ending a moment
// later must not turn the call into a cancelled one.
func TestClientLeavingAfterDoneIsNotCancelled(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n")
		io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n")
		io.WriteString(w, "data: [DONE]\n\n")
		w.(http.Flusher).Flush()
		select { // the upstream lingers before ending its body
		case <-r.Context().Done():
		case <-time.After(300 * time.Millisecond):
		}
	}))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`
	resp, err := http.Post(front.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			break
		}
	}
	resp.Body.Close() // gone before the upstream ends
	select {
	case <-s.added:
	case <-time.After(5 * time.Second):
		t.Fatal("no call recorded")
	}
	c := s.all()[0]
	if c.ErrorType != "" || c.FinishReason != "stop" || c.Usage.TotalTokens != 4 {
		t.Errorf("call: error %q, finish %q, usage %+v; want a complete call", c.ErrorType, c.FinishReason, c.Usage)
	}
}
