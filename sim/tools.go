package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"llmscope/tokenizer"
)

// tool is one function tool of a request.
type tool struct {
	name   string
	desc   string
	params *jnode // JSON schema of the arguments; nil when not given
	raw    json.RawMessage
}

// toolChoice is the tool_choice of a request: mode "auto", "none",
// "required", or "function" with the name of the tool to call.
type toolChoice struct {
	mode string
	name string
}

// Output formats of response_format (chat) and text.format (Responses).
const (
	formatText       = "text"
	formatJSONObject = "json_object"
	formatJSONSchema = "json_schema"
)

// outputFormat is the structured output a request asks for.
type outputFormat struct {
	kind   string // formatText, formatJSONObject or formatJSONSchema
	schema *jnode // of json_schema; nil when not given
}

// shape is what a chat or Responses request asks of its answer beyond plain
// text: tools it may call and a format for its content. A request with
// function tools, a tool_choice other than "none" and a conversation that
// does not end with a tool result is answered with one call of a tool; any
// other with text, JSON when the format asks for it.
type shape struct {
	tools    []tool
	choice   toolChoice
	format   outputFormat
	call     bool   // answer with a tool call
	toolsRaw []byte // tools as sent, compacted; nil when absent
	choiceRaw,
	formatRaw []byte // tool_choice and format as sent, compacted; nil when absent
}

// plainShape is the shape of requests without tools, tool_choice or format;
// it is shared and never modified.
var plainShape = &shape{choice: toolChoice{mode: "auto"}, format: outputFormat{kind: formatText}}

// badRequest is invalid input, answered with 400 in OpenAI's error shape.
type badRequest struct{ msg, param, code string }

func (e *badRequest) Error() string { return e.msg }

// Codes of OpenAI's invalid_request_error answers.
const (
	codeInvalidType  = "invalid_type"
	codeInvalidValue = "invalid_value"
	codeMissingParam = "missing_required_parameter"
)

// A function name is 1 to 64 of these characters, as the API requires.
const (
	maxToolNameLength  = 64
	toolNameCharacters = "^[a-zA-Z0-9_-]+$"
)

func invalidType(param, want string, got json.RawMessage) *badRequest {
	return &badRequest{
		msg:   fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonKind(got)),
		param: param, code: codeInvalidType,
	}
}

func missingParam(param string) *badRequest {
	return &badRequest{msg: fmt.Sprintf("Missing required parameter: '%s'.", param), param: param, code: codeMissingParam}
}

func invalidValue(param, msg string) *badRequest {
	return &badRequest{msg: fmt.Sprintf("Invalid value for '%s': %s", param, msg), param: param, code: codeInvalidValue}
}

// jsonKind names the JSON type of raw as OpenAI's messages do.
func jsonKind(raw json.RawMessage) string {
	switch c := firstByte(raw); {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	default:
		return "a number"
	}
}

// absent reports whether a field was not sent or sent as null.
func absent(raw json.RawMessage) bool {
	c := firstByte(raw)
	return c == 0 || c == 'n'
}

// object decodes raw as a JSON object into its members; it fails with
// invalid_type naming param.
func object(raw json.RawMessage, param string) (map[string]json.RawMessage, *badRequest) {
	var m map[string]json.RawMessage
	if firstByte(raw) != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, invalidType(param, "an object", raw)
	}
	return m, nil
}

// stringField returns the string member key of m; ok is false when it is
// absent; a member of another type fails with invalid_type.
func stringField(m map[string]json.RawMessage, key, param string) (s string, ok bool, err *badRequest) {
	raw := m[key]
	if absent(raw) {
		return "", false, nil
	}
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, invalidType(param, "a string", raw)
	}
	return s, true, nil
}

// requiredString returns the string member key of m, failing with
// missing_required_parameter when it is absent or empty.
func requiredString(m map[string]json.RawMessage, key, param string) (string, *badRequest) {
	s, ok, err := stringField(m, key, param)
	if err != nil {
		return "", err
	}
	if !ok || s == "" {
		return "", missingParam(param)
	}
	return s, nil
}

// schemaField parses the optional JSON schema member key of m.
func schemaField(m map[string]json.RawMessage, key, param string) (*jnode, *badRequest) {
	raw := m[key]
	if absent(raw) {
		return nil, nil
	}
	if firstByte(raw) != '{' {
		return nil, invalidType(param, "an object", raw)
	}
	n, err := parseNode(raw)
	if err != nil {
		return nil, invalidType(param, "an object", raw)
	}
	return n, nil
}

