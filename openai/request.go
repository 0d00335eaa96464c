// Package openai reads OpenAI's wire formats: request parameters, usage and
// finish reasons from JSON responses and SSE streams, and error bodies. It is
// shared by the gateway, the SDK transport and the chat; it never re-encodes a
// body it only reads.
package openai

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"llmscope"
)

// Request holds what llmscope reads from a request body.
type Request struct {
	Valid        bool // the body is a JSON object
	Model        string
	Stream       bool
	IncludeUsage bool // stream_options.include_usage is true
	Params       llmscope.Params
	// Invalid lists the parameters sent with a value llmscope cannot keep
	// as what it should be (a float that is not finite, an integer that is
	// not integral or does not fit int64, a string where a number belongs);
	// their Params fields stay nil. nil in the usual case.
	Invalid []InvalidParam `json:",omitempty"`

	// brace is the index of the body's closing brace when InjectUsage may
	// splice there: the body starts with its '{', has members and none named
	// stream_options. 0 otherwise.
	brace int
}

// InvalidParam is a request parameter whose value could not be read.
type InvalidParam struct {
	Name string // the member's name, e.g. "frequency_penalty"
	Raw  string // its JSON text as the client sent it, cut to MaxInvalidRaw bytes
}

// MaxInvalidRaw is how much of an invalid parameter's JSON text is kept.
const MaxInvalidRaw = 64

// Operation returns the operation name of an API path such as
// "/v1/chat/completions" (the "/v1" prefix is optional).
func Operation(path string) string {
	p := strings.TrimPrefix(path, "/v1")
	switch p {
	case "/chat/completions":
		return llmscope.OpChat
	case "/completions":
		return llmscope.OpTextCompletion
	case "/embeddings":
		return llmscope.OpEmbeddings
	case "/responses":
		return llmscope.OpResponses
	case "/models":
		return llmscope.OpModels
	}
	if strings.HasPrefix(p, "/models/") {
		return llmscope.OpModels
	}
	return llmscope.OpOther
}

// OperationOf names the operation of a request and, when its method does not
// suit its path, returns the methods allowed there. Only POST on the exact
// generation paths and GET on the models paths are recorded as such; other
// requests (listing stored completions, deleting a model, CORS preflight)
// pass through as OpOther.
func OperationOf(method, path string) (op, allowed string) {
	op = Operation(path)
	if method == http.MethodOptions {
		return llmscope.OpOther, ""
	}
	switch op {
	case llmscope.OpChat:
		switch method {
		case http.MethodPost:
			return op, ""
		case http.MethodGet: // list stored chat completions
			return llmscope.OpOther, ""
		}
		return op, "GET, POST, OPTIONS"
	case llmscope.OpTextCompletion, llmscope.OpEmbeddings, llmscope.OpResponses:
		if method == http.MethodPost {
			return op, ""
		}
		return op, "POST, OPTIONS"
	case llmscope.OpModels:
		switch {
		case method == http.MethodGet:
			return op, ""
		case method == http.MethodDelete && path != "/v1/models": // delete a fine-tuned model
			return llmscope.OpOther, ""
		}
		return op, "GET, OPTIONS"
	}
	return op, ""
}

// str views b as a string without copying. The string must not outlive b's
// contents, so every value kept from it is cloned.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// MaxDepth bounds the nesting of JSON that llmscope parses. The parser
// recurses once per level, so without a bound a body of a few megabytes of
// "[" would exhaust the stack; deeper JSON is treated as not JSON.
const MaxDepth = 512

const shallowSize = 4096

// validJSON reports whether b is valid JSON nested at most MaxDepth deep.
// Below shallowSize bytes nesting cannot go deep enough to matter, so only
// the validator runs (SSE chunks are that small).
func validJSON(b []byte) bool {
	if len(b) >= shallowSize && !shallow(b) {
		return false
	}
	return gjson.ValidBytes(b)
}

