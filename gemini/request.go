// Package gemini reads Google's Gemini API wire format (generateContent,
// streamGenerateContent, embedContent, countTokens), as package openai reads
// OpenAI's: the operation of a path, request parameters, the facts of an
// answer (response id, model version, finish reason, text, function calls,
// usage) from a JSON body or an SSE stream, and error bodies. It gathers
// them into the openai package's Request and Response, so the gateway and
// the Finisher treat every provider alike. It never re-encodes a body it
// only reads.
//
// Gemini's JSON accepts each member in camelCase (the form Google's SDKs
// send) or snake_case (the proto names); this package reads both.
package gemini

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"llmscope"
	"llmscope/openai"
)

// Provider is the OpenTelemetry gen_ai.provider.name of the Gemini API.
const Provider = "gcp.gemini"

// Methods of a model resource, the part of a path after its ':'.
const (
	MethodGenerate       = "generateContent"
	MethodStreamGenerate = "streamGenerateContent"
	MethodCountTokens    = "countTokens"
	MethodEmbed          = "embedContent"
	MethodBatchEmbed     = "batchEmbedContents"
)

// splitPath splits a path such as /v1beta/models/gemini-2.5-flash:generateContent
// into the model ("gemini-2.5-flash", without "models/") and the method
// ("generateContent", "" for the model resource itself). The version
// segment (v1beta, v1alpha, v1) is optional, escaped forms
// (models%2Fgemini-2.5-flash%3AgenerateContent) are unescaped, and tuned
// models keep their "tunedModels/" prefix. ok is false for a path outside
// models/ and tunedModels/; GET /v1beta/models lists them (model "").
func splitPath(path string) (model, method string, ok bool) {
	if strings.IndexByte(path, '%') >= 0 {
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
	}
	path = strings.TrimPrefix(path, "/")
	for _, v := range [...]string{"v1beta/", "v1alpha/", "v1/"} {
		if rest, found := strings.CutPrefix(path, v); found {
			path = rest
			break
		}
	}
	if path == "models" || path == "models/" {
		return "", "", true
	}
	tuned := strings.HasPrefix(path, "tunedModels/")
	rest, found := strings.CutPrefix(path, "models/")
	if !found && !tuned {
		return "", "", false
	}
	if tuned {
		rest = path
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && strings.IndexByte(rest[i:], '/') < 0 {
		rest, method = rest[:i], rest[i+1:]
	}
	return rest, method, true
}

// Operation names the operation of a request to path and, when its method
// does not suit the path, returns the methods allowed there:
// :generateContent and :streamGenerateContent are chat, :embedContent and
// :batchEmbedContents embeddings (POST only); GET of the models list or of
// one model is models (GET only); :countTokens and anything else, and
// CORS preflights, are other.
func Operation(method, path string) (op, allowed string) {
	_, m, ok := splitPath(path)
	if !ok || method == http.MethodOptions {
		return llmscope.OpOther, ""
	}
	switch m {
	case MethodGenerate, MethodStreamGenerate:
		op = llmscope.OpChat
	case MethodEmbed, MethodBatchEmbed:
		op = llmscope.OpEmbeddings
	case "":
		if method != http.MethodGet {
			return llmscope.OpModels, "GET, OPTIONS"
		}
		return llmscope.OpModels, ""
	default: // countTokens, batchGenerateContent, …
		return llmscope.OpOther, ""
	}
	if method != http.MethodPost {
		return op, "POST, OPTIONS"
	}
	return op, ""
}

// ParseRequest reads a Gemini request: Model from the path (without
// "models/"), Stream for :streamGenerateContent (IncludeUsage too: Gemini
// streams always carry usage, nothing needs injecting), and Params from
// generationConfig: temperature, topP, maxOutputTokens (as MaxTokens),
// stopSequences (as Stop), candidateCount (as N), seed, presencePenalty,
// frequencyPenalty, responseLogprobs (as Logprobs), logprobs (as
// TopLogprobs), responseMimeType (as ResponseFormat: "json_schema" for
// application/json with a schema, "json_object" without, "text" for
// text/plain, else the MIME type) and thinkingConfig.thinkingLevel (as
// ReasoningEffort); tools (the function declarations and other tools
// offered) and toolConfig.functionCallingConfig (as ToolChoice: "auto",
// "required" for ANY, "none", "validated", or the one allowed function
// name of ANY). topK, the thinking budget and safety settings have no
// place in llmscope.Params and are not kept. A number that is not finite
// (or not integral where an integer belongs, or not a number) is listed in
// Invalid under its member path, as openai.ParseRequest does. Valid: the
// body is a JSON object.
func ParseRequest(path string, body []byte) openai.Request {
	var r openai.Request
	model, method, _ := splitPath(path)
	r.Model = model
	r.Stream = method == MethodStreamGenerate
	r.IncludeUsage = r.Stream
	if len(body) == 0 || !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return r
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return r
	}
	r.Valid = true
	var gc, tools, toolConfig gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "generationconfig":
			gc = v
		case "tools":
			tools = v
		case "toolconfig":
			toolConfig = v
		}
		return true
	})
	if gc.IsObject() {
		readGenerationConfig(&r, gc)
	}
	if tools.IsArray() {
		n := countTools(tools)
		r.Params.Tools = &n
	}
	if toolConfig.IsObject() {
		r.Params.ToolChoice = toolChoice(toolConfig)
	}
	return r
}

