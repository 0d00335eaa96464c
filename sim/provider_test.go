package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"llmscope/internal/golden"
)

// Helpers and golden files shared by the Anthropic, Gemini and Azure tests.

const anthropicVersion = "2023-06-01"

// providerCase is one request whose exact answer is pinned in testdata/sim.
type providerCase struct {
	name, path, body, ext string
	header                []string // pairs
}

var providerGoldenCases = []providerCase{
	{"anthropic_messages", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Describe a bridge."}]}`, ".json", nil},
	{"anthropic_messages_stream", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Describe a bridge."}]}`, ".sse", nil},
	{"anthropic_max_tokens", "/v1/messages",
		`{"model":"claude-haiku-4-5","max_tokens":12,"messages":[{"role":"user","content":[{"type":"text","text":"Describe a bridge."}]}]}`, ".json", nil},
	{"anthropic_tool_use", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[` + anthropicTool + `]}`, ".json", nil},
	{"anthropic_tool_use_stream", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"tool_choice":{"type":"tool","name":"get_weather"},"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[` + anthropicTool + `]}`, ".sse", nil},
	{"anthropic_thinking_stream", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":2048,"stream":true,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Think about bridges."}]}`, ".sse", nil},
	{"anthropic_cache_write", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"You answer questions about bridges.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Describe a bridge."}]}`, ".json", nil},
	{"anthropic_count_tokens", "/v1/messages/count_tokens",
		`{"model":"claude-sonnet-4-5","system":"Be brief.","messages":[{"role":"user","content":"Describe a bridge."}],"tools":[` + anthropicTool + `]}`, ".json", nil},
	{"anthropic_rate_limit", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hi"}]}`, ".json", []string{FaultHeader, "status=429"}},

	{"gemini_generate", "/v1beta/models/gemini-2.5-flash:generateContent",
		`{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"Describe a bridge."}]}]}`, ".json", nil},
	{"gemini_stream", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		`{"contents":[{"role":"user","parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"maxOutputTokens":16}}`, ".sse", nil},
	{"gemini_stream_array", "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
		`{"contents":[{"role":"user","parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"maxOutputTokens":6}}`, ".json", nil},
	{"gemini_thinking_stream", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
		`{"contents":[{"role":"user","parts":[{"text":"Think about bridges."}]}],"generationConfig":{"maxOutputTokens":60,"thinkingConfig":{"thinkingBudget":20,"includeThoughts":true}}}`, ".sse", nil},
	{"gemini_function_call", "/v1beta/models/gemini-2.5-flash:generateContent",
		`{"contents":[{"role":"user","parts":[{"text":"Weather in Oslo?"}]}],"tools":[` + geminiTool + `]}`, ".json", nil},
	{"gemini_count_tokens", "/v1beta/models/gemini-2.5-flash:countTokens",
		`{"contents":[{"role":"user","parts":[{"text":"Describe a bridge."}]}]}`, ".json", nil},
	{"gemini_rate_limit", "/v1beta/models/gemini-2.5-flash:generateContent",
		`{"contents":[{"parts":[{"text":"Hi"}]}]}`, ".json", []string{FaultHeader, "status=429"}},

	{"azure_chat", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
		`{"messages":[{"role":"user","content":"Say something."}]}`, ".json", nil},
	{"azure_chat_stream", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
		`{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something."}]}`, ".sse", nil},
	{"azure_embeddings", "/openai/deployments/embed/embeddings?api-version=2024-10-21",
		`{"input":["a","b"],"dimensions":4}`, ".json", nil},
}

const anthropicTool = `{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":3}},"required":["city","days"]}}`

const geminiTool = `{"functionDeclarations":[{"name":"get_weather","description":"Current weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"},"days":{"type":"INTEGER","minimum":1,"maximum":3}},"required":["city","days"]}}]}`

// headers returns the case's headers plus the anthropic-version every
// Messages request needs.
func (c providerCase) headers() []string {
	h := append([]string(nil), c.header...)
	if strings.HasPrefix(c.path, "/v1/messages") {
		h = append(h, "anthropic-version", anthropicVersion)
	}
	return h
}

// TestProviderGolden pins the exact bytes of the Anthropic, Gemini and
// Azure answers, and checks that two servers with the same seed give the
// same bytes and a server with another seed other bytes. Each server sees
// each request once, so cache writes stay writes.
func TestProviderGolden(t *testing.T) {
	t.Parallel()
	srvA, _ := newSim(t, Config{Seed: 1})
	srvB, _ := newSim(t, Config{Seed: 1})
	srvC, _ := newSim(t, Config{Seed: 2})
	for _, c := range providerGoldenCases {
		resA, a := do(t, srvA, "POST", c.path, c.body, c.headers()...)
		_, b := do(t, srvB, "POST", c.path, c.body, c.headers()...)
		_, other := do(t, srvC, "POST", c.path, c.body, c.headers()...)
		if c.header == nil && resA.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.name, resA.StatusCode, a)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: identical requests gave different bytes:\n%s\n%s", c.name, a, b)
		}
		if c.header == nil && !strings.Contains(c.name, "count_tokens") && bytes.Equal(a, other) {
			t.Errorf("%s: another seed gave the same bytes", c.name)
		}
		golden.Equal(t, filepath.Join("..", "testdata", "sim", c.name+c.ext), a)
	}
}

// doErr is do for requests the server may cut off: it returns the read
// error instead of failing.
func doErr(t testing.TB, srv *httptest.Server, method, path, body string, header ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	name string
	data string
}

// parseSSE splits a whole SSE body into its events; it fails the test on
// a line that is neither "event:", "data:" nor blank.
func parseSSE(t testing.TB, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	open := false
	for line := range strings.SplitSeq(string(body), "\n") {
		switch {
		case line == "":
			if open {
				out = append(out, cur)
			}
			cur, open = sseEvent{}, false
		case strings.HasPrefix(line, "event: "):
			cur.name, open = line[len("event: "):], true
		case strings.HasPrefix(line, "data: "):
			if cur.data != "" {
				t.Fatalf("two data lines in one event: %q", line)
			}
			cur.data, open = line[len("data: "):], true
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	if open {
		t.Fatalf("last event not terminated by a blank line: %+v", cur)
	}
	return out
}

// decodeJSON unmarshals s into a generic value, failing the test on error.
func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	return m
}

// num returns the number at the dotted path in m, or -1 when absent.
func num(m map[string]any, path string) int {
	var v any = m
	for k := range strings.SplitSeq(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return -1
		}
		if v, ok = o[k]; !ok {
			return -1
		}
	}
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return int(f)
}