// ParseRequest reads the model, streaming flags and generation parameters of
// a request body in one pass. A body that is not a JSON object gives a
// Request with Valid false and nothing else set.
func ParseRequest(body []byte) Request {
	var r Request
	var scratch [16]member
	ms, ok := scanObject(body, scratch[:0])
	if !ok {
		return r // not JSON, or not an object
	}
	r.Valid = true
	p := &r.Params
	streamOptions := false
	// Every member in order, the last of a name winning (as gjson's ForEach
	// assigning each would). Only small values are parsed further.
	for i := range ms {
		m := &ms[i]
		raw := body[m.v0:m.v1]
		name := m.name(body)
		switch name {
		case "model", "stream", "stream_options", "temperature", "top_p", "max_tokens", "max_completion_tokens",
			"max_output_tokens", "n", "seed", "stop", "presence_penalty", "frequency_penalty", "response_format",
			"text", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort", "reasoning", "logprobs",
			"top_logprobs", "user", "dimensions", "encoding_format", "service_tier":
		default:
			continue // messages, input, prompt: never looked into
		}
		v := value(raw)
		switch name {
		case "model":
			r.Model = strings.Clone(v.Str)
		case "stream":
			r.Stream = v.Type == gjson.True
		case "stream_options":
			streamOptions = true
			r.IncludeUsage = v.Get("include_usage").Type == gjson.True
			if iu := v.Get("include_usage"); iu.IsBool() {
				b := iu.Bool()
				p.IncludeUsage = &b
			}
		case "temperature":
			p.Temperature = r.float(name, v)
		case "top_p":
			p.TopP = r.float(name, v)
		case "max_tokens":
			p.MaxTokens = r.integer(name, v)
		case "max_completion_tokens":
			p.MaxCompletionTokens = r.integer(name, v)
		case "max_output_tokens":
			p.MaxOutputTokens = r.integer(name, v)
		case "n":
			p.N = r.integer(name, v)
		case "seed":
			p.Seed = r.integer(name, v)
		case "stop":
			p.Stop = stops(v)
		case "presence_penalty":
			p.PresencePenalty = r.float(name, v)
		case "frequency_penalty":
			p.FrequencyPenalty = r.float(name, v)
		case "response_format":
			p.ResponseFormat = strings.Clone(v.Get("type").Str)
		case "text": // Responses API: text.format.type
			p.ResponseFormat = strings.Clone(v.Get("format.type").Str)
		case "tools":
			if v.IsArray() {
				n := int64(len(v.Array()))
				p.Tools = &n
			}
		case "tool_choice":
			p.ToolChoice = toolChoice(v)
		case "parallel_tool_calls":
			p.ParallelToolCalls = boolean(v)
		case "reasoning_effort":
			p.ReasoningEffort = strings.Clone(v.Str)
		case "reasoning": // Responses API: reasoning.effort
			p.ReasoningEffort = strings.Clone(v.Get("effort").Str)
		case "logprobs":
			p.Logprobs = boolean(v)
		case "top_logprobs":
			p.TopLogprobs = r.integer(name, v)
		case "user":
			p.User = strings.Clone(v.Str)
		case "dimensions":
			p.Dimensions = r.integer(name, v)
		case "encoding_format":
			p.EncodingFormat = strings.Clone(v.Str)
		case "service_tier":
			p.ServiceTier = strings.Clone(v.Str)
		}
	}
	if body[0] == '{' && len(ms) > 0 && !streamOptions {
		r.brace = len(body) - 1
		for body[r.brace] != '}' {
			r.brace--
		}
	}
	return r
}

// value is the gjson.Result of the valid JSON value raw, as gjson's
// ForEach gives a member's value. It shares raw's memory.
func value(raw []byte) gjson.Result {
	return gjson.Parse(str(raw))
}

// float reads the float parameter name: nil when absent (null), and nil
// with an Invalid entry unless it is a finite number.
func (r *Request) float(name string, v gjson.Result) *float64 {
	f := float(v)
	r.check(name, v, f != nil)
	return f
}

// integer reads the integer parameter name: nil when absent (null), and nil
// with an Invalid entry unless it is an integral number that fits int64.
func (r *Request) integer(name string, v gjson.Result) *int64 {
	i := integer(v)
	r.check(name, v, i != nil)
	return i
}

