package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

func TestLoopIsRefused(t *testing.T) {
	s := newSink()
	var gw *gateway.Gateway
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { gw.ServeHTTP(w, r) }))
	defer front.Close()
	var err error
	gw, err = gateway.New(gateway.Config{Upstream: front.URL + "/v1", Sink: s}) // points at itself
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := post(t, front.URL+"/v1/chat/completions", `{"model":"m","messages":[]}`, nil)
	if status != http.StatusLoopDetected || !strings.Contains(string(body), "loop_detected") {
		t.Fatalf("self-proxy: %d %s", status, body)
	}
	// The outer call is recorded once its handler ends, which may be just
	// after the client has the answer.
	eventually(t, "both calls recorded", func() bool { return len(s.all()) >= 2 })
	time.Sleep(50 * time.Millisecond)
	if n := len(s.all()); n != 2 {
		t.Errorf("%d calls recorded for one looping request, want 2 (the request and its one echo)", n)
	}
}

func TestPassThroughSemantics(t *testing.T) {
	var gotPath, gotMethod string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotMethod = r.URL.EscapedPath(), r.Method
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[]}`)
	}))
	defer up.Close()
	s := newSink()
	gw, _ := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	front := httptest.NewServer(gw)
	defer front.Close()
	for _, c := range []struct{ method, path, wantPath, wantOp string }{
		{"GET", "/v1/files/a%3Fb", "/v1/files/a%3Fb", llmscope.OpOther},
		{"GET", "/v1/models/meta-llama%2FLlama-3", "/v1/models/meta-llama%2FLlama-3", llmscope.OpModels},
		{"GET", "/v1/chat/completions?limit=5", "/v1/chat/completions", llmscope.OpOther},
		{"DELETE", "/v1/models/ft:gpt-4o-mini:acme::x", "/v1/models/ft:gpt-4o-mini:acme::x", llmscope.OpOther},
		{"OPTIONS", "/v1/embeddings", "/v1/embeddings", llmscope.OpOther},
	} {
		req, _ := http.NewRequest(c.method, front.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		call := s.one(t)
		if resp.StatusCode != 200 || gotPath != c.wantPath || gotMethod != c.method || call.Operation != c.wantOp {
			t.Errorf("%s %s: status %d, upstream saw %s %s, recorded %q", c.method, c.path, resp.StatusCode, gotMethod, gotPath, call.Operation)
		}
	}
	req, _ := http.NewRequest("PUT", front.URL+"/v1/embeddings", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("PUT embeddings: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	s.one(t)
}

func TestMalformedChunkedBodyGets400(t *testing.T) {
	e := newEnv(t, sim.Config{}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("malformed chunked body: %d %s", resp.StatusCode, body)
	}
	if c := e.sink.one(t); c.Status != 400 {
		t.Errorf("recorded status %d", c.Status)
	}
}

func TestErrorInsideStreamIsRecorded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"a\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n")
	}))
	defer up.Close()
	s := newSink()
	gw, _ := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	front := httptest.NewServer(gw)
	defer front.Close()
	post(t, front.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`, nil)
	if c := s.one(t); c.ErrorType != llmscope.ErrTypeUpstream || !c.Failed() {
		t.Errorf("error inside a 200 stream recorded as %q", c.ErrorType)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	s := newSink()
	gw, _ := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s, UpstreamTimeout: 100 * time.Millisecond})
	front := httptest.NewServer(gw)
	defer front.Close()
	status, _, body := post(t, front.URL+"/v1/chat/completions", `{"model":"m","messages":[]}`, nil)
	if status != http.StatusGatewayTimeout || !strings.Contains(string(body), `"error"`) {
		t.Errorf("hung upstream: %d %s", status, body)
	}
	if c := s.one(t); c.ErrorType != llmscope.ErrTypeTimeout {
		t.Errorf("recorded error %q", c.ErrorType)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := newSink()
	gw, _ := gateway.New(gateway.Config{Upstream: "http://" + addr + "/v1", Sink: s})
	front := httptest.NewServer(gw)
	defer front.Close()
	_, err := client(front.URL).Chat.Completions.New(context.Background(), chatParams())
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("upstream down: err %v, want a 502", err)
	}
	if c := s.one(t); c.Status != 502 || c.ErrorType != llmscope.ErrTypeUnreachable {
		t.Errorf("recorded %d %q", c.Status, c.ErrorType)
	}
}

func TestHugeEmbeddingsAnswerKeepsUsage(t *testing.T) {
	// 2048 inputs × 1536 floats: about 30 MB of JSON with the usage at the end.
	e := newEnv(t, sim.Config{}, nil)
	inputs := make([]string, 2048)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("input number %d", i)
	}
	res, err := client(e.gw.URL).Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if len(res.Data) != 2048 || c.Usage.Source != llmscope.UsageReported || c.Usage.InputTokens != res.Usage.PromptTokens || c.ResponseModel != "text-embedding-3-small" {
		t.Errorf("huge answer recorded as %+v model %q (client saw %d tokens)", c.Usage, c.ResponseModel, res.Usage.PromptTokens)
	}
}
