package sim

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"llmscope/tokenizer"
)

// messages posts a Messages request with anthropic-version set.
func messages(t testing.TB, srv *httptest.Server, body string, header ...string) (int, []byte) {
	t.Helper()
	res, b := do(t, srv, "POST", "/v1/messages", body, append(header, "anthropic-version", anthropicVersion)...)
	return res.StatusCode, b
}

type anthropicMessage struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Role       string `json:"role"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		Thinking  string          `json:"thinking"`
		Signature string          `json:"signature"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"content"`
	Usage *struct {
		InputTokens   int    `json:"input_tokens"`
		CacheCreation int    `json:"cache_creation_input_tokens"`
		CacheRead     int    `json:"cache_read_input_tokens"`
		OutputTokens  int    `json:"output_tokens"`
		ServiceTier   string `json:"service_tier"`
	} `json:"usage"`
}

func decodeMessage(t testing.TB, b []byte) anthropicMessage {
	t.Helper()
	var m anthropicMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

func countTokens(t testing.TB, srv *httptest.Server, body string) int {
	t.Helper()
	res, b := do(t, srv, "POST", "/v1/messages/count_tokens", body, "anthropic-version", anthropicVersion)
	if res.StatusCode != 200 {
		t.Fatalf("count_tokens: %d %s", res.StatusCode, b)
	}
	return num(decodeJSON(t, string(b)), "input_tokens")
}

func TestAnthropicMessage(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{Seed: 3})
	const model = "claude-sonnet-4-5"
	body := `{"model":"` + model + `","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."},{"role":"user","content":[{"type":"text","text":"Tell me about rivers."}]}]}`
	status, b := messages(t, srv, body)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	m := decodeMessage(t, b)
	if !strings.HasPrefix(m.ID, "msg_01") || m.Type != "message" || m.Role != "assistant" || m.Model != model || m.StopReason != "end_turn" {
		t.Errorf("message %+v", m)
	}
	if len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text == "" {
		t.Fatalf("content %+v", m.Content)
	}
	u := m.Usage
	if u == nil || u.ServiceTier != "standard" {
		t.Fatalf("usage %s", b)
	}
	if want := tokenizer.Count(model, m.Content[0].Text); u.OutputTokens != want {
		t.Errorf("output_tokens %d, tokenizer says %d", u.OutputTokens, want)
	}
	if u.CacheCreation != 0 || u.CacheRead != 0 {
		t.Errorf("cache tokens without cache_control: %+v", u)
	}
	if n := countTokens(t, srv, body); u.InputTokens != n {
		t.Errorf("input_tokens %d, count_tokens %d", u.InputTokens, n)
	}
	// The counting rule: per message its overhead and its blocks' tokens.
	want := anthropicReply
	for _, m := range []struct{ role, text string }{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Tell me about rivers."}} {
		want += anthropicPerMessage + tokenizer.Count(model, m.role) + tokenizer.Count(model, m.text)
	}
	if u.InputTokens != want {
		t.Errorf("input_tokens %d, want %d", u.InputTokens, want)
	}
}

// TestAnthropicStreamOrder parses streams and checks their event sequence
// is exactly the documented one, each data's type naming its event, the
// indexes, and that text and usage match the non-streamed answer.
func TestAnthropicStreamOrder(t *testing.T) {
	t.Parallel()
	const plain = `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Describe a bridge."}]}`
	const thinking = `{"model":"claude-sonnet-4-5","max_tokens":4000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Describe a bridge."}]}`
	const tool = `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Weather?"}],"tools":[` + anthropicTool + `]}`
	for _, c := range []struct {
		name, body string
		blocks     []string // content block types, in order
		stop       string
	}{
		{"text", plain, []string{"text"}, "end_turn"},
		{"thinking", thinking, []string{"thinking", "text"}, "end_turn"},
		{"tool_use", tool, []string{"tool_use"}, "tool_use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newSim(t, Config{})
			_, whole := messages(t, srv, c.body)
			want := decodeMessage(t, whole)
			status, b := messages(t, srv, strings.Replace(c.body, "{", `{"stream":true,`, 1))
			if status != 200 {
				t.Fatalf("%d %s", status, b)
			}
			events := parseSSE(t, b)
			var names []string
			texts := make([]strings.Builder, len(c.blocks))
			var start, delta map[string]any
			signatures := 0
			for _, e := range events {
				names = append(names, e.name)
				d := decodeJSON(t, e.data)
				if d["type"] != e.name {
					t.Errorf("event %s carries type %v", e.name, d["type"])
				}
				switch e.name {
				case evMessageStart:
					start = d
				case evMessageDelta:
					delta = d
				case evContentBlockDelta:
					i := num(d, "index")
					dl := d["delta"].(map[string]any)
					switch dl["type"] {
					case "text_delta":
						texts[i].WriteString(dl["text"].(string))
					case "thinking_delta":
						texts[i].WriteString(dl["thinking"].(string))
					case "input_json_delta":
						texts[i].WriteString(dl["partial_json"].(string))
					case "signature_delta":
						signatures++
						if dl["signature"] != want.Content[i].Signature {
							t.Errorf("signature %v, non-stream %q", dl["signature"], want.Content[i].Signature)
						}
					default:
						t.Errorf("delta type %v", dl["type"])
					}
					if dl["type"] != map[string]string{"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}[c.blocks[i]] &&
						dl["type"] != "signature_delta" {
						t.Errorf("block %d (%s) got %v", i, c.blocks[i], dl["type"])
					}
				}
			}
			// The documented sequence, deltas collapsed.
			wantNames := []string{evMessageStart}
			for i, typ := range c.blocks {
				wantNames = append(wantNames, evContentBlockStart)
				if i == 0 {
					wantNames = append(wantNames, evPing)
				}
				wantNames = append(wantNames, evContentBlockDelta)
				_ = typ
				wantNames = append(wantNames, evContentBlockStop)
			}
			wantNames = append(wantNames, evMessageDelta, evMessageStop)
			if got := slices.Compact(slices.Clone(names)); !slices.Equal(got, wantNames) {
				t.Errorf("event sequence %v, want %v", got, wantNames)
			}
			if c.blocks[0] == "thinking" && signatures != 1 {
				t.Errorf("%d signature deltas", signatures)
			}
			for i, typ := range c.blocks {
				var w string
				switch typ {
				case "text":
					w = want.Content[i].Text
				case "thinking":
					w = want.Content[i].Thinking
				case "tool_use":
					w = string(want.Content[i].Input)
				}
				if texts[i].String() != w {
					t.Errorf("block %d: stream %q, non-stream %q", i, texts[i].String(), w)
				}
			}
			if num(start, "message.usage.output_tokens") != 1 || num(start, "message.usage.input_tokens") != want.Usage.InputTokens {
				t.Errorf("message_start usage %v", start)
			}
			if num(delta, "usage.output_tokens") != want.Usage.OutputTokens {
				t.Errorf("message_delta output_tokens %d, non-stream %d", num(delta, "usage.output_tokens"), want.Usage.OutputTokens)
			}
			if r := delta["delta"].(map[string]any)["stop_reason"]; r != c.stop || want.StopReason != c.stop {
				t.Errorf("stop_reason %v / %q, want %s", r, want.StopReason, c.stop)
			}
		})
	}
}