// check records name as invalid unless ok or v is null, and forgets an
// earlier invalid value of name otherwise (the last member of a name wins).
func (r *Request) check(name string, v gjson.Result, ok bool) {
	if len(r.Invalid) > 0 {
		r.Invalid = slices.DeleteFunc(r.Invalid, func(p InvalidParam) bool { return p.Name == name })
		if len(r.Invalid) == 0 {
			r.Invalid = nil
		}
	}
	if ok || v.Type == gjson.Null {
		return
	}
	r.Invalid = append(r.Invalid, InvalidParam{Name: name, Raw: Truncate(v.Raw, MaxInvalidRaw)})
}

// exactInt returns the integer the JSON number raw (whose float value is
// num) is, and false when it is not integral or does not fit int64.
func exactInt(raw string, num float64) (int64, bool) {
	plain := true
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c == '.' || c == 'e' || c == 'E' {
			plain = false
			break
		}
	}
	if plain {
		i, err := strconv.ParseInt(raw, 10, 64)
		return i, err == nil
	}
	// 2^63 is exactly representable; every float below it in magnitude
	// that is integral converts without overflow.
	if num != math.Trunc(num) || num >= 1<<63 || num < -(1<<63) {
		return 0, false
	}
	return int64(num), true
}

// float returns v's value when it is a finite number, else nil.
func float(v gjson.Result) *float64 {
	if v.Type != gjson.Number || math.IsInf(v.Num, 0) || math.IsNaN(v.Num) {
		return nil
	}
	f := v.Num
	return &f
}

// integer returns v's value when it is an integral number that fits int64
// (exact when written without fraction or exponent, else up to 2^53), else
// nil.
func integer(v gjson.Result) *int64 {
	if v.Type != gjson.Number {
		return nil
	}
	i, ok := exactInt(v.Raw, v.Num)
	if !ok {
		return nil
	}
	return &i
}

func boolean(v gjson.Result) *bool {
	if v.Type != gjson.True && v.Type != gjson.False {
		return nil
	}
	b := v.Type == gjson.True
	return &b
}

func stops(v gjson.Result) []string {
	switch {
	case v.Type == gjson.String:
		return []string{strings.Clone(v.Str)}
	case v.IsArray():
		var out []string
		v.ForEach(func(_, s gjson.Result) bool {
			out = append(out, strings.Clone(s.String()))
			return true
		})
		return out
	}
	return nil
}

func toolChoice(v gjson.Result) string {
	if v.Type == gjson.String {
		return strings.Clone(v.Str)
	}
	if name := v.Get("function.name"); name.Exists() {
		return strings.Clone(name.Str)
	}
	if name := v.Get("name"); name.Exists() {
		return strings.Clone(name.Str)
	}
	return strings.Clone(v.Get("type").Str)
}

// InjectIncludeUsage returns body with stream_options.include_usage set to
// true, for a streaming request whose client did not ask for usage.
func InjectIncludeUsage(body []byte) ([]byte, error) {
	return sjson.SetBytesOptions(body, "stream_options.include_usage", true, &sjson.Options{Optimistic: true})
}

// includeUsage is the member InjectIncludeUsage adds to an object without
// stream_options, with the comma before it and the closing brace after it.
const includeUsage = `,"stream_options":{"include_usage":true}}`

// InjectUsage returns the bytes InjectIncludeUsage(body) returns, for the
// body r was parsed from. In the usual case (no stream_options member) it
// rewrites only what follows the body's last member, appending in place
// when cap(body) leaves room, so the result may share body's memory and
// body must not be used afterwards.
func (r *Request) InjectUsage(body []byte) ([]byte, error) {
	if r.brace <= 0 || r.brace >= len(body) || body[r.brace] != '}' {
		return InjectIncludeUsage(body)
	}
	// sjson drops the white space around the object and adds the member
	// before its closing brace.
	return append(body[:r.brace], includeUsage...), nil
}

// CaptureInput returns what the request asks the model about, as raw JSON
// cut to max bytes: messages, else input (with the instructions when they
// are a string), else prompt; "" when the body is not valid JSON.
func CaptureInput(body []byte, max int) string {
	if !validJSON(body) {
		return ""
	}
	input, _ := Capture(body, max)
	return input
}

