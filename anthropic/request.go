// Package anthropic reads Anthropic's Messages API wire format, as package
// openai reads OpenAI's: request parameters, the facts of an answer (id,
// model, stop reason, text, tool calls, usage) from a JSON body or an SSE
// stream, and error bodies. It gathers them into the openai package's
// Request and Response, so the gateway and the Finisher treat every
// provider alike. It never re-encodes a body it only reads.
package anthropic

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"llmscope"
	"llmscope/openai"
)

// Provider is the OpenTelemetry gen_ai.provider.name of Anthropic.
const Provider = "anthropic"

// MessagesPath is the path of the Messages API; CountTokensPath its token
// counter.
const (
	MessagesPath    = "/v1/messages"
	CountTokensPath = "/v1/messages/count_tokens"
)

// Operation names the operation of a request to path and, when its method
// does not suit the path, returns the methods allowed there. POST
// /v1/messages is a chat; anything else below it (count_tokens, message
// batches) and CORS preflights pass through as other.
func Operation(method, path string) (op, allowed string) {
	if path != MessagesPath || method == http.MethodOptions {
		return llmscope.OpOther, ""
	}
	if method != http.MethodPost {
		return llmscope.OpChat, "POST, OPTIONS"
	}
	return llmscope.OpChat, ""
}

// ParseRequest reads the model, streaming flag and generation parameters of
// a Messages request body: max_tokens, temperature, top_p, stop_sequences
// (as Stop), tools (their count), tool_choice (its tool name, else its
// type) and service_tier. metadata.user_id is not read (it is the client's
// own opaque id). top_k and the thinking budget have no place in
// llmscope.Params and are not kept. A body that is not a JSON object gives
// Valid false. IncludeUsage is true for a stream: Messages streams always
// report usage, so there is nothing to inject.
func ParseRequest(body []byte) openai.Request {
	var r openai.Request
	if len(body) == 0 || !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return r
	}
	root := gjson.Parse(str(body))
	if !root.IsObject() {
		return r
	}
	r.Valid = true
	p := &r.Params
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			r.Model = strings.Clone(v.Str)
		case "stream":
			r.Stream = v.Type == gjson.True
		case "max_tokens":
			p.MaxTokens = integer(v)
		case "temperature":
			p.Temperature = float(v)
		case "top_p":
			p.TopP = float(v)
		case "stop_sequences":
			p.Stop = nil
			if v.IsArray() {
				v.ForEach(func(_, s gjson.Result) bool {
					p.Stop = append(p.Stop, strings.Clone(s.String()))
					return true
				})
			}
		case "tools":
			p.Tools = nil
			if v.IsArray() {
				n := int64(len(v.Array()))
				p.Tools = &n
			}
		case "tool_choice":
			p.ToolChoice = ""
			if name := v.Get("name"); name.Type == gjson.String && name.Str != "" {
				p.ToolChoice = strings.Clone(name.Str)
			} else {
				p.ToolChoice = strings.Clone(v.Get("type").Str)
			}
			if d := v.Get("disable_parallel_tool_use"); d.IsBool() {
				b := !d.Bool()
				p.ParallelToolCalls = &b
			}
		case "service_tier":
			p.ServiceTier = strings.Clone(v.Str)
		}
		return true
	})
	r.IncludeUsage = r.Stream
	return r
}

// CaptureInput returns what a Messages request asks the model about, as raw
// JSON cut to at most max bytes: {"system":…,"messages":…} when it has a
// system prompt, else its messages array. tools is its tools array, or ""
// when it has none or the array is longer than max (a cut array would not
// be JSON).
func CaptureInput(body []byte, max int) (input, tools string) {
	if !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return "", ""
	}
	return Capture(body, max)
}

// Capture is CaptureInput for a body already known to be valid JSON
// (ParseRequest said Valid): it validates nothing again.
func Capture(body []byte, max int) (input, tools string) {
	res := gjson.GetMany(str(body), "messages", "system", "tools")
	msgs, sys, tl := res[0], res[1], res[2]
	if msgs.Exists() {
		input = msgs.Raw
		if sys.Exists() {
			input = `{"system":` + sys.Raw + `,"messages":` + msgs.Raw + `}`
		}
	}
	if tl.IsArray() && tl.Raw != "[]" && (max <= 0 || len(tl.Raw) <= max) {
		tools = strings.Clone(tl.Raw)
	}
	return openai.Truncate(input, max), tools
}

// WriteError answers with Anthropic's error body
// {"type":"error","error":{"type":…,"message":…}} for an error llmscope
// raises itself. typ and code are llmscope's (OpenAI-style) names; the
// body's type is the Anthropic type closest to them, so SDKs raise the
// error class they would for the same status from Anthropic.
func WriteError(w http.ResponseWriter, status int, typ, code, message string) {
	b := make([]byte, 0, 80+len(message))
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendString(b, errorType(status, typ, code))
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errorType maps llmscope's error type and code to Anthropic's error types.
func errorType(status int, typ, code string) string {
	if code == "overloaded" {
		return "overloaded_error"
	}
	if typ == "invalid_request_error" && status >= 500 {
		return "invalid_request_error"
	}
	return ErrorTypeOf(status)
}

// StatusOverloaded is Anthropic's 529 "overloaded_error".
const StatusOverloaded = 529

// ErrorTypeOf returns Anthropic's error type for an HTTP status, as its
// errors documentation lists them: invalid_request_error (400 and other
// 4xx), authentication_error (401), billing_error (402), permission_error
// (403), not_found_error (404), request_too_large (413), rate_limit_error
// (429), timeout_error (504), overloaded_error (529), api_error (other 5xx).
func ErrorTypeOf(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusPaymentRequired:
		return "billing_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusGatewayTimeout:
		return "timeout_error"
	case status == StatusOverloaded:
		return "overloaded_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// float returns v's value when it is a finite number, else nil.
func float(v gjson.Result) *float64 {
	if v.Type != gjson.Number || math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
		return nil
	}
	f := v.Num
	return &f
}

// integer returns v's value when it is an integral number that fits int64.
func integer(v gjson.Result) *int64 {
	if v.Type != gjson.Number {
		return nil
	}
	if i, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
		return &i
	}
	if v.Num != math.Trunc(v.Num) || v.Num >= 1<<63 || v.Num < -(1<<63) {
		return nil
	}
	i := int64(v.Num)
	return &i
}

// str views b as a string without copying: every value kept from what it
// parses is cloned (strings.Clone, openai.Truncate, AddText), so nothing
// outlives b's contents.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// appendString appends s as a JSON string (strconv.AppendQuote's escapes
// are Go's, not all of them JSON).
func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil {
		return append(b, `""`...)
	}
	return append(b, q...)
}
