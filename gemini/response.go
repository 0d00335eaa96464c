package gemini

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"llmscope"
	"llmscope/openai"
)

// ReadBody reads a non-streamed Gemini answer into res: a
// GenerateContentResponse, the JSON array of them that
// :streamGenerateContent answers without alt=sse (read chunk by chunk, as
// NewEvents reads a stream), or an error body ({"error":{…}}, alone or as
// an array's element). It reads modelVersion as Model, responseId as ID,
// the first candidate's finishReason (Gemini's own value: STOP, MAX_TOKENS,
// SAFETY…) and its text parts (thought parts are not output text) as
// text, its functionCall parts as tool calls in the Chat Completions shape,
// and usageMetadata as usage (see readUsage). A body that is not JSON
// leaves res unchanged.
func ReadBody(res *openai.Response, body []byte) {
	if !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return
	}
	root := gjson.ParseBytes(body)
	var f answerFacts
	switch {
	case root.IsObject():
		f.chunk(res, root)
	case root.IsArray():
		root.ForEach(func(_, c gjson.Result) bool {
			if c.IsObject() {
				f.chunk(res, c)
			}
			return true
		})
	default:
		return
	}
	f.calls.into(res)
}

// answerFacts gathers what the chunks of one answer say, whether they come as
// one body, an array or SSE events.
type answerFacts struct {
	calls    toolCalls
	finished bool // a chunk carried finishReason
	done     bool // ... and usage, at or after it
}

// chunk reads one GenerateContentResponse (or error object) into res and
// reports whether it carried generated content (text, thoughts or a
// function call).
func (f *answerFacts) chunk(res *openai.Response, c gjson.Result) bool {
	var cands, usage, errv gjson.Result
	c.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "error":
			errv = v
		case "candidates":
			cands = v
		case "usagemetadata":
			usage = v
		case "modelversion":
			if v.Type == gjson.String && v.Str != "" {
				res.Model = strings.Clone(v.Str)
			}
		case "responseid":
			if v.Type == gjson.String && res.ID == "" {
				res.ID = strings.Clone(v.Str)
			}
		}
		return true
	})
	if errv.IsObject() {
		readError(res, errv)
		return false
	}
	content := false
	cands.ForEach(func(_, cand gjson.Result) bool {
		if i := cand.Get("index"); i.Exists() && i.Int() != 0 {
			return true // the first candidate speaks for the call
		}
		cand.ForEach(func(k, v gjson.Result) bool {
			switch norm(k.Str) {
			case "finishreason":
				if v.Type == gjson.String && v.Str != "" {
					res.FinishReason = strings.Clone(v.Str)
					f.finished = true
				}
			case "content":
				if f.parts(res, v.Get("parts")) {
					content = true
				}
			}
			return true
		})
		return false
	})
	if readUsage(res, usage) && f.finished {
		f.done = true
	}
	return content
}

// parts reads a candidate's parts; it reports whether any was generated
// content.
func (f *answerFacts) parts(res *openai.Response, parts gjson.Result) bool {
	content := false
	parts.ForEach(func(_, p gjson.Result) bool {
		thought := false
		var text, call gjson.Result
		p.ForEach(func(k, v gjson.Result) bool {
			switch norm(k.Str) {
			case "text":
				text = v
			case "thought":
				thought = v.Type == gjson.True
			case "functioncall":
				call = v
			}
			return true
		})
		if text.Type == gjson.String && text.Str != "" {
			content = true
			if !thought {
				res.AddText(text.Str)
			}
		}
		if call.IsObject() {
			content = true
			args := call.Get("args").Raw
			if args == "" {
				args = "{}"
			}
			f.calls.add(call.Get("id").String(), call.Get("name").String(), args, res.TextLimit())
		}
		return true
	})
	return content
}

