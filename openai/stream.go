package openai

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"llmscope"
)

// Chunk says what one SSE event of a stream was.
type Chunk uint8

const (
	ChunkOther     Chunk = iota // metadata, an empty delta, a comment
	ChunkContent                // carries generated content (text, tool call, refusal)
	ChunkUsageOnly              // the extra usage chunk of include_usage: choices is empty
	ChunkDone                   // data: [DONE]
)

// Stream reads the events of one streamed response and gathers the facts of
// the call into Response.
type Stream struct {
	Response
	op           string
	finished     bool
	ms, cms, dms []member // scratch: members of an event, a choice, a delta
	scratch      [24]member
	// When Event's last event was a JSON object it scanned, data is the
	// data it was given, and ms the members of data[off:], where the
	// object starts after white space was trimmed.
	scanned bool
	data    []byte
	off     int
	tmpl    template // see resume.go
}

// Finished reports whether the stream's end marker arrived: data: [DONE], or
// a final event of the Responses API. A reader that stops there has read the
// whole answer.
func (s *Stream) Finished() bool { return s.finished }

// NewStream returns a Stream for operation op.
func NewStream(op string) *Stream {
	s := &Stream{op: op}
	s.ms, s.cms, s.dms = s.scratch[:0:12], s.scratch[12:12:18], s.scratch[18:18:24]
	return s
}

// Event reads the data payload of one SSE event and says what it was.
func (s *Stream) Event(data []byte) Chunk {
	s.scanned = false
	given := data
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ChunkOther
	}
	if bytes.Equal(data, doneMarker) {
		s.finished = true
		return ChunkDone
	}
	s.Chunks++
	// The usual event is a small JSON object: one pass validates it and
	// finds its members, and only the members read are looked at again.
	if len(data) < shallowSize && data[0] == '{' {
		if s.op == llmscope.OpChat && s.matchesTemplate(data) {
			if kind, ok := s.resume(data); ok {
				return kind
			}
		}
		ms, ok := scanObject(data, s.ms[:0])
		s.ms = ms
		if ok {
			// TrimSpace returned a subslice of given: the caps tell where.
			s.scanned, s.data, s.off = true, given, cap(given)-cap(data)
			if s.op == llmscope.OpResponses {
				return s.responsesMembers(data, ms)
			}
			kind := s.chatMembers(data, ms)
			if s.op == llmscope.OpChat && kind == ChunkContent {
				s.learnTemplate(data, ms)
			}
			return kind
		}
	}
	return s.eventGJSON(data)
}

// chatMembers reads one chunk of a chat or text completion stream, given
// its top-level members. It does what eventGJSON does, member by member.
func (s *Stream) chatMembers(data []byte, ms []member) Chunk {
	errv, model, usage, choices := topMembers(data, ms)
	if isObject(errv) {
		s.ErrorType, s.ErrorCode, s.ErrorMessage = errorFields(errv)
		return ChunkOther
	}
	s.readMetaMembers(data, ms)
	if s.Model == "" && len(model) > 0 && model[0] == '"' {
		s.Model = strings.Clone(stringValue(model))
	}
	if isObject(usage) {
		s.readUsage(gjson.Result{Type: gjson.JSON, Raw: str(usage)})
	}
	if !isArray(choices) {
		if isObject(usage) {
			return ChunkUsageOnly
		}
		return ChunkOther
	}
	kind := ChunkOther
	n := 0
	for i := skipWS(choices, 1); choices[i] != ']'; {
		n++
		var end int
		if choices[i] == '{' {
			end = i + s.choiceMembers(choices[i:], &kind)
		} else {
			end = skipValue(choices, i)
			s.choice(gjson.Parse(str(choices[i:end])), &kind)
		}
		if i = skipWS(choices, end); choices[i] == ',' {
			i = skipWS(choices, i+1)
		}
	}
	if n == 0 && isObject(usage) {
		return ChunkUsageOnly
	}
	return kind
}

// first returns v unless a value was already found.
// topMembers returns the values of the members a chunk or an answer is
// read for, the first of each name, as gjson's Get finds them.
func topMembers(data []byte, ms []member) (errv, model, usage, choices []byte) {
	for i := range ms {
		m := &ms[i]
		v := data[m.v0:m.v1]
		switch m.name(data) {
		case "error":
			errv = first(errv, v)
		case "model":
			model = first(model, v)
		case "usage":
			usage = first(usage, v)
		case "choices":
			choices = first(choices, v)
		}
	}
	return errv, model, usage, choices
}

