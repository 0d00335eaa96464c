package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

// replay is an upstream that answers with a file of ../anthropic/testdata
// named by the request header X-Replay (a header the gateway passes on),
// with the status of X-Replay-Status; X-Replay-Cut cuts a stream after that
// many bytes and drops the connection. It remembers the last request.
type replay struct {
	mu     sync.Mutex
	header http.Header
	url    string
	body   []byte
}

func (p *replay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.header, p.url, p.body = r.Header.Clone(), r.URL.String(), body
	p.mu.Unlock()
	name := r.Header.Get("X-Replay")
	b, err := os.ReadFile(filepath.Join("..", "anthropic", "testdata", filepath.Base(name)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	status := http.StatusOK
	if s := r.Header.Get("X-Replay-Status"); s != "" {
		status, _ = strconv.Atoi(s)
	}
	if strings.HasSuffix(name, ".sse") {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Request-Id", "req_test")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "7")
	}
	if cut := r.Header.Get("X-Replay-Cut"); cut != "" {
		n, _ := strconv.Atoi(cut)
		w.WriteHeader(status)
		_, _ = w.Write(b[:n])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (p *replay) last() (http.Header, string, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.header, p.url, p.body
}

// providerEnv is a gateway whose Anthropic and Azure upstreams are replay
// servers with server keys, and whose OpenAI upstream is the simulator.
type providerEnv struct {
	gw               *httptest.Server
	sink             *sink
	anthropic, azure *replay
}

func newProviderEnv(t *testing.T, mutate func(*gateway.Config)) *providerEnv {
	t.Helper()
	e := &providerEnv{sink: newSink(), anthropic: &replay{}, azure: &replay{}}
	an := httptest.NewServer(e.anthropic)
	t.Cleanup(an.Close)
	az := httptest.NewServer(e.azure)
	t.Cleanup(az.Close)
	oa := httptest.NewServer(sim.New(sim.Config{}))
	t.Cleanup(oa.Close)
	cfg := gateway.Config{Upstream: oa.URL + "/v1", Sink: e.sink, Capture: true, Upstreams: []gateway.ProviderUpstream{
		{API: gateway.Anthropic(), URL: an.URL + "/", APIKey: "sk-ant-server"},
		{API: gateway.Azure(false), URL: az.URL, APIKey: "azure-server-key"},
	}}
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

const messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}],"temperature":0.5,"stream":%s}`

func anthropicHeaders(replay string) map[string]string {
	return map[string]string{"X-Api-Key": "sk-ant-client", "Anthropic-Version": "2023-06-01",
		"Anthropic-Beta": "prompt-caching-2024-07-31", "X-Replay": replay, "X-Llmscope-Run": "r1"}
}

// An Anthropic answer, whole or streamed, reaches the client byte for byte
// and is recorded with Anthropic's usage in llmscope's terms; the upstream
// gets the server's key in x-api-key and the client's version headers.
func TestAnthropicPassThrough(t *testing.T) {
	e := newProviderEnv(t, nil)
	for _, c := range []struct {
		file, stream  string
		in, out, read int64
		write         int64
		finish, tier  string
		text          string
	}{
		{"text.response.json", "false", 12, 12, 0, 0, "end_turn", "standard", "Hello! How can I help you today?"},
		{"text.sse", "true", 12, 12, 0, 0, "end_turn", "standard", "Hello! How can I help you today?"},
		{"cache.sse", "true", 5 + 1200 + 42203, 21, 42203, 1200, "end_turn", "priority", `I see "test"`},
		{"cache.response.json", "false", 21 + 188086, 393, 0, 188086, "end_turn", "standard", "printing press"},
		{"tool_use.sse", "true", 849, 47, 0, 0, "tool_use", "standard", "Let me check the weather."},
	} {
		t.Run(c.file, func(t *testing.T) {
			want, _ := os.ReadFile(filepath.Join("..", "anthropic", "testdata", c.file))
			status, h, got := post(t, e.gw.URL+"/v1/messages", strings.Replace(messagesBody, "%s", c.stream, 1), anthropicHeaders(c.file))
			if status != 200 || !bytes.Equal(got, want) {
				t.Fatalf("status %d, body changed:\n%s", status, got)
			}
			if h.Get(gateway.HeaderCallID) == "" || h.Get("Request-Id") != "req_test" {
				t.Errorf("headers %v", h)
			}
			up, url, _ := e.anthropic.last()
			if url != "/v1/messages" || up.Get("X-Api-Key") != "sk-ant-server" || up.Get("Anthropic-Version") != "2023-06-01" ||
				up.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" || up.Get("Authorization") != "" || up.Get("X-Llmscope-Run") != "" {
				t.Errorf("upstream got %s %v", url, up)
			}
			call := e.sink.one(t)
			u := call.Usage
			if call.Provider != "anthropic" || call.Operation != llmscope.OpChat || call.Endpoint != "/v1/messages" ||
				call.RequestModel != "claude-sonnet-4-5" || call.ResponseModel == "" || call.Run != "r1" ||
				u.InputTokens != c.in || u.OutputTokens != c.out || u.TotalTokens != c.in+c.out ||
				u.CachedInputTokens != c.read || u.CacheCreationInputTokens != c.write || u.Source != llmscope.UsageReported ||
				call.FinishReason != c.finish || call.ServiceTier != c.tier || !strings.Contains(call.Output, c.text) ||
				call.Stream != (c.stream == "true") || call.Status != 200 || call.ErrorType != "" {
				t.Errorf("recorded %+v", call)
			}
			if call.Params.Temperature == nil || *call.Params.Temperature != 0.5 || call.Params.MaxTokens == nil || *call.Params.MaxTokens != 1024 {
				t.Errorf("params %+v", call.Params)
			}
			if c.stream == "true" && (call.TTFTMS <= 0 || call.Chunks == 0) {
				t.Errorf("stream: ttft %v chunks %d", call.TTFTMS, call.Chunks)
			}
			if strings.HasPrefix(c.file, "tool_use") && !strings.Contains(call.ToolCalls, `"name":"get_weather"`) {
				t.Errorf("tool calls %q", call.ToolCalls)
			}
		})
	}
}

// Anthropic's error answers pass through unchanged, Retry-After included,
// and are recorded with their status and Anthropic's error type.
func TestAnthropicUpstreamErrors(t *testing.T) {
	e := newProviderEnv(t, nil)
	for _, c := range []struct {
		file   string
		status int
		code   string
	}{{"error_429.response.json", 429, "rate_limit_error"}, {"error_529.response.json", 529, "overloaded_error"}} {
		want, _ := os.ReadFile(filepath.Join("..", "anthropic", "testdata", c.file))
		hd := anthropicHeaders(c.file)
		hd["X-Replay-Status"] = strconv.Itoa(c.status)
		status, h, got := post(t, e.gw.URL+"/v1/messages", strings.Replace(messagesBody, "%s", "false", 1), hd)
		if status != c.status || !bytes.Equal(got, want) {
			t.Fatalf("%d %s", status, got)
		}
		if c.status == 429 && h.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q", h.Get("Retry-After"))
		}
		call := e.sink.one(t)
		if call.Status != c.status || call.ErrorType != strconv.Itoa(c.status) || call.ErrorCode != c.code || call.ErrorMessage == "" ||
			call.Provider != "anthropic" || call.Usage.Source != llmscope.UsageNone {
			t.Errorf("recorded %+v", call)
		}
	}
	// An error event inside a stream is an upstream error of a 200.
	_, _, _ = post(t, e.gw.URL+"/v1/messages", strings.Replace(messagesBody, "%s", "true", 1), anthropicHeaders("error.sse"))
	if call := e.sink.one(t); call.Status != 200 || call.ErrorType != llmscope.ErrTypeUpstream || call.ErrorCode != "overloaded_error" {
		t.Errorf("stream error event recorded %+v", call)
	}
}

// A stream the upstream breaks off is recorded as broken, and the client
// sees the break (no clean end).
func TestAnthropicBrokenStream(t *testing.T) {
	e := newProviderEnv(t, nil)
	hd := anthropicHeaders("text.sse")
	full, _ := os.ReadFile(filepath.Join("..", "anthropic", "testdata", "text.sse"))
	cut := bytes.Index(full, []byte("event: message_delta"))
	hd["X-Replay-Cut"] = strconv.Itoa(cut)
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/v1/messages", strings.NewReader(strings.Replace(messagesBody, "%s", "true", 1)))
	for k, v := range hd {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, rerr := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if rerr == nil {
		t.Error("the client read a clean end of a broken stream")
	}
	if !bytes.HasPrefix(full, got) || len(got) == 0 {
		t.Errorf("client got %q", got)
	}
	call := e.sink.one(t)
	if call.ErrorType != llmscope.ErrTypeStream || call.Usage.InputTokens != 12 || call.Provider != "anthropic" {
		t.Errorf("recorded %+v", call)
	}
}

// llmscope's own errors on Anthropic's paths come in Anthropic's shape;
// count_tokens passes through as other.
func TestAnthropicOwnErrorAndCountTokens(t *testing.T) {
	e := newProviderEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 64 })
	status, _, got := post(t, e.gw.URL+"/v1/messages", strings.Repeat("x", 100), nil)
	var body struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(got, &body); err != nil || status != 413 || body.Type != "error" || body.Error.Type != "request_too_large" {
		t.Fatalf("%d %s", status, got)
	}
	if call := e.sink.one(t); call.Provider != "anthropic" || call.Status != 413 {
		t.Errorf("recorded %+v", call)
	}
	status, _, _ = post(t, e.gw.URL+"/v1/messages/count_tokens", `{"model":"m"}`, map[string]string{"X-Replay": "min.request.json"})
	if status != 200 {
		t.Fatal(status)
	}
	if _, url, _ := e.anthropic.last(); url != "/v1/messages/count_tokens" {
		t.Errorf("upstream url %s", url)
	}
	if call := e.sink.one(t); call.Operation != llmscope.OpOther || call.Provider != "anthropic" {
		t.Errorf("recorded %+v", call)
	}
}

// Azure OpenAI requests go to the Azure upstream under the same path and
// query with the server's api-key, and are recorded with their deployment.
func TestAzureRouting(t *testing.T) {
	e := newProviderEnv(t, nil)
	status, _, _ := post(t, e.gw.URL+"/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
		`{"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Api-Key": "client-key", "X-Replay": "text.response.json"})
	if status != 200 {
		t.Fatal(status)
	}
	up, url, _ := e.azure.last()
	if url != "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21" || up.Get("Api-Key") != "azure-server-key" {
		t.Errorf("upstream got %s %v", url, up)
	}
	call := e.sink.one(t)
	if call.Provider != "azure.ai.openai" || call.Deployment != "prod-4o" || call.Operation != llmscope.OpChat ||
		call.Endpoint != "/openai/deployments/prod-4o/chat/completions" {
		t.Errorf("recorded %+v", call)
	}
}