// readUsage reads usageMetadata u into res and reports whether it was an
// object. Gemini's counts are cumulative, so the last one read wins:
// InputTokens is promptTokenCount plus toolUsePromptTokenCount (the
// results of tools the model ran itself, also input), CachedInputTokens
// cachedContentTokenCount (part of the prompt), OutputTokens
// candidatesTokenCount plus thoughtsTokenCount, ReasoningTokens
// thoughtsTokenCount, TotalTokens totalTokenCount, or input plus output
// when it is absent. Gemini's total is exactly that sum; a total that
// disagrees is kept as reported.
func readUsage(res *openai.Response, u gjson.Result) bool {
	if !u.IsObject() {
		return false
	}
	var prompt, toolPrompt, cached, candidates, thoughts, total int64
	u.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "prompttokencount":
			prompt = count(v)
		case "tooluseprompttokencount":
			toolPrompt = count(v)
		case "cachedcontenttokencount":
			cached = count(v)
		case "candidatestokencount":
			candidates = count(v)
		case "thoughtstokencount":
			thoughts = count(v)
		case "totaltokencount":
			total = count(v)
		}
		return true
	})
	in, out := prompt+toolPrompt, candidates+thoughts
	if total == 0 {
		total = in + out
	}
	res.Usage = llmscope.Usage{
		InputTokens:       in,
		OutputTokens:      out,
		TotalTokens:       total,
		CachedInputTokens: min(cached, in),
		ReasoningTokens:   thoughts,
		Source:            llmscope.UsageReported,
	}
	res.HasUsage = true
	return true
}

// maxCount bounds a count read, so sums of fuzzed counts cannot overflow.
const maxCount = 1 << 53

// count returns v as a token count: a number in [0, maxCount], else 0.
// Gemini's JSON writes int32 counts as numbers, int64 ones as strings.
func count(v gjson.Result) int64 {
	if v.Type != gjson.Number && v.Type != gjson.String {
		return 0
	}
	return min(max(v.Int(), 0), maxCount)
}

// readError reads a google.rpc error object
// ({"code":429,"message":…,"status":"RESOURCE_EXHAUSTED"}) into res:
// ErrorType is its status (or "error" when it has none), ErrorCode its
// code, ErrorMessage its message cut to llmscope.MaxErrorMessage.
func readError(res *openai.Response, e gjson.Result) {
	res.ErrorType = strings.Clone(e.Get("status").String())
	if res.ErrorType == "" {
		res.ErrorType = "error"
	}
	res.ErrorCode = strings.Clone(e.Get("code").String())
	res.ErrorMessage = openai.Truncate(e.Get("message").String(), llmscope.MaxErrorMessage)
}

// maxToolCalls bounds the function calls kept of one answer.
const maxToolCalls = 64

// toolCalls gathers function calls in the Chat Completions shape, within a
// byte budget (the response's text limit).
type toolCalls struct {
	b    []byte
	n    int
	over bool
}

// add appends one call; args is the raw JSON of its arguments. A call
// without an id (the Gemini API gives none; Vertex AI and the Live API
// do) is numbered call_0, call_1, … in answer order.
func (t *toolCalls) add(id, name, args string, limit int) {
	if t.over || t.n >= maxToolCalls || limit <= 0 || len(t.b)+len(name)+len(args)+len(id) > limit {
		t.over = true
		return
	}
	if id == "" {
		id = "call_" + strconv.Itoa(t.n)
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
	if len(t.b) > limit {
		t.over = true
	}
}

// into hands the calls to res (SetToolCallsJSON keeps them only within the
// text limit); nothing when there were none or they outgrew it.
func (t *toolCalls) into(res *openai.Response) {
	if t.n == 0 || t.over {
		return
	}
	res.SetToolCallsJSON(string(append(t.b, ']')))
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil {
		return append(b, `""`...)
	}
	return append(b, q...)
}

// Status returns the google.rpc status name Gemini's errors carry for an
// HTTP status: RESOURCE_EXHAUSTED for 429, INVALID_ARGUMENT for 400, …
func Status(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusRequestEntityTooLarge:
		return "INVALID_ARGUMENT"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// WriteError answers with Gemini's error body
// {"error":{"code":…,"message":…,"status":…}} for an error llmscope raises
// itself; status names follow the HTTP status (Status). llmscope's own
// error type or code (typ, code; code wins), when given, rides along as a
// google.rpc.ErrorInfo detail with that reason and domain "llmscope", so a
// budget refusal still says budget_exceeded.
func WriteError(w http.ResponseWriter, status int, typ, code, msg string) {
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"status":`...)
	b = appendString(b, Status(status))
	reason := code
	if reason == "" {
		reason = typ
	}
	if reason != "" {
		b = append(b, `,"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":`...)
		b = appendString(b, reason)
		b = append(b, `,"domain":"llmscope"}]`...)
	}
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