// errorFields returns the type, code and message of an error object.
func errorFields(errv []byte) (typ, code, msg string) {
	e := gjson.Parse(str(errv))
	return strings.Clone(e.Get("type").String()), strings.Clone(e.Get("code").String()), errorMessage(e.Get("message").String())
}

// errorMessage returns an upstream's error message cut to
// llmscope.MaxErrorMessage bytes.
func errorMessage(s string) string {
	return strings.Clone(Truncate(s, llmscope.MaxErrorMessage))
}

func first(found, v []byte) []byte {
	if found != nil {
		return found
	}
	return v
}

// choiceMembers reads the element of choices that starts at c[0], a JSON
// object; it does what choice does, and returns the element's length.
func (s *Stream) choiceMembers(c []byte, kind *Chunk) int {
	cms, n := members(c, s.cms[:0])
	s.cms = cms
	var fr, text, delta, index []byte
	for i := range cms {
		m := &cms[i]
		v := c[m.v0:m.v1]
		switch m.name(c) {
		case "finish_reason":
			fr = first(fr, v)
		case "text":
			text = first(text, v)
		case "delta":
			delta = first(delta, v)
		case "index":
			index = first(index, v)
		}
	}
	if len(fr) > 0 && fr[0] == '"' && s.FinishReason == "" {
		s.FinishReason = strings.Clone(stringValue(fr))
	}
	var t string
	if s.op == llmscope.OpTextCompletion {
		t = stringValue(text)
	} else if isObject(delta) {
		t = s.deltaMembers(delta, kind)
	} else {
		t = s.deltaGJSON(gjson.Parse(str(delta)), kind)
	}
	if t != "" {
		*kind = ChunkContent
		if index == nil || isFirstChoice(index) {
			s.addText(t)
		}
	}
	return n
}

// deltaMembers reads a delta that is a JSON object; it does what deltaGJSON
// does.
func (s *Stream) deltaMembers(d []byte, kind *Chunk) string {
	dms, _ := members(d, s.dms[:0])
	s.dms = dms
	var content, toolCalls, refusal, reasoning, functionCall []byte
	for i := range dms {
		m := &dms[i]
		v := d[m.v0:m.v1]
		switch m.name(d) {
		case "content":
			content = first(content, v)
		case "tool_calls":
			toolCalls = first(toolCalls, v)
		case "refusal":
			refusal = first(refusal, v)
		case "reasoning_content":
			reasoning = first(reasoning, v)
		case "function_call":
			functionCall = first(functionCall, v)
		}
	}
	text := stringValue(content)
	if isArray(toolCalls) {
		s.tools.addDelta(gjson.Parse(str(toolCalls)), s.textMax)
	}
	if text != "" || isArray(toolCalls) || stringValue(refusal) != "" || stringValue(reasoning) != "" || isObject(functionCall) {
		*kind = ChunkContent
	}
	return text
}

// responsesMembers reads one event of the Responses API, given its
// top-level members: deltas here, anything else by responsesEvent.
func (s *Stream) responsesMembers(data []byte, ms []member) Chunk {
	switch stringValue(find(data, ms, "type")) {
	case "response.output_text.delta":
		s.addText(stringValue(find(data, ms, "delta")))
		return ChunkContent
	case "response.refusal.delta", "response.function_call_arguments.delta",
		"response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		return ChunkContent
	}
	return s.responsesEvent(gjson.Parse(str(data)))
}

func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }
func isArray(v []byte) bool  { return len(v) > 0 && v[0] == '[' }