func TestAnthropicThinkingUsage(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const model = "claude-opus-4-1"
	_, b := messages(t, srv, `{"model":"`+model+`","max_tokens":1200,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Think."}]}`)
	m := decodeMessage(t, b)
	if len(m.Content) != 2 || m.Content[0].Type != "thinking" || m.Content[0].Signature == "" || m.Content[1].Type != "text" {
		t.Fatalf("content %s", b)
	}
	want := tokenizer.Count(model, m.Content[0].Thinking) + tokenizer.Count(model, m.Content[1].Text)
	if m.Usage.OutputTokens != want {
		t.Errorf("output_tokens %d, thinking + text count %d", m.Usage.OutputTokens, want)
	}
}

func TestAnthropicMaxTokens(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const model = "claude-haiku-4-5"
	for _, limit := range []int{1, 5, 17} {
		_, b := messages(t, srv, `{"model":"`+model+`","max_tokens":`+itoa(limit)+`,"messages":[{"role":"user","content":"Describe a bridge."}]}`)
		m := decodeMessage(t, b)
		if m.StopReason != "max_tokens" || m.Usage.OutputTokens > limit {
			t.Errorf("max_tokens %d: %s", limit, b)
		}
		if n := tokenizer.Count(model, m.Content[0].Text); n != m.Usage.OutputTokens {
			t.Errorf("max_tokens %d: output_tokens %d, text counts %d", limit, m.Usage.OutputTokens, n)
		}
	}
	// A tool call cut by max_tokens still answers a valid input object.
	_, b := messages(t, srv, `{"model":"`+model+`","max_tokens":6,"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"Weather?"}],"tools":[`+anthropicTool+`]}`)
	m := decodeMessage(t, b)
	if m.StopReason != "max_tokens" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || !json.Valid(m.Content[0].Input) {
		t.Errorf("cut tool call: %s", b)
	}
}