// parseTools decodes a tools array. Chat Completions nests a function
// tool's fields ({"type":"function","function":{"name",…}}); the Responses
// API (flat) does not ({"type":"function","name",…}). Tools of other types
// (custom, hosted) are accepted and never called.
func parseTools(raw json.RawMessage, flat bool) ([]tool, *badRequest) {
	if absent(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, invalidType("tools", "an array", raw)
	}
	var out []tool
	for i, item := range items {
		param := "tools[" + strconv.Itoa(i) + "]"
		t, ok, err := parseTool(item, param, flat)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// parseTool decodes one tool; ok is false for a valid tool that is not a
// function.
func parseTool(raw json.RawMessage, param string, flat bool) (t tool, ok bool, err *badRequest) {
	m, err := object(raw, param)
	if err != nil {
		return t, false, err
	}
	typ, err := requiredString(m, "type", param+".type")
	if err != nil || typ != "function" {
		return t, false, err
	}
	fn, fnParam := m, param
	if !flat {
		fnParam = param + ".function"
		if absent(m["function"]) {
			return t, false, missingParam(fnParam)
		}
		if fn, err = object(m["function"], fnParam); err != nil {
			return t, false, err
		}
	}
	if t.name, err = requiredString(fn, "name", fnParam+".name"); err != nil {
		return t, false, err
	}
	if !validToolName(t.name) {
		return t, false, invalidValue(fnParam+".name", fmt.Sprintf(
			"string does not match pattern. Expected a string of at most %d characters that matches the pattern '%s'.",
			maxToolNameLength, toolNameCharacters))
	}
	if t.desc, _, err = stringField(fn, "description", fnParam+".description"); err != nil {
		return t, false, err
	}
	if t.params, err = schemaField(fn, "parameters", fnParam+".parameters"); err != nil {
		return t, false, err
	}
	t.raw = fn["parameters"]
	return t, true, nil
}

func validToolName(s string) bool {
	if len(s) > maxToolNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '-' || c < 0x80 && isWordByte(c) {
			continue
		}
		return false
	}
	return true
}

// parseToolChoice decodes tool_choice: absent means "auto"; a named
// function is {"type":"function","function":{"name":X}} in Chat Completions
// and {"type":"function","name":X} in the Responses API. Other object types
// (allowed_tools, hosted tools) count as "auto".
func parseToolChoice(raw json.RawMessage, flat bool) (toolChoice, *badRequest) {
	if absent(raw) {
		return toolChoice{mode: "auto"}, nil
	}
	if firstByte(raw) == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return toolChoice{}, invalidType("tool_choice", "a string or an object", raw)
		}
		switch s {
		case "none", "auto", "required":
			return toolChoice{mode: s}, nil
		}
		return toolChoice{}, invalidValue("tool_choice", fmt.Sprintf(
			"'%s'. Supported values are: 'none', 'auto', and 'required'.", s))
	}
	if firstByte(raw) != '{' {
		return toolChoice{}, invalidType("tool_choice", "a string or an object", raw)
	}
	m, err := object(raw, "tool_choice")
	if err != nil {
		return toolChoice{}, err
	}
	typ, err := requiredString(m, "type", "tool_choice.type")
	if err != nil {
		return toolChoice{}, err
	}
	if typ != "function" {
		return toolChoice{mode: "auto"}, nil
	}
	fn, param := m, "tool_choice"
	if !flat {
		param = "tool_choice.function"
		if absent(m["function"]) {
			return toolChoice{}, missingParam(param)
		}
		if fn, err = object(m["function"], param); err != nil {
			return toolChoice{}, err
		}
	}
	name, err := requiredString(fn, "name", param+".name")
	if err != nil {
		return toolChoice{}, err
	}
	return toolChoice{mode: "function", name: name}, nil
}

// parseFormat decodes response_format (chat: the schema nested under
// "json_schema") or text.format (Responses, flat); param names the field.
func parseFormat(raw json.RawMessage, param string, flat bool) (outputFormat, *badRequest) {
	f := outputFormat{kind: formatText}
	if absent(raw) {
		return f, nil
	}
	m, err := object(raw, param)
	if err != nil {
		return f, err
	}
	if f.kind, err = requiredString(m, "type", param+".type"); err != nil {
		return f, err
	}
	switch f.kind {
	case formatText, formatJSONObject:
		return f, nil
	case formatJSONSchema:
	default:
		return f, invalidValue(param+".type", fmt.Sprintf(
			"'%s'. Supported values are: 'text', 'json_object', and 'json_schema'.", f.kind))
	}
	js, jsParam := m, param
	if !flat {
		jsParam = param + ".json_schema"
		if absent(m["json_schema"]) {
			return f, missingParam(jsParam)
		}
		if js, err = object(m["json_schema"], jsParam); err != nil {
			return f, err
		}
	}
	if _, err := requiredString(js, "name", jsParam+".name"); err != nil {
		return f, err
	}
	f.schema, err = schemaField(js, "schema", jsParam+".schema")
	return f, err
}