// eventGJSON reads an event with gjson: the way for events that are not a
// small JSON object, and the reference the fast way is tested against.
func (s *Stream) eventGJSON(data []byte) Chunk {
	if !validJSON(data) {
		return ChunkOther
	}
	root := gjson.Parse(str(data))
	if s.op == llmscope.OpResponses {
		return s.responsesEvent(root)
	}
	if e := root.Get("error"); e.IsObject() {
		s.ErrorType, s.ErrorCode, s.ErrorMessage = errorFields([]byte(e.Raw))
		return ChunkOther
	}
	s.readMeta(root.Get("id"), root.Get("created"), root.Get("system_fingerprint"))
	s.readTier(root.Get("service_tier"))
	if s.Model == "" {
		if m := root.Get("model"); m.Type == gjson.String {
			s.Model = strings.Clone(m.Str)
		}
	}
	usage := root.Get("usage")
	s.readUsage(usage)
	choices := root.Get("choices")
	if !choices.IsArray() {
		if usage.IsObject() {
			return ChunkUsageOnly
		}
		return ChunkOther
	}
	kind := ChunkOther
	n := 0
	choices.ForEach(func(_, c gjson.Result) bool {
		n++
		s.choice(c, &kind)
		return true
	})
	if n == 0 && usage.IsObject() {
		return ChunkUsageOnly
	}
	return kind
}

// choice reads one element of choices.
func (s *Stream) choice(c gjson.Result, kind *Chunk) {
	if fr := c.Get("finish_reason"); fr.Type == gjson.String && s.FinishReason == "" {
		s.FinishReason = strings.Clone(fr.Str)
	}
	var text string
	if s.op == llmscope.OpTextCompletion {
		text = c.Get("text").Str
	} else {
		text = s.deltaGJSON(c.Get("delta"), kind)
	}
	if text != "" {
		*kind = ChunkContent
		if c.Get("index").Int() == 0 {
			s.addText(text)
		}
	}
}

// deltaGJSON reads the delta of a chat choice: it returns its text and marks
// kind as content when the delta carries any.
func (s *Stream) deltaGJSON(d gjson.Result, kind *Chunk) string {
	text := d.Get("content").Str
	if tc := d.Get("tool_calls"); tc.IsArray() {
		s.tools.addDelta(tc, s.textMax)
	}
	if text != "" || d.Get("tool_calls").IsArray() || d.Get("refusal").Str != "" ||
		d.Get("reasoning_content").Str != "" || d.Get("function_call").IsObject() {
		*kind = ChunkContent
	}
	return text
}

// responsesEvent reads one typed event of the Responses API.
func (s *Stream) responsesEvent(ev gjson.Result) Chunk {
	typ := ev.Get("type").Str
	switch typ {
	case "response.output_text.delta", "response.refusal.delta",
		"response.function_call_arguments.delta", "response.reasoning_summary_text.delta",
		"response.reasoning_text.delta":
		if typ == "response.output_text.delta" {
			s.addText(ev.Get("delta").Str)
		}
		return ChunkContent
	case "response.created", "response.in_progress":
		if m := ev.Get("response.model"); m.Type == gjson.String {
			s.Model = strings.Clone(m.Str)
		}
	case "response.completed", "response.incomplete", "response.failed":
		s.finished = true
		s.readResponseObject(ev.Get("response"))
	case "error":
		s.ErrorMessage = errorMessage(ev.Get("message").String())
		s.ErrorType = strings.Clone(ev.Get("code").String())
		if s.ErrorType == "" {
			s.ErrorType = "error"
		}
	}
	return ChunkOther
}

var doneMarker = []byte("[DONE]")

// StripUsage removes the top-level "usage" member, whatever its value, from
// the JSON object on the data line of one raw SSE event. It returns raw
// itself when there is no such member or no JSON object to edit.
func StripUsage(raw []byte) []byte {
	from, to, _ := usageCut(raw, nil, nil)
	if from < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw)-(to-from))
	out = append(out, raw[:from]...)
	return append(out, raw[to:]...)
}

