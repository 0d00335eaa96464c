package sim

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"llmscope/anthropic"
	"llmscope/openai"
)

// TestAnthropicWire reads the simulator's Messages answers with the
// gateway's wire package: the facts it records must be the simulator's
// own accounting, streamed or not, cache writes and reads included.
func TestAnthropicWire(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const system = `"system":[{"type":"text","text":"You know bridges.","cache_control":{"type":"ephemeral"}}]`
	for _, body := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":300,` + system + `,"messages":[{"role":"user","content":"Describe a bridge."}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":300,` + system + `,"messages":[{"role":"user","content":"Describe a river."}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":3000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Think."}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":300,"messages":[{"role":"user","content":"Weather?"}],"tools":[` + anthropicTool + `]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":4,"messages":[{"role":"user","content":"Describe a bridge."}]}`,
	} {
		_, whole := messages(t, srv, body)
		m := decodeMessage(t, whole)
		var res openai.Response
		res.SetTextLimit(1 << 16)
		anthropic.ReadBody(&res, whole)
		u := res.Usage
		if !res.HasUsage || res.ID != m.ID || res.FinishReason != m.StopReason ||
			u.InputTokens != int64(m.Usage.InputTokens+m.Usage.CacheCreation+m.Usage.CacheRead) ||
			u.CachedInputTokens != int64(m.Usage.CacheRead) || u.CacheCreationInputTokens != int64(m.Usage.CacheCreation) ||
			u.OutputTokens != int64(m.Usage.OutputTokens) {
			t.Errorf("body %s: read %+v", whole, res)
		}
		if m.StopReason == "tool_use" && !strings.Contains(res.ToolCalls(), `"name":"get_weather"`) {
			t.Errorf("tool calls %q", res.ToolCalls())
		}
		// The stream of the same request (now a cache read, as the body's
		// was on the second request) gives the same facts.
		_, whole = messages(t, srv, body)
		m = decodeMessage(t, whole)
		_, sb := messages(t, srv, strings.Replace(body, "{", `{"stream":true,`, 1))
		ev := anthropic.NewEvents(1 << 16)
		er := openai.NewEventReader(bytes.NewReader(sb))
		for {
			raw, data, err := er.Next()
			if len(raw) > 0 {
				ev.Event(data)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r := ev.Result()
		if !ev.Finished() || r.Usage.OutputTokens != int64(m.Usage.OutputTokens) || r.Usage.CachedInputTokens != int64(m.Usage.CacheRead) ||
			r.Usage.InputTokens != int64(m.Usage.InputTokens+m.Usage.CacheCreation+m.Usage.CacheRead) || r.FinishReason != m.StopReason {
			t.Errorf("stream of %s: read %+v, message %s", body, r, whole)
		}
		if m.StopReason != "tool_use" && r.Text() != m.Content[len(m.Content)-1].Text {
			t.Errorf("stream text %q, message %q", r.Text(), m.Content[len(m.Content)-1].Text)
		}
	}
}
