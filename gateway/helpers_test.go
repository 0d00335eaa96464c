package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope"
	"llmscope/gateway"
	"llmscope/internal/golden"
	"llmscope/sim"
)

// sink collects recorded calls.
type sink struct {
	mu    sync.Mutex
	calls []*llmscope.Call
	added chan struct{}
}

func newSink() *sink { return &sink{added: make(chan struct{}, 1024)} }

func (s *sink) Record(c *llmscope.Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	s.added <- struct{}{}
}

// one waits for exactly one recorded call and returns it, failing if a
// second call shows up shortly after.
func (s *sink) one(t *testing.T) *llmscope.Call {
	t.Helper()
	select {
	case <-s.added:
	case <-time.After(10 * time.Second):
		t.Fatal("no call recorded")
	}
	select {
	case <-s.added:
		t.Fatalf("more than one call recorded: %d", len(s.all()))
	case <-time.After(50 * time.Millisecond):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[len(s.calls)-1]
	s.calls = nil
	return c
}

func (s *sink) all() []*llmscope.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*llmscope.Call(nil), s.calls...)
}

// env is a gateway in front of an in-process simulator.
type env struct {
	sim      *httptest.Server
	gw       *httptest.Server
	sink     *sink
	upstream *upstreamLog
}

// upstreamLog remembers the last request the simulator saw.
type upstreamLog struct {
	mu        sync.Mutex
	header    http.Header
	body      []byte
	cancelled chan struct{}
}

func (u *upstreamLog) last() (http.Header, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.header, u.body
}

func newEnv(t *testing.T, simCfg sim.Config, mutate func(*gateway.Config)) *env {
	t.Helper()
	e := &env{sink: newSink(), upstream: &upstreamLog{cancelled: make(chan struct{}, 16)}}
	s := sim.New(simCfg)
	e.sim = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		e.upstream.mu.Lock()
		e.upstream.header, e.upstream.body = r.Header.Clone(), buf.Bytes()
		e.upstream.mu.Unlock()
		r.Body = http.NoBody
		r2 := r.Clone(r.Context())
		r2.Body = readCloser{bytes.NewReader(buf.Bytes())}
		s.ServeHTTP(w, r2)
		if r.Context().Err() != nil {
			e.upstream.cancelled <- struct{}{}
		}
	}))
	t.Cleanup(e.sim.Close)
	cfg := gateway.Config{Upstream: e.sim.URL + "/v1", Sink: e.sink, Provider: "sim"}
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = httptest.NewServer(gw)
	t.Cleanup(e.gw.Close)
	return e
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// client returns a real openai-go client pointed at base (".../v1").
func client(base string, opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(base + "/v1/"),
		option.WithAPIKey("sk-test-key"),
		option.WithMaxRetries(0),
	}, opts...)...)
	return &c
}

// golden compares a call with testdata/<name>.call.json after blanking the
// fields that change from run to run (ids, times, durations).
func checkCall(t *testing.T, name string, c *llmscope.Call) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "trace_id", "start"} {
		if m[k] == "" || m[k] == nil {
			t.Errorf("%s: field %s is empty", name, k)
		}
		m[k] = "<" + k + ">"
	}
	for _, k := range []string{"duration_ms", "ttft_ms", "overhead_ms"} {
		if v, _ := m[k].(float64); v > 0 {
			m[k] = "<positive>"
		}
	}
	golden.JSON(t, filepath.Join("testdata", name+".call.json"), m)
}

// post sends body to url and returns the status, headers and whole body.
func post(t *testing.T, url string, body string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.Bytes()
}
