package anthropic

import (
	"strings"

	"github.com/tidwall/gjson"

	"llmscope"
	"llmscope/openai"
)

// ReadBody reads a non-streamed Messages answer (or an error body) into
// res: id, model, stop_reason as the finish reason (Anthropic's own value:
// end_turn, max_tokens, tool_use, stop_sequence…), the text of its text
// blocks (thinking blocks are not output text), its tool_use blocks as
// tool calls in the Chat Completions shape, usage and service tier. A body
// that is not JSON leaves res unchanged.
func ReadBody(res *openai.Response, body []byte) {
	if !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return
	}
	root := gjson.Parse(str(body))
	if !root.IsObject() {
		return
	}
	if readError(res, root) {
		return
	}
	if v := root.Get("id"); v.Type == gjson.String && res.ID == "" {
		res.ID = strings.Clone(v.Str)
	}
	if v := root.Get("model"); v.Type == gjson.String {
		res.Model = strings.Clone(v.Str)
	}
	if v := root.Get("stop_reason"); v.Type == gjson.String {
		res.FinishReason = strings.Clone(v.Str)
	}
	var u usage
	if u.read(root.Get("usage")) {
		u.into(res)
	}
	var tc toolCalls
	root.Get("content").ForEach(func(_, b gjson.Result) bool {
		switch b.Get("type").Str {
		case "text":
			res.AddText(b.Get("text").Str)
		case "tool_use":
			in := b.Get("input").Raw
			if in == "" {
				in = "{}"
			}
			tc.add(b.Get("id").Str, b.Get("name").Str, in, res.TextLimit())
		}
		return true
	})
	tc.into(res)
}

// readError reads an error object ({"type":"error","error":{…}}, a body or
// a stream's error event) into res; false when v carries none.
func readError(res *openai.Response, v gjson.Result) bool {
	e := v.Get("error")
	if !e.IsObject() {
		return false
	}
	res.ErrorType = strings.Clone(e.Get("type").String())
	if res.ErrorType == "" {
		res.ErrorType = "error"
	}
	res.ErrorMessage = openai.Truncate(e.Get("message").String(), llmscope.MaxErrorMessage)
	return true
}

// usage is the token usage of a Messages answer as Anthropic reports it:
// input_tokens exclude the cache writes and reads, which add up to the
// prompt with it.
type usage struct {
	input, cacheWrite, cacheRead, output int64
	tier                                 string
	seen                                 bool
}

// read merges a usage object (message_start's whole one, message_delta's
// cumulative counts) into u: a count present replaces the one before.
// It reports whether v was a usage object.
func (u *usage) read(v gjson.Result) bool {
	if !v.IsObject() {
		return false
	}
	v.ForEach(func(k, n gjson.Result) bool {
		switch k.Str {
		case "input_tokens":
			u.input = count(n, u.input)
		case "cache_creation_input_tokens":
			u.cacheWrite = count(n, u.cacheWrite)
		case "cache_read_input_tokens":
			u.cacheRead = count(n, u.cacheRead)
		case "output_tokens":
			u.output = count(n, u.output)
		case "service_tier":
			if n.Type == gjson.String && n.Str != "" {
				u.tier = strings.Clone(n.Str)
			}
		}
		return true
	})
	u.seen = true
	return true
}

// count returns n as a token count, or old when n is not a number (null).
func count(n gjson.Result, old int64) int64 {
	if n.Type != gjson.Number {
		return old
	}
	return max(n.Int(), 0)
}

// into sets res's usage in llmscope's terms: InputTokens is the whole
// prompt (input + cache writes + cache reads), CachedInputTokens the cache
// reads, CacheCreationInputTokens the cache writes.
func (u *usage) into(res *openai.Response) {
	in := u.input + u.cacheWrite + u.cacheRead
	res.Usage = llmscope.Usage{
		InputTokens:              in,
		OutputTokens:             u.output,
		TotalTokens:              in + u.output,
		CachedInputTokens:        u.cacheRead,
		CacheCreationInputTokens: u.cacheWrite,
		Source:                   llmscope.UsageReported,
	}
	res.HasUsage = true
	if u.tier != "" {
		res.ServiceTier = u.tier
	}
}

// maxToolCalls bounds the tool calls kept of one answer.
const maxToolCalls = 64

// toolCalls gathers tool_use blocks in the Chat Completions shape, within a
// byte budget (the response's text limit).
type toolCalls struct {
	b    []byte
	n    int
	over bool
}

// add appends one tool call; args is the raw JSON of its input.
func (t *toolCalls) add(id, name, args string, limit int) {
	if t.over || t.n >= maxToolCalls {
		t.over = true
		return
	}
	if t.b == nil {
		t.b = append(t.b, '[')
	} else {
		t.b = append(t.b, ',')
	}
	t.b = append(t.b, `{"id":`...)
	t.b = appendString(t.b, id)
	t.b = append(t.b, `,"type":"function","function":{"name":`...)
	t.b = appendString(t.b, name)
	t.b = append(t.b, `,"arguments":`...)
	t.b = appendString(t.b, args)
	t.b = append(t.b, "}}"...)
	t.n++
	if limit <= 0 || len(t.b) > limit {
		t.over = true
	}
}

// into hands the tool calls to res (SetToolCallsJSON keeps them only within
// the text limit); nothing when there were none or they outgrew it.
func (t *toolCalls) into(res *openai.Response) {
	if t.n == 0 || t.over {
		return
	}
	res.SetToolCallsJSON(string(append(t.b, ']')))
}