func TestAnthropicToolUse(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	_, b := messages(t, srv, `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[`+anthropicTool+`]}`)
	m := decodeMessage(t, b)
	if m.StopReason != "tool_use" || len(m.Content) != 1 {
		t.Fatalf("%s", b)
	}
	c := m.Content[0]
	var in struct {
		City string `json:"city"`
		Days *int   `json:"days"`
	}
	if c.Type != "tool_use" || !strings.HasPrefix(c.ID, "toolu_01") || c.Name != "get_weather" || json.Unmarshal(c.Input, &in) != nil ||
		in.Days == nil || *in.Days < 1 || *in.Days > 3 {
		t.Errorf("tool_use %+v %s", c, c.Input)
	}
	// After the tool's result, the model answers with text.
	_, b = messages(t, srv, `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Weather in Oslo?"},`+
		`{"role":"assistant","content":[{"type":"tool_use","id":"`+c.ID+`","name":"get_weather","input":`+string(c.Input)+`}]},`+
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"`+c.ID+`","content":"12 degrees"}]}],"tools":[`+anthropicTool+`]}`)
	if m := decodeMessage(t, b); m.StopReason != "end_turn" || m.Content[0].Type != "text" {
		t.Errorf("after tool_result: %s", b)
	}
	// tool_choice none never calls.
	_, b = messages(t, srv, `{"model":"claude-sonnet-4-5","max_tokens":1024,"tool_choice":{"type":"none"},"messages":[{"role":"user","content":"Weather?"}],"tools":[`+anthropicTool+`]}`)
	if m := decodeMessage(t, b); m.StopReason != "end_turn" {
		t.Errorf("tool_choice none: %s", b)
	}
}

// TestAnthropicCache checks the simulated prompt cache: the first request
// with a cache_control prefix writes it, the same prefix again reads it, a
// longer conversation reads the old prefix and writes the rest, and input,
// writes and reads always add up to count_tokens.
func TestAnthropicCache(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const system = `"system":[{"type":"text","text":"You are an expert on bridges and rivers.","cache_control":{"type":"ephemeral"}}]`
	first := `{"model":"claude-sonnet-4-5","max_tokens":100,` + system + `,"messages":[{"role":"user","content":"Describe a bridge."}]}`
	other := `{"model":"claude-sonnet-4-5","max_tokens":100,` + system + `,"messages":[{"role":"user","content":"Describe a river."}]}`
	longer := `{"model":"claude-sonnet-4-5","max_tokens":100,` + system + `,"messages":[{"role":"user","content":"Describe a bridge."},{"role":"assistant","content":"A span."},` +
		`{"role":"user","content":[{"type":"text","text":"Longer, please.","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`
	type u struct{ input, write, read int }
	get := func(body string) (u, int) {
		_, b := messages(t, srv, body)
		m := decodeMessage(t, b)
		got := u{m.Usage.InputTokens, m.Usage.CacheCreation, m.Usage.CacheRead}
		if total := countTokens(t, srv, body); got.input+got.write+got.read != total {
			t.Errorf("usage %+v does not add up to count_tokens %d", got, total)
		}
		return got, countTokens(t, srv, body)
	}
	a, total := get(first)
	if a.write == 0 || a.read != 0 || a.input != total-a.write {
		t.Errorf("first: %+v", a)
	}
	prefix := a.write
	b, _ := get(first)
	if b.write != 0 || b.read != prefix {
		t.Errorf("again: %+v, want a read of %d", b, prefix)
	}
	c, _ := get(other)
	if c.write != 0 || c.read != prefix {
		t.Errorf("same system, other question: %+v", c)
	}
	d, total := get(longer)
	if d.read != prefix || d.write == 0 || d.input != anthropicReply || d.read+d.write+d.input != total {
		t.Errorf("longer: %+v (total %d)", d, total)
	}
	_, body := messages(t, srv, strings.Replace(longer, "Longer", "Shorter", 1))
	if !strings.Contains(string(body), `"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":`) {
		t.Errorf("1h ttl write not reported as such: %s", body)
	}
	// Another seed is another cache (and another model would be too).
	srv2, _ := newSim(t, Config{Seed: 9})
	_, b2 := messages(t, srv2, first)
	if m := decodeMessage(t, b2); m.Usage.CacheRead != 0 || m.Usage.CacheCreation != prefix {
		t.Errorf("fresh server: %s", b2)
	}
}

func TestAnthropicErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	ok := `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}`
	res, b := do(t, srv, "POST", "/v1/messages", ok)
	if res.StatusCode != 400 || !strings.Contains(string(b), `{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}`) {
		t.Errorf("without anthropic-version: %d %s", res.StatusCode, b)
	}
	res, _ = do(t, srv, "POST", "/v1/messages", ok, "anthropic-version", anthropicVersion, "x-api-key", "sk-ant-anything")
	if res.StatusCode != 200 {
		t.Errorf("with x-api-key: %d", res.StatusCode)
	}
	for _, c := range []struct{ body, msg string }{
		{`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}`, "max_tokens: Field required"},
		{`{"model":"claude-sonnet-4-5","max_tokens":0,"messages":[{"role":"user","content":"Hi"}]}`, "max_tokens: Input should be greater than or equal to 1"},
		{`{"max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}`, "model: Field required"},
		{`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`, "messages: at least one message is required"},
		{`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"system","content":"Hi"}]}`, "messages.0.role: Input should be 'user' or 'assistant'"},
		{`{"model":"claude-sonnet-4-5","max_tokens":10,"temperature":1.5,"messages":[{"role":"user","content":"Hi"}]}`, "temperature: Input should be less than or equal to 1"},
		{`{"model":"claude-sonnet-4-5","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":100},"messages":[{"role":"user","content":"Hi"}]}`, "budget_tokens: Input should be greater than or equal to 1024"},
		{`{"model":"claude-sonnet-4-5","max_tokens":1024,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Hi"}]}`, "`max_tokens` must be greater than `thinking.budget_tokens`"},
		{`{"model":"claude-sonnet-4-5","max_tokens":10,"tool_choice":{"type":"tool","name":"nope"},"tools":[` + anthropicTool + `],"messages":[{"role":"user","content":"Hi"}]}`, "no function named 'nope'"},
		{`{"model":"claude-sonnet-4-5","max_tokens":"ten","messages":[{"role":"user","content":"Hi"}]}`, "max_tokens"},
		{`not json`, "could not parse"},
	} {
		status, b := messages(t, srv, c.body)
		m := decodeJSON(t, string(b))
		e, _ := m["error"].(map[string]any)
		if status != 400 || m["type"] != "error" || e["type"] != "invalid_request_error" || !strings.Contains(e["message"].(string), c.msg) {
			t.Errorf("%s: %d %s", c.body, status, b)
		}
	}
	res, b = do(t, srv, "GET", "/v1/messages", "", "anthropic-version", anthropicVersion)
	if res.StatusCode != 405 || !strings.Contains(string(b), `"type":"error"`) || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d %s", res.StatusCode, b)
	}
}

func TestAnthropicFaults(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`
	stream := strings.Replace(body, "{", `{"stream":true,`, 1)
	for _, c := range []struct {
		status     int
		typ, retry string
	}{
		{429, "rate_limit_error", "1"},
		{529, "overloaded_error", ""},
		{500, "api_error", ""},
		{401, "authentication_error", ""},
		{404, "not_found_error", ""},
		{400, "invalid_request_error", ""},
	} {
		for _, b := range []string{body, stream} {
			res, out := do(t, srv, "POST", "/v1/messages", b, "anthropic-version", anthropicVersion, FaultHeader, "status="+itoa(c.status))
			m := decodeJSON(t, string(out))
			e, _ := m["error"].(map[string]any)
			if res.StatusCode != c.status || m["type"] != "error" || e["type"] != c.typ || e["message"] == "" ||
				res.Header.Get("Retry-After") != c.retry || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Errorf("status=%d: %d %v %s", c.status, res.StatusCode, res.Header, out)
			}
		}
	}
	// reset_after=3: three events, then the connection drops.
	_, out, err := doErr(t, srv, "POST", "/v1/messages", stream, "anthropic-version", anthropicVersion, FaultHeader, "reset_after=3")
	if err == nil || len(parseSSE(t, out[:strings.LastIndex(string(out), "\n\n")+2])) != 3 {
		t.Errorf("reset_after=3: err %v, %s", err, out)
	}
	if _, _, err := doErr(t, srv, "POST", "/v1/messages", body, "anthropic-version", anthropicVersion, FaultHeader, "reset_after=0"); err == nil {
		t.Error("non-stream reset_after=0 answered")
	}
	// no_usage: neither the message nor the stream reports usage.
	for _, b := range []string{body, stream} {
		_, out := messages(t, srv, b, FaultHeader, "no_usage")
		if strings.Contains(string(out), "usage") || strings.Contains(string(out), "_tokens") || !strings.Contains(string(out), "end_turn") {
			t.Errorf("no_usage: %s", out)
		}
	}
	// delay: answered after it, still well-formed.
	if status, out := messages(t, srv, body, FaultHeader, "delay=20ms"); status != 200 || decodeMessage(t, out).StopReason != "end_turn" {
		t.Errorf("delay: %d %s", status, out)
	}
	// count_tokens takes faults too.
	res, out := do(t, srv, "POST", "/v1/messages/count_tokens", body, "anthropic-version", anthropicVersion, FaultHeader, "status=529")
	if res.StatusCode != 529 || !strings.Contains(string(out), "overloaded_error") {
		t.Errorf("count_tokens status=529: %d %s", res.StatusCode, out)
	}
	res, out = do(t, srv, "POST", "/v1/messages", body, "anthropic-version", anthropicVersion, FaultHeader, "bogus")
	if res.StatusCode != 400 || !strings.Contains(string(out), `"type":"invalid_request_error"`) {
		t.Errorf("malformed fault: %d %s", res.StatusCode, out)
	}
}