// Against the simulator (v1AtRoot: /openai/v1/X goes to its /v1/X), usage
// injection works as for OpenAI: the client's stream is unchanged.
func TestAzureOnOpenAIPaths(t *testing.T) {
	s := httptest.NewServer(sim.New(sim.Config{}))
	defer s.Close()
	sk := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: s.URL + "/v1", Sink: sk,
		Upstreams: []gateway.ProviderUpstream{{API: gateway.Azure(true), URL: s.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	g := httptest.NewServer(gw)
	defer g.Close()
	body := `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	status, _, got := post(t, g.URL+"/openai/deployments/dep1/chat/completions?api-version=2024-10-21", body, nil)
	if status != 200 || bytes.Contains(got, []byte(`"usage"`)) || !bytes.HasSuffix(got, []byte("data: [DONE]\n\n")) {
		t.Fatalf("%d %s", status, got)
	}
	call := sk.one(t)
	if call.Deployment != "dep1" || call.ResponseModel == "" || call.RequestModel != "" || call.Usage.Source != llmscope.UsageReported || call.Usage.OutputTokens == 0 || !call.Stream {
		t.Errorf("recorded %+v", call)
	}
	status, _, _ = post(t, g.URL+"/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, nil)
	if call := sk.one(t); status != 200 || call.Deployment != "" || call.Provider != "azure.ai.openai" || call.Usage.Source != llmscope.UsageReported {
		t.Errorf("%d recorded %+v", status, call)
	}
}

// With PassAuthorization, an Anthropic client's own key goes upstream
// untouched; only a request a client key authenticated gets the server's
// key, in x-api-key, with the client's other credentials removed.
func TestAnthropicKeyRules(t *testing.T) {
	e := newProviderEnv(t, func(c *gateway.Config) { c.PassAuthorization = true })
	gw := e.gw.Config.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Client-Key") != "" { // stands for the guard
			r = r.WithContext(llmscope.WithClient(r.Context(), "alice"))
		}
		gw.ServeHTTP(w, r)
	}))
	defer front.Close()
	body := strings.Replace(messagesBody, "%s", "false", 1)
	post(t, front.URL+"/v1/messages", body, map[string]string{"X-Api-Key": "sk-ant-own", "X-Replay": "text.response.json"})
	e.sink.one(t)
	if h, _, _ := e.anthropic.last(); h.Get("X-Api-Key") != "sk-ant-own" {
		t.Errorf("the client's own key was replaced: %v", h)
	}
	post(t, front.URL+"/v1/messages", body, map[string]string{"X-Test-Client-Key": "1", "Authorization": "Bearer x", "X-Replay": "text.response.json"})
	e.sink.one(t)
	if h, _, _ := e.anthropic.last(); h.Get("X-Api-Key") != "sk-ant-server" || h.Get("Authorization") != "" {
		t.Errorf("a client-key request upstream: %v", h)
	}
}