// newShape validates the tools, tool_choice and format of a request whose
// conversation's last message has role last; flat selects the Responses
// API's shapes and formatParam names the format field.
func newShape(tools, choice, format json.RawMessage, last string, flat bool, formatParam string) (*shape, *badRequest) {
	if absent(tools) && absent(choice) && absent(format) {
		return plainShape, nil
	}
	sh := &shape{}
	var err *badRequest
	if sh.tools, err = parseTools(tools, flat); err != nil {
		return nil, err
	}
	if sh.choice, err = parseToolChoice(choice, flat); err != nil {
		return nil, err
	}
	if sh.format, err = parseFormat(format, formatParam, flat); err != nil {
		return nil, err
	}
	if sh.choice.mode == "function" && sh.find(sh.choice.name) == nil {
		return nil, invalidValue("tool_choice", fmt.Sprintf("no function named '%s' was specified in 'tools'.", sh.choice.name))
	}
	sh.call = len(sh.tools) > 0 && sh.choice.mode != "none" && last != "tool" && last != "function"
	sh.toolsRaw, sh.choiceRaw, sh.formatRaw = compact(tools), compact(choice), compact(format)
	return sh, nil
}

// compact returns raw without insignificant space, or nil when absent.
func compact(raw json.RawMessage) []byte {
	if absent(raw) {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}

// find returns the function tool called name, or nil.
func (sh *shape) find(name string) *tool {
	for i := range sh.tools {
		if sh.tools[i].name == name {
			return &sh.tools[i]
		}
	}
	return nil
}

// plain reports whether the shape asks for nothing beyond text: the request
// hash and prompt tokens are then those of the conversation alone.
func (sh *shape) plain() bool {
	return sh == nil || sh.toolsRaw == nil && sh.choiceRaw == nil && sh.formatRaw == nil
}

// hash folds the tools, tool_choice and format into the conversation's
// request hash h, so that they change the answer and its ids.
func (sh *shape) hash(h uint64) uint64 {
	if sh.plain() {
		return h
	}
	x := hasher(h)
	for _, part := range [...][]byte{sh.toolsRaw, sh.choiceRaw, sh.formatRaw} {
		x.bytes(part)
		x.sep()
	}
	return x.sum()
}

// promptTokens returns the prompt tokens the tools add, counted as the
// gateway estimates them.
func (sh *shape) promptTokens(model string) int {
	if sh == nil || len(sh.tools) == 0 {
		return 0
	}
	ts := make([]tokenizer.Tool, len(sh.tools))
	for i, t := range sh.tools {
		ts[i] = tokenizer.Tool{Name: t.name, Description: t.desc, Parameters: compact(t.raw)}
	}
	return tokenizer.CountTools(model, ts)
}

// Salts of the values a shaped answer draws.
const (
	saltCall   = 0xca11
	saltFuncID = 0xfc
	saltValues = 0x5c4e3a
	saltPick   = 0x91c
)

// toolCall is the one call of a tool an answer makes; its arguments are
// the answer's plan.
type toolCall struct {
	id   string // call_ and 24 base62 characters
	item string // fc_ and 48 hex digits: the Responses output item id
	name string
}

// plan returns the answer for request hash h: a call of the chosen tool
// (with its arguments as the plan), JSON content, or the usual text.
func (sh *shape) plan(h uint64, model string, limit int) (plan, *toolCall) {
	switch {
	case sh == nil:
		return makePlan(h, model, limit), nil
	case sh.call:
		t := sh.pick(h)
		args := string(newValueGen(t.params, h^saltValues).arguments(t.params))
		c := &toolCall{id: callID(h), item: "fc_" + hexID(h^saltFuncID, 3), name: t.name}
		return makeCustomPlan(args, model, limit, tokenizer.Count(model, t.name)), c
	case sh.format.kind == formatJSONObject || sh.format.kind == formatJSONSchema && sh.format.schema == nil:
		prose := makePlan(h, model, 0)
		b := appendString([]byte(`{"answer":`), prose.text())
		return makeCustomPlan(string(append(b, '}')), model, limit, 0), nil
	case sh.format.kind == formatJSONSchema:
		g := newValueGen(sh.format.schema, h^saltValues)
		return makeCustomPlan(string(g.value(nil, sh.format.schema, 0)), model, limit, 0), nil
	default:
		return makePlan(h, model, limit), nil
	}
}

// pick returns the tool to call: the named one, else one drawn from h.
func (sh *shape) pick(h uint64) *tool {
	if sh.choice.mode == "function" {
		return sh.find(sh.choice.name)
	}
	return &sh.tools[mix(h^saltPick)%uint64(len(sh.tools))]
}

// arguments returns the arguments object for a tool whose parameters schema
// is params: a value of the schema, or {} when the schema gives none or
// does not describe an object.
func (g *valueGen) arguments(params *jnode) []byte {
	if params == nil || schemaType(params) != "object" && params.get("$ref") == nil && firstAlternative(params) == nil {
		return []byte("{}")
	}
	b := g.value(nil, params, 0)
	if len(b) == 0 || b[0] != '{' {
		return []byte("{}")
	}
	return b
}

// callID returns the deterministic tool call id of request hash h.
func callID(h uint64) string {
	r := rng{s: h ^ saltCall}
	var b strings.Builder
	b.Grow(len("call_") + 24)
	b.WriteString("call_")
	for range 24 {
		b.WriteByte(base62[r.intn(len(base62))])
	}
	return b.String()
}
