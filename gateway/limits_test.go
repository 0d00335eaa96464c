package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope/gateway"
)

// eventually polls cond until it holds, failing after a generous wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startBody opens a connection and sends a POST whose headers declare
// length bytes of body, followed by only the first bytes of it.
func startBody(t *testing.T, base string, length int, first string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", length, first)
	return conn
}

// TestDeclaredLengthIsNotAllocated: bodies that declare 32 MB and send 90
// bytes hold buffers for what arrived, not for what was declared, so they
// fit a 1 MiB budget together, and every byte is given back when they go.
func TestDeclaredLengthIsNotAllocated(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: newSink(), MaxBufferedBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	const conns = 32
	first := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 40)
	var open []net.Conn
	for range conns {
		open = append(open, startBody(t, front.URL, gateway.DefaultMaxBodyBytes-432, first))
	}
	eventually(t, "all bodies started", func() bool { return gw.BufferedBytes() >= conns*int64(len(first)) })
	if n := gw.BufferedBytes(); n > conns*16<<10 {
		t.Errorf("%d bodies of %d bytes so far hold %d bytes of buffers", conns, len(first), n)
	}
	for _, c := range open {
		c.Close()
	}
	eventually(t, "buffers released", func() bool { return gw.BufferedBytes() == 0 })
	if hits.Load() != 0 {
		t.Errorf("upstream saw %d unfinished bodies", hits.Load())
	}
}

// TestBufferBudgetOverload: while one request holds most of the budget, a
// second whose body does not fit is answered 503 overloaded with
// Retry-After and recorded, without reaching the upstream; once the first
// is done, the same body goes through.
func TestBufferBudgetOverload(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Hold") != "" {
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s, MaxBufferedBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("y", 600<<10) + `"}]}`

	held := make(chan int, 1)
	go func() {
		status, _, _ := post(t, front.URL+"/v1/chat/completions", body, map[string]string{"X-Hold": "1"})
		held <- status
	}()
	eventually(t, "first request at the upstream", func() bool { return hits.Load() == 1 })
	if n := gw.BufferedBytes(); n < 600<<10 || n > 2<<20 {
		t.Errorf("one 600 KB body in flight holds %d bytes", n)
	}
	status, h, resp := post(t, front.URL+"/v1/chat/completions", body, nil)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" ||
		!strings.Contains(string(resp), `"code":"overloaded"`) || !strings.Contains(string(resp), `"type":"server_error"`) {
		t.Errorf("over budget: %d Retry-After %q %s", status, h.Get("Retry-After"), resp)
	}
	if c := s.one(t); c.Status != http.StatusServiceUnavailable || c.ErrorType != "overloaded" || c.RequestModel != "" {
		t.Errorf("refused call recorded as %d %q", c.Status, c.ErrorType)
	}
	if hits.Load() != 1 {
		t.Errorf("the refused request reached the upstream")
	}
	close(release)
	if st := <-held; st != http.StatusOK {
		t.Errorf("held request: %d", st)
	}
	s.one(t)
	eventually(t, "budget released", func() bool { return gw.BufferedBytes() == 0 })
	if status, _, resp := post(t, front.URL+"/v1/chat/completions", body, nil); status != http.StatusOK {
		t.Errorf("after the first finished: %d %s", status, resp)
	}
	s.one(t)
}

// TestBodyTimeout: a client that stops sending its body gets 408
// body_timeout, recorded, and the upstream sees nothing.
func TestBodyTimeout(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s, BodyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	conn := startBody(t, front.URL, 1000, `{"model":"m",`)
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"code":"body_timeout"`) {
		t.Errorf("stalled body: %d %s", resp.StatusCode, b)
	}
	if c := s.one(t); c.Status != http.StatusRequestTimeout || c.ErrorType != "body_timeout" {
		t.Errorf("recorded %d %q", c.Status, c.ErrorType)
	}
	if hits.Load() != 0 {
		t.Error("upstream saw the stalled request")
	}
	eventually(t, "buffers released", func() bool { return gw.BufferedBytes() == 0 })
}

// TestStreamOutlivesBodyTimeout: the body deadline ends with the body; an
// answer that streams for longer than it arrives whole.
func TestStreamOutlivesBodyTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 6 {
			fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":6,\"total_tokens\":9}}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s, BodyTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	status, _, body := post(t, front.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`, nil)
	if status != http.StatusOK || !strings.Contains(string(body), "data: [DONE]") || !strings.Contains(string(body), `"content":"5"`) {
		t.Errorf("long stream: %d %s", status, body)
	}
	if c := s.one(t); c.ErrorType != "" || c.Usage.TotalTokens != 9 {
		t.Errorf("recorded error %q usage %+v", c.ErrorType, c.Usage)
	}
}

// logBuffer is a slog handler's output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestErrorBodiesHideInternals: 502, 504 and 500 bodies name the failure
// without the upstream's address or the Go error; those go to the log, at
// warn, with the call id.
func TestErrorBodiesHideInternals(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := ln.Addr().String()
	ln.Close()
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hung.Close()
	defer close(stop)
	hungAddr := strings.TrimPrefix(hung.URL, "http://")

	for _, c := range []struct {
		name, upstream, addr, message string
		status                        int
		logged                        string // a piece of the Go error
	}{
		{"down", "http://" + downAddr + "/v1", downAddr, "upstream unreachable", http.StatusBadGateway, "refused"},
		{"hung", hung.URL + "/v1", hungAddr, "upstream timed out", http.StatusGatewayTimeout, "awaiting response headers"},
	} {
		var logs logBuffer
		s := newSink()
		gw, err := gateway.New(gateway.Config{Upstream: c.upstream, Sink: s, UpstreamTimeout: 100 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		front := httptest.NewServer(gw)
		status, h, body := post(t, front.URL+"/v1/chat/completions", `{"model":"m","messages":[]}`, nil)
		front.Close()
		call := s.one(t)
		if status != c.status || !strings.Contains(string(body), `"message":"`+c.message+`"`) {
			t.Errorf("%s: %d %s", c.name, status, body)
		}
		port := c.addr[strings.LastIndex(c.addr, ":")+1:]
		for _, leak := range []string{c.addr, port, "dial", "refused", "Client.Timeout", "awaiting", "127.0.0.1"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("%s: body carries %q: %s", c.name, leak, body)
			}
		}
		if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "call_id="+call.ID) ||
			!strings.Contains(l, c.logged) || h.Get(gateway.HeaderCallID) != call.ID {
			t.Errorf("%s: log lacks the detail or the call id: %s", c.name, l)
		}
	}

	// A request the gateway cannot forward (a query no URL parser takes).
	var logs logBuffer
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: hung.URL + "/v1", Sink: s, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "http://x/v1/models", nil)
	r.URL.RawQuery = "a=\x7f"
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, r)
	call := s.one(t)
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "control") ||
		strings.Contains(w.Body.String(), hungAddr) || !strings.Contains(w.Body.String(), `"bad_request"`) {
		t.Errorf("unforwardable request: %d %s", w.Code, w.Body)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "call_id="+call.ID) || !strings.Contains(l, "control") {
		t.Errorf("log lacks the detail: %s", l)
	}
}

// TestNoCredentialsCORS: an upstream's Access-Control-Allow-Credentials
// never reaches the client.
func TestNoCredentialsCORS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://evil.example")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, front.URL+"/v1/models", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.one(t)
	if v, ok := resp.Header["Access-Control-Allow-Credentials"]; ok || resp.StatusCode != 200 {
		t.Errorf("%d, Access-Control-Allow-Credentials %q relayed", resp.StatusCode, v)
	}
}
