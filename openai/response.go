package openai

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"llmscope"
)

// Response gathers what llmscope reads from a response, whether it arrives as
// one JSON body (ReadBody) or as SSE events (a Stream).
type Response struct {
	Model        string
	Usage        llmscope.Usage // Source is UsageReported when HasUsage
	HasUsage     bool
	FinishReason string
	ErrorType    string // error.type of an error body
	ErrorCode    string // error.code of an error body
	ErrorMessage string // error.message of an error body, cut to llmscope.MaxErrorMessage
	// The answer's id, creation time (unix seconds) and system fingerprint.
	ID                string
	Created           int64
	SystemFingerprint string
	Chunks            int64 // events of a stream, its end marker excluded
	// ServiceTier is the tier the upstream says it served the call on
	// (Anthropic's usage.service_tier), "" when it said none.
	ServiceTier string
	text        strings.Builder
	textMax     int
	tools       toolCalls
}

// ToolCalls returns the answer's tool calls as a JSON array ("" when none):
// the Chat Completions shape, or the function_call items of a Responses
// answer. Kept only while text is (SetTextLimit), arguments within it.
func (r *Response) ToolCalls() string { return r.tools.JSON() }

// readMeta reads the answer's id, created and system_fingerprint members
// from the first object that has them.
func (r *Response) readMeta(id, created, fp gjson.Result) {
	if r.ID != "" {
		return
	}
	if id.Type == gjson.String {
		r.ID = strings.Clone(id.Str)
	}
	if created.Type == gjson.Number {
		r.Created = created.Int()
	}
	if fp.Type == gjson.String {
		r.SystemFingerprint = strings.Clone(fp.Str)
	}
}

// readTier keeps the service tier the answer reports (OpenAI's
// service_tier: "default", "priority", "flex", "scale"), the first one seen.
func (r *Response) readTier(v gjson.Result) {
	if r.ServiceTier != "" || v.Type != gjson.String || v.Str == "" || len(v.Str) > 32 {
		return
	}
	switch v.Str { // the usual values without a copy
	case "default":
		r.ServiceTier = "default"
	case "priority":
		r.ServiceTier = "priority"
	case "flex":
		r.ServiceTier = "flex"
	default:
		r.ServiceTier = strings.Clone(v.Str)
	}
}

// readMetaMembers is readMeta over the top-level members ms of data.
func (r *Response) readMetaMembers(data []byte, ms []member) {
	if r.ID != "" {
		return
	}
	var id, created, fp, tier []byte
	for i := range ms {
		m := &ms[i]
		switch m.name(data) {
		case "id":
			id = first(id, data[m.v0:m.v1])
		case "created":
			created = first(created, data[m.v0:m.v1])
		case "system_fingerprint":
			fp = first(fp, data[m.v0:m.v1])
		case "service_tier":
			tier = first(tier, data[m.v0:m.v1])
		}
	}
	r.readMeta(gjson.Parse(str(id)), gjson.Parse(str(created)), gjson.Parse(str(fp)))
	r.readTier(gjson.Parse(str(tier)))
}

// Text returns the response text gathered so far (the assistant's content),
// cut at the size given to SetTextLimit.
func (r *Response) Text() string { return r.text.String() }

// SetTextLimit makes the response keep at most max bytes of text; 0 keeps
// none. Text is needed only for capture and for estimating missing usage.
func (r *Response) SetTextLimit(max int) { r.textMax = max }

func (r *Response) addText(s string) {
	if room := r.textMax - r.text.Len(); room > 0 && s != "" {
		if len(s) > room {
			s = Truncate(s, room)
		}
		r.text.WriteString(s)
	}
}

// ReadBody reads a non-streamed JSON response body of operation op. Bodies
// that are not JSON leave r unchanged.
func (r *Response) ReadBody(op string, body []byte) {
	var scratch [16]member
	ms, ok := scanObject(body, scratch[:0]) // nesting bounded as everywhere
	if !ok {
		r.readBodyGJSON(op, body) // not an object, or not JSON at all
		return
	}
	// One pass found the top-level members; read the first of each name,
	// as gjson's Get would.
	errv, model, usage, choices := topMembers(body, ms)
	if isObject(errv) {
		r.ErrorType, r.ErrorCode, r.ErrorMessage = errorFields(errv)
		return
	}
	if op != llmscope.OpResponses {
		r.readMetaMembers(body, ms)
	}
	if len(model) > 0 && model[0] == '"' {
		r.Model = strings.Clone(stringValue(model))
	}
	if isObject(usage) {
		r.readUsage(gjson.Result{Type: gjson.JSON, Raw: str(usage)})
	}
	switch op {
	case llmscope.OpChat, llmscope.OpTextCompletion:
		r.readChoices(op, gjson.Parse(str(choices)))
	case llmscope.OpResponses:
		r.readResponseObject(gjson.Parse(str(body)))
	}
}