// usageCut returns the bounds in raw of what StripUsage removes (the usage
// member with a neighbouring comma), or -1, -1. ms is scratch space. When s
// is not nil and the last event it read is raw's only data field, its scan
// is used rather than a new one.
func usageCut(raw []byte, s *Stream, ms []member) (from, to int, _ []member) {
	start, end := dataLine(raw)
	if start < 0 {
		return -1, -1, ms
	}
	payload := raw[start:end]
	from, to = -1, -1
	var found []member // the members of payload[off:], when scanned
	off, scanned := 0, false
	// payload is the event's only data field when it holds the same bytes
	// as the data Event read. A usage member whose key is not escaped is
	// the "usage" the search below would find.
	if s != nil && s.scanned && bytes.Equal(s.data, payload) {
		found, off, scanned = s.ms, s.off, true
		if m := firstNamed(payload[off:], found, "usage"); m == nil || m.esc && !bytes.Contains(payload, []byte(`"usage"`)) {
			return -1, -1, ms
		}
	} else if !bytes.Contains(payload, []byte(`"usage"`)) {
		return -1, -1, ms
	} else if len(payload) < shallowSize {
		if ms, scanned = scanObject(payload, ms[:0]); !scanned {
			return -1, -1, ms
		}
		found = ms
	}
	if scanned {
		if m := firstNamed(payload[off:], found, "usage"); m != nil {
			from, to = off+m.k0, off+m.v1
		}
	} else {
		from, to = usageMemberGJSON(payload)
	}
	if from < 0 {
		return -1, -1, ms
	}
	// Take a neighbouring comma with the member: the one before it, or the
	// one after it when it is the first member.
	if i := lastNonSpace(payload[:from]); i >= 0 && payload[i] == ',' {
		from = i
	} else if j := firstNonSpace(payload[to:]); j >= 0 && payload[to+j] == ',' {
		to += j + 1
		for to < len(payload) && isSpace(payload[to]) {
			to++
		}
	}
	return start + from, start + to, ms
}

// usageMemberGJSON returns the bounds of the first top-level "usage" member
// of the JSON object payload (key to end of value), or -1, -1, with gjson:
// the way for large payloads, and the reference for usageCut's own scan.
func usageMemberGJSON(payload []byte) (from, to int) {
	from, to = -1, -1
	if !validJSON(payload) {
		return
	}
	root := gjson.Parse(str(payload))
	if !root.IsObject() {
		return
	}
	root.ForEach(func(key, v gjson.Result) bool {
		if key.Str != "usage" {
			return true
		}
		from, to = key.Index, v.Index+len(v.Raw)
		return false
	})
	return
}

// dataLine returns the bounds of the value of the first "data:" line of an
// SSE event, or -1, -1.
func dataLine(raw []byte) (int, int) {
	for off := 0; off < len(raw); {
		end := bytes.IndexByte(raw[off:], '\n')
		if end < 0 {
			end = len(raw)
		} else {
			end += off
		}
		line := bytes.TrimRight(raw[off:end], "\r")
		if v, ok := field(line, "data"); ok {
			start := off + len(line) - len(v)
			return start, start + len(v)
		}
		off = end + 1
	}
	return -1, -1
}

func lastNonSpace(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if !isSpace(b[i]) {
			return i
		}
	}
	return -1
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		if !isSpace(c) {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

var usageKey = []byte(`"usage"`)

// nullUsageCut returns the bounds in raw of what usageCut removes from the
// usual event of a stream whose include_usage llmscope injected: a single
// data line holding a JSON object whose only member named usage is
// ,"usage":null at its top level. It finds it without reading the rest of
// the event, and returns -1, -1 for any other event. For an event that is
// valid JSON its bounds are usageCut's.
func nullUsageCut(raw []byte) (from, to int) {
	start, end := dataLine(raw)
	if start < 0 || firstNonSpace(raw[end:]) >= 0 {
		return -1, -1
	}
	p := raw[start:end]
	if bytes.Contains(p, []byte(`\u`)) {
		return -1, -1 // a key spelled with escapes may be another usage
	}
	i := bytes.Index(p, usageKey)
	if i < 1 || p[0] != '{' || p[i-1] != ',' || bytes.Contains(p[i+len(usageKey):], usageKey) {
		return -1, -1
	}
	v := i + len(usageKey)
	if !bytes.HasPrefix(p[v:], []byte(":null")) {
		return -1, -1
	}
	tail := p[v+len(":null"):]
	if j := firstNonSpace(tail); j < 0 || tail[j] != ',' && tail[j] != '}' || !closesObject(tail) {
		return -1, -1
	}
	return start + i - 1, start + v + len(":null")
}

// closesObject reports whether tail is what may follow a member at the top
// level of a JSON object up to its end: more members (not checked), the
// closing brace, then only white space.
func closesObject(tail []byte) bool {
	depth := 0
	for i := 0; i < len(tail); i++ {
		switch tail[i] {
		case '"':
			for i++; i < len(tail) && tail[i] != '"'; i++ {
				if tail[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case ']':
			if depth == 0 {
				return false
			}
			depth--
		case '}':
			if depth == 0 {
				return firstNonSpace(tail[i+1:]) < 0
			}
			depth--
		}
	}
	return false
}