// CaptureTools returns the request's tools array as raw JSON, or "" when it
// has none, the body is not valid JSON, or the array is longer than max
// bytes (a cut array would not be JSON).
func CaptureTools(body []byte, max int) string {
	if !validJSON(body) {
		return ""
	}
	_, tools := Capture(body, max)
	return tools
}

// Capture returns what CaptureInput and CaptureTools return for body, a
// request body already known to be valid JSON (ParseRequest said Valid):
// it reads the body's top-level members once and validates nothing. The
// first member of each name counts, as gjson's Get finds it.
func Capture(body []byte, max int) (input, tools string) {
	i := skipWS(body, 0)
	if i == len(body) || body[i] != '{' {
		return "", ""
	}
	obj := body[i:]
	var scratch [16]member
	ms, _ := members(obj, scratch[:0])
	var in [3][]byte // messages, input, prompt
	var ins, tl []byte
	for k := range ms {
		v := obj[ms[k].v0:ms[k].v1]
		switch ms[k].name(obj) {
		case "messages":
			in[0] = first(in[0], v)
		case "input":
			in[1] = first(in[1], v)
		case "prompt":
			in[2] = first(in[2], v)
		case "instructions":
			ins = first(ins, v)
		case "tools":
			tl = first(tl, v)
		}
	}
	var out []byte
	for _, v := range in {
		if v != nil {
			out = v
			break
		}
	}
	if len(ins) > 0 && ins[0] == '"' && len(out) > 0 {
		input = Truncate(`{"instructions":`+string(ins)+`,"input":`+string(out)+`}`, max)
	} else {
		input = Truncate(str(out), max)
	}
	if isArray(tl) && string(tl) != "[]" && (max <= 0 || len(tl) <= max) {
		tools = string(tl)
	}
	return input, tools
}

// Truncate cuts s to at most max bytes without splitting a UTF-8 sequence.
// max <= 0 means no limit.
func Truncate(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return strings.Clone(s)
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return strings.Clone(s[:cut])
}

// Request headers llmscope reads and strips before the upstream.
const (
	HeaderExperiment = "X-Llmscope-Experiment"
	HeaderRun        = "X-Llmscope-Run"
	HeaderUser       = "X-Llmscope-User"
	HeaderSession    = "X-Llmscope-Session"
	HeaderTags       = "X-Llmscope-Tags"
)

// Bounds on the labels a request sets: each queued call holds them, so
// their size bounds the recorder's memory.
const (
	MaxLabelBytes  = 256 // experiment, run, user, session, a tag's value
	MaxTagKeyBytes = 128
	MaxTags        = 64
)

// ReadLabels copies the X-Llmscope-* labels of a request onto c; a header
// that is absent leaves c's value as it is. Labels are cut to MaxLabelBytes,
// tag keys to MaxTagKeyBytes, and tags beyond MaxTags are left out. c.Tags
// is never nil afterwards.
func ReadLabels(h http.Header, c *llmscope.Call) {
	for _, l := range [...]struct {
		name string
		dst  *string
	}{{HeaderExperiment, &c.Experiment}, {HeaderRun, &c.Run}, {HeaderUser, &c.User}, {HeaderSession, &c.Session}} {
		if v := h.Get(l.name); v != "" {
			*l.dst = cut(v, MaxLabelBytes)
		}
	}
	if tags := ParseTags(h.Get(HeaderTags)); tags != nil {
		if c.Tags == nil {
			c.Tags = map[string]string{}
		}
		for k, v := range tags {
			if len(c.Tags) >= MaxTags {
				break
			}
			c.Tags[cut(k, MaxTagKeyBytes)] = cut(v, MaxLabelBytes)
		}
	}
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
}

// ParseTags reads "k=v,k2=v2" into a map. Items without "=" get an empty
// value; blank keys are ignored. It returns nil for an empty string.
func ParseTags(s string) map[string]string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	tags := make(map[string]string)
	for item := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(item, "=")
		if k = strings.TrimSpace(k); k != "" {
			tags[k] = strings.TrimSpace(v)
		}
	}
	return tags
}

// cut returns s cut to at most max bytes without splitting a UTF-8
// sequence; s itself when it is short enough.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return Truncate(s, max)
}
