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
	op       string
	finished bool
}

// Finished reports whether the stream's end marker arrived: data: [DONE], or
// a final event of the Responses API. A reader that stops there has read the
// whole answer.
func (s *Stream) Finished() bool { return s.finished }

// NewStream returns a Stream for operation op.
func NewStream(op string) *Stream { return &Stream{op: op} }

// Event reads the data payload of one SSE event and says what it was.
func (s *Stream) Event(data []byte) Chunk {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ChunkOther
	}
	if bytes.Equal(data, doneMarker) {
		s.finished = true
		return ChunkDone
	}
	if !validJSON(data) {
		return ChunkOther
	}
	root := gjson.Parse(str(data))
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
	if n == 0 && usage.IsObject() {
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
		s.finished = true
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

// StripUsage removes the top-level "usage" member, whatever its value, from
// the JSON object on the data line of one raw SSE event. It returns raw
// itself when there is no such member or no JSON object to edit.
func StripUsage(raw []byte) []byte {
	start, end := dataLine(raw)
	if start < 0 {
		return raw
	}
	payload := raw[start:end]
	if !bytes.Contains(payload, []byte(`"usage"`)) || !validJSON(payload) {
		return raw
	}
	root := gjson.Parse(str(payload))
	if !root.IsObject() {
		return raw
	}
	from, to := -1, -1
	root.ForEach(func(key, v gjson.Result) bool {
		if key.Str != "usage" {
			return true
		}
		from, to = key.Index, v.Index+len(v.Raw)
		return false
	})
	if from < 0 {
		return raw
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
	out := make([]byte, 0, len(raw)-(to-from))
	out = append(out, raw[:start+from]...)
	return append(out, raw[start+to:]...)
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