// readGenerationConfig reads the parameters of generationConfig gc.
func readGenerationConfig(r *openai.Request, gc gjson.Result) {
	p := &r.Params
	var mime string
	schema := false
	gc.ForEach(func(k, v gjson.Result) bool {
		name := "generationConfig." + k.Str
		switch norm(k.Str) {
		case "temperature":
			p.Temperature = readFloat(r, name, v)
		case "topp":
			p.TopP = readFloat(r, name, v)
		case "maxoutputtokens":
			p.MaxTokens = readInt(r, name, v)
		case "candidatecount":
			p.N = readInt(r, name, v)
		case "seed":
			p.Seed = readInt(r, name, v)
		case "presencepenalty":
			p.PresencePenalty = readFloat(r, name, v)
		case "frequencypenalty":
			p.FrequencyPenalty = readFloat(r, name, v)
		case "stopsequences":
			p.Stop = nil
			v.ForEach(func(_, s gjson.Result) bool {
				p.Stop = append(p.Stop, strings.Clone(s.String()))
				return true
			})
		case "responselogprobs":
			if v.IsBool() {
				b := v.Bool()
				p.Logprobs = &b
			}
		case "logprobs":
			p.TopLogprobs = readInt(r, name, v)
		case "responsemimetype":
			mime = v.Str
		case "responseschema", "responsejsonschema":
			schema = schema || v.IsObject()
		case "thinkingconfig":
			v.ForEach(func(k, l gjson.Result) bool {
				if norm(k.Str) == "thinkinglevel" && l.Type == gjson.String {
					p.ReasoningEffort = strings.ToLower(l.Str)
				}
				return true
			})
		}
		return true
	})
	switch {
	case mime == "application/json" && schema:
		p.ResponseFormat = "json_schema"
	case mime == "application/json":
		p.ResponseFormat = "json_object"
	case mime == "text/plain":
		p.ResponseFormat = "text"
	default:
		p.ResponseFormat = strings.Clone(mime)
	}
}

// countTools counts the tools offered: each function declaration, and each
// tool entry that declares none (googleSearch, codeExecution, …).
func countTools(tools gjson.Result) int64 {
	var n int64
	tools.ForEach(func(_, t gjson.Result) bool {
		decls := int64(0)
		t.ForEach(func(k, v gjson.Result) bool {
			if norm(k.Str) == "functiondeclarations" && v.IsArray() {
				decls += int64(len(v.Array()))
			}
			return true
		})
		if decls == 0 {
			decls = 1
		}
		n += decls
		return true
	})
	return n
}

// toolChoice reads toolConfig.functionCallingConfig in OpenAI's terms.
func toolChoice(tc gjson.Result) string {
	var fc gjson.Result
	tc.ForEach(func(k, v gjson.Result) bool {
		if norm(k.Str) == "functioncallingconfig" {
			fc = v
		}
		return true
	})
	var mode string
	var allowed []string
	fc.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "mode":
			mode = strings.ToUpper(v.Str)
		case "allowedfunctionnames":
			allowed = nil
			v.ForEach(func(_, s gjson.Result) bool {
				allowed = append(allowed, s.Str)
				return true
			})
		}
		return true
	})
	switch mode {
	case "ANY":
		if len(allowed) == 1 {
			return strings.Clone(allowed[0])
		}
		return "required"
	case "AUTO", "NONE", "VALIDATED":
		return strings.ToLower(mode)
	}
	return ""
}

// norm folds a member name for comparison: lower case without
// underscores, so camelCase and snake_case spellings match.
func norm(k string) string {
	if strings.IndexByte(k, '_') < 0 {
		for i := 0; i < len(k); i++ {
			if c := k[i]; c >= 'A' && c <= 'Z' {
				return strings.ToLower(k)
			}
		}
		return k
	}
	return strings.ToLower(strings.ReplaceAll(k, "_", ""))
}

// readFloat reads a float parameter: nil when null, and nil with an Invalid
// entry unless it is a finite number. A later member of the same name
// replaces an earlier one's entry.
func readFloat(r *openai.Request, name string, v gjson.Result) *float64 {
	var f *float64
	if v.Type == gjson.Number && !math.IsInf(v.Num, 0) && !math.IsNaN(v.Num) {
		x := v.Num
		f = &x
	}
	check(r, name, v, f != nil)
	return f
}

