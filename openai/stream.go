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
	op string
}

// NewStream returns a Stream for operation op.
func NewStream(op string) *Stream { return &Stream{op: op} }

// Event reads the data payload of one SSE event and says what it was.
func (s *Stream) Event(data []byte) Chunk {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ChunkOther
	}
	if bytes.Equal(data, doneMarker) {
		return ChunkDone
	}
	js := str(data)
	if !gjson.Valid(js) {
		return ChunkOther
	}
	root := gjson.Parse(js)
	if s.op == llmscope.OpResponses {
		return s.responsesEvent(root)
	}
	if e := root.Get("error"); e.IsObject() {
		s.ErrorType = strings.Clone(e.Get("type").String())
		s.ErrorCode = strings.Clone(e.Get("code").String())
		return ChunkOther
	}
	if s.Model == "" {
		if m := root.Get("model"); m.Type == gjson.String {
			s.Model = strings.Clone(m.Str)
		}
	}
	s.readUsage(root.Get("usage"))
	choices := root.Get("choices")
	if !choices.IsArray() {
		return ChunkOther
	}
	kind := ChunkOther
	n := 0
	choices.ForEach(func(_, c gjson.Result) bool {
		n++
		if fr := c.Get("finish_reason"); fr.Type == gjson.String && s.FinishReason == "" {
			s.FinishReason = strings.Clone(fr.Str)
		}
		var text string
		if s.op == llmscope.OpTextCompletion {
			text = c.Get("text").Str
		} else {
			d := c.Get("delta")
			text = d.Get("content").Str
			if text != "" || d.Get("tool_calls").IsArray() || d.Get("refusal").Str != "" ||
				d.Get("reasoning_content").Str != "" || d.Get("function_call").IsObject() {
				kind = ChunkContent
			}
		}
		if text != "" {
			kind = ChunkContent
			if c.Get("index").Int() == 0 {
				s.addText(text)
			}
		}
		return true
	})
	if n == 0 && s.HasUsage && root.Get("usage").IsObject() {
		return ChunkUsageOnly
	}
	return kind
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
		s.readResponseObject(ev.Get("response"))
	case "error":
		s.ErrorType = strings.Clone(ev.Get("code").String())
		if s.ErrorType == "" {
			s.ErrorType = "error"
		}
	}
	return ChunkOther
}

var doneMarker = []byte("[DONE]")

// StripNullUsage removes the `"usage":null` member that include_usage adds to
// every chunk, from the raw bytes of one SSE event. It returns raw unchanged
// when the object has no such top-level member.
func StripNullUsage(raw []byte) []byte {
	const member = `,"usage":null`
	i := bytes.Index(raw, []byte(member))
	if i < 0 {
		return raw
	}
	if !topLevelAt(raw, i) { // a nested "usage" is not ours to touch
		return raw
	}
	out := make([]byte, 0, len(raw)-len(member))
	out = append(out, raw[:i]...)
	return append(out, raw[i+len(member):]...)
}

// topLevelAt reports whether byte offset i of raw lies at nesting depth 1 of
// the JSON object on its data line, outside any string.
func topLevelAt(raw []byte, i int) bool {
	start := bytes.LastIndex(raw[:i], []byte("data:"))
	if start < 0 {
		return false
	}
	depth, inStr, esc := 0, false, false
	for _, c := range raw[start+5 : i] {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return depth == 1 && !inStr
}
