package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientChat(t *testing.T) {
	var got http.Header
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Llmscope-Call-Id", "c1")
		switch {
		case strings.Contains(gotBody, "limit"):
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit","code":"rate_limit_exceeded"}}`)
		case strings.Contains(gotBody, "plain"):
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "bad gateway")
		case strings.Contains(gotBody, "broken"):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n")
		case strings.Contains(gotBody, `"stream":true`):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"+
				"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"+
				"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n"+
				"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"+
				"data: [DONE]\n\n")
		default:
			io.WriteString(w, `{"model":"m","choices":[{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`)
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL+"/v1/", "sk", nil)
	c.Header.Set("X-Llmscope-Run", "r")
	ctx := context.Background()

	var pieces []string
	res, err := c.Chat(ctx, []byte(`{"model":"m","messages":[],"stream":true}`), true, http.Header{"X-Llmscope-Tags": {"a=b"}}, func(s string) { pieces = append(pieces, s) })
	if err != nil || res.Text != "Hello" || strings.Join(pieces, "|") != "Hel|lo" || res.Header.Get("X-Llmscope-Call-Id") != "c1" {
		t.Fatalf("stream: %+v %v %q", res, err, pieces)
	}
	if !res.Response.HasUsage || res.Response.Usage.OutputTokens != 2 || res.Response.FinishReason != "stop" {
		t.Errorf("stream usage: %+v", res.Response)
	}
	if got.Get("Authorization") != "Bearer sk" || got.Get("X-Llmscope-Run") != "r" || got.Get("X-Llmscope-Tags") != "a=b" || got.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", got)
	}

	res, err = c.Chat(ctx, []byte(`{"model":"m","messages":[]}`), false, nil, nil)
	if err != nil || res.Text != "Hi" || !res.Response.HasUsage || res.Response.Usage.InputTokens != 3 {
		t.Fatalf("non-stream: %+v %v", res, err)
	}

	res, err = c.Chat(ctx, []byte(`{"model":"limit","messages":[]}`), false, nil, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Message != "slow down" || apiErr.Code != "rate_limit_exceeded" ||
		apiErr.Header.Get("Retry-After") != "2" || res == nil || res.Header.Get("X-Llmscope-Call-Id") != "c1" {
		t.Fatalf("429: %+v %v", res, err)
	}
	_, err = c.Chat(ctx, []byte(`{"model":"plain","messages":[]}`), false, nil, nil)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || apiErr.Message != "" {
		t.Fatalf("502: %v", err)
	}
	res, err = c.Chat(ctx, []byte(`{"model":"broken","messages":[],"stream":true}`), true, nil, nil)
	var se *StreamError
	if !errors.As(err, &se) || res.Text != "a" || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("stream error: %+v %v", res, err)
	}

	c = NewClient(srv.URL+"/v1", "", nil)
	if _, err := c.Chat(ctx, []byte(`{"model":"m","messages":[]}`), false, nil, nil); err != nil || got.Get("Authorization") != "" {
		t.Errorf("no key: %v, Authorization %q", err, got.Get("Authorization"))
	}
}

func TestClientChatCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	res, err := NewClient(srv.URL+"/v1", "", nil).Chat(ctx, []byte(`{"stream":true}`), true, nil, func(string) { cancel() })
	if err == nil || ctx.Err() == nil || res.Text != "x" {
		t.Fatalf("%+v %v", res, err)
	}
}