// readInt reads an integer parameter: nil when null, and nil with an
// Invalid entry unless it is an integral number that fits int64.
func readInt(r *openai.Request, name string, v gjson.Result) *int64 {
	var n *int64
	if v.Type == gjson.Number {
		if i, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
			n = &i
		} else if v.Num == math.Trunc(v.Num) && v.Num < 1<<63 && v.Num >= -(1<<63) {
			i := int64(v.Num)
			n = &i
		}
	}
	check(r, name, v, n != nil)
	return n
}

func check(r *openai.Request, name string, v gjson.Result, ok bool) {
	for i := 0; i < len(r.Invalid); i++ {
		if r.Invalid[i].Name == name {
			r.Invalid = append(r.Invalid[:i], r.Invalid[i+1:]...)
			i--
		}
	}
	if len(r.Invalid) == 0 {
		r.Invalid = nil
	}
	if ok || v.Type == gjson.Null {
		return
	}
	r.Invalid = append(r.Invalid, openai.InvalidParam{Name: name, Raw: openai.Truncate(v.Raw, openai.MaxInvalidRaw)})
}

// message is one captured message in the Chat Completions shape.
type message struct {
	Role      string     `json:"role"`
	Name      string     `json:"name,omitempty"`
	Content   string     `json:"content"`
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
}

type toolCall struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// CaptureInput returns what a request asks the model about, as a JSON
// array of messages in the Chat Completions shape: systemInstruction as
// {"role":"system"}, each content as {"role":"user"|"assistant"} (role
// "model" is the assistant) with its text parts joined as content and its
// functionCall parts as tool_calls, each functionResponse part as
// {"role":"tool","name":…,"content":"<the response as JSON>"}; other parts
// (inline data, files) are left out. input is cut to at most max bytes
// (openai.Truncate; a cut array is no longer JSON, as with OpenAI's
// capture). tools is the raw tools array, or "" when there is none or it
// is longer than max (a cut array would not be JSON). A
// :countTokens body's generateContentRequest is read like a request.
func CaptureInput(body []byte, max int) (input, tools string) {
	if !gjson.ValidBytes(body) || !openai.Shallow(body) {
		return "", ""
	}
	return Capture(body, max)
}

// Capture is CaptureInput for a body already known to be valid JSON
// (ParseRequest said Valid): it validates nothing again.
func Capture(body []byte, max int) (input, tools string) {
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return "", ""
	}
	var sys, contents, tl, inner gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "systeminstruction":
			sys = v
		case "contents":
			contents = v
		case "tools":
			tl = v
		case "generatecontentrequest":
			inner = v
		}
		return true
	})
	if !contents.Exists() && inner.IsObject() {
		return Capture([]byte(inner.Raw), max)
	}
	var msgs []message
	if sys.IsObject() {
		m := readContent(sys, &msgs)
		m.Role = "system"
		if m.Content != "" {
			msgs = append(msgs, m)
		}
	}
	contents.ForEach(func(_, c gjson.Result) bool {
		m := readContent(c, &msgs)
		if m.Content != "" || len(m.ToolCalls) > 0 {
			msgs = append(msgs, m)
		}
		return true
	})
	if len(msgs) > 0 {
		if b, err := json.Marshal(msgs); err == nil {
			input = openai.Truncate(string(b), max)
		}
	}
	if tl.IsArray() && tl.Raw != "[]" && (max <= 0 || len(tl.Raw) <= max) {
		tools = strings.Clone(tl.Raw)
	}
	return input, tools
}

// readContent returns the message of one content; its functionResponse
// parts are appended to msgs as tool messages first.
func readContent(c gjson.Result, msgs *[]message) message {
	m := message{Role: "user"}
	var text strings.Builder
	c.ForEach(func(k, v gjson.Result) bool {
		switch norm(k.Str) {
		case "role":
			if v.Str == "model" {
				m.Role = "assistant"
			}
		case "parts":
			v.ForEach(func(_, p gjson.Result) bool {
				p.ForEach(func(k, v gjson.Result) bool {
					switch norm(k.Str) {
					case "text":
						if p.Get("thought").Type != gjson.True {
							text.WriteString(v.Str)
						}
					case "functioncall":
						var tc toolCall
						tc.Type = "function"
						tc.ID = v.Get("id").Str
						tc.Function.Name = v.Get("name").Str
						tc.Function.Arguments = "{}"
						if a := v.Get("args"); a.Exists() {
							tc.Function.Arguments = a.Raw
						}
						m.ToolCalls = append(m.ToolCalls, tc)
					case "functionresponse":
						*msgs = append(*msgs, message{Role: "tool", Name: v.Get("name").Str, Content: v.Get("response").Raw})
					}
					return true
				})
				return true
			})
		}
		return true
	})
	m.Content = text.String()
	return m
}