// readBodyGJSON is ReadBody with gjson alone: the way for bodies that are
// not a JSON object, and the reference ReadBody is tested against.
func (r *Response) readBodyGJSON(op string, body []byte) {
	if !validJSON(body) {
		return
	}
	root := gjson.Parse(str(body))
	if e := root.Get("error"); e.IsObject() {
		r.ErrorType, r.ErrorCode, r.ErrorMessage = errorFields([]byte(e.Raw))
		return
	}
	if op != llmscope.OpResponses {
		r.readMeta(root.Get("id"), root.Get("created"), root.Get("system_fingerprint"))
		r.readTier(root.Get("service_tier"))
	}
	if m := root.Get("model"); m.Type == gjson.String {
		r.Model = strings.Clone(m.Str)
	}
	r.readUsage(root.Get("usage"))
	switch op {
	case llmscope.OpChat, llmscope.OpTextCompletion:
		r.readChoices(op, root.Get("choices"))
	case llmscope.OpResponses:
		r.readResponseObject(root)
	}
}

// readChoices reads the first of the choices of a chat or text completion.
func (r *Response) readChoices(op string, choices gjson.Result) {
	switch op {
	case llmscope.OpChat:
		choices.ForEach(func(_, c gjson.Result) bool {
			if r.FinishReason == "" {
				r.FinishReason = strings.Clone(c.Get("finish_reason").Str)
			}
			r.addText(c.Get("message.content").Str)
			r.tools.setRaw(c.Get("message.tool_calls"), r.textMax)
			return false // the first choice speaks for the call
		})
	case llmscope.OpTextCompletion:
		choices.ForEach(func(_, c gjson.Result) bool {
			r.FinishReason = strings.Clone(c.Get("finish_reason").Str)
			r.addText(c.Get("text").Str)
			return false
		})
	}
}

// readResponseObject reads a Responses API response object.
func (r *Response) readResponseObject(obj gjson.Result) {
	if m := obj.Get("model"); m.Type == gjson.String {
		r.Model = strings.Clone(m.Str)
	}
	r.readMeta(obj.Get("id"), obj.Get("created_at"), gjson.Result{})
	r.readTier(obj.Get("service_tier"))
	r.readUsage(obj.Get("usage"))
	if r.tools.raw == "" {
		r.tools.raw = functionCallItems(obj.Get("output"), r.textMax)
	}
	switch obj.Get("status").Str {
	case "completed":
		r.FinishReason = "stop"
		obj.Get("output").ForEach(func(_, item gjson.Result) bool {
			if item.Get("type").Str == "function_call" {
				r.FinishReason = "tool_calls"
			}
			return true
		})
	case "incomplete":
		r.FinishReason = strings.Clone(obj.Get("incomplete_details.reason").Str)
		if r.FinishReason == "max_output_tokens" {
			r.FinishReason = "length"
		}
	case "failed":
		r.FinishReason = "error"
		if e := obj.Get("error"); e.IsObject() {
			r.ErrorType = strings.Clone(e.Get("code").String())
			r.ErrorMessage = errorMessage(e.Get("message").String())
		}
	}
	if r.text.Len() == 0 && r.textMax > 0 {
		obj.Get("output").ForEach(func(_, item gjson.Result) bool {
			item.Get("content").ForEach(func(_, part gjson.Result) bool {
				if part.Get("type").Str == "output_text" {
					r.addText(part.Get("text").Str)
				}
				return true
			})
			return true
		})
	}
}

// readUsage reads a usage object in either naming scheme: Chat Completions
// (prompt_tokens, completion_tokens) or Responses (input_tokens, output_tokens).
func (r *Response) readUsage(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	var us llmscope.Usage
	u.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "prompt_tokens", "input_tokens":
			us.InputTokens = v.Int()
		case "completion_tokens", "output_tokens":
			us.OutputTokens = v.Int()
		case "total_tokens":
			us.TotalTokens = v.Int()
		case "prompt_tokens_details", "input_tokens_details":
			us.CachedInputTokens = v.Get("cached_tokens").Int()
		case "completion_tokens_details", "output_tokens_details":
			us.ReasoningTokens = v.Get("reasoning_tokens").Int()
		}
		return true
	})
	if us.TotalTokens == 0 {
		us.TotalTokens = us.InputTokens + us.OutputTokens
	}
	us.Source = llmscope.UsageReported
	r.Usage = us
	r.HasUsage = true
}

// ReadTail reads the model and usage of a JSON response body too large to
// keep whole, from its last bytes: OpenAI puts "model" and "usage" after the
// data of large answers (embeddings). It reads nothing it cannot parse.
func (r *Response) ReadTail(tail []byte) {
	if v, ok := memberAfter(tail, `"usage":`); ok && v.IsObject() {
		r.readUsage(v)
	}
	if v, ok := memberAfter(tail, `"model":`); ok && v.Type == gjson.String {
		r.Model = strings.Clone(v.Str)
	}
}

// memberAfter parses the JSON value that follows the last occurrence of key
// in b.
func memberAfter(b []byte, key string) (gjson.Result, bool) {
	i := bytes.LastIndex(b, []byte(key))
	if i < 0 {
		return gjson.Result{}, false
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	end := valueEnd(rest)
	if end < 0 || !validJSON(rest[:end]) {
		return gjson.Result{}, false
	}
	return gjson.Parse(str(rest[:end])), true
}

// valueEnd returns the length of the JSON value at the start of b (an
// object, array, string or scalar), or -1 if it is cut off.
func valueEnd(b []byte) int {
	depth, inStr, esc := 0, false, false
	for i, c := range b {
		switch {
		case esc:
			esc = false
		case inStr:
			if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
				if depth == 0 {
					return i + 1
				}
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case depth == 0 && (c == ',' || c == ' ' || c == '\n'):
			return i
		}
	}
	return -1
}
