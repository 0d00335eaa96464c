package anthropic

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"

	"llmscope/openai"
)

// Stream reads the events of one streamed Messages answer (openai.Events):
// message_start (id, model, usage with the input and cache counts),
// content_block_start|delta|stop (text, thinking, tool_use input),
// message_delta (stop_reason, cumulative usage), message_stop (the end),
// ping and error.
type Stream struct {
	res      openai.Response
	usage    usage
	finished bool
	blocks   []toolBlock // tool_use blocks, in the order they started
	budget   int         // bytes of tool input still kept
}

// toolBlock is one streamed tool_use block.
type toolBlock struct {
	index    int64
	id, name string
	input    []byte // the concatenated partial_json
	start    string // the input of content_block_start (used when no delta came)
	cut      bool   // input outgrew the budget
}

var _ openai.Events = (*Stream)(nil)

// NewEvents returns a Stream that keeps at most textLimit bytes of text
// (and of tool call input).
func NewEvents(textLimit int) *Stream {
	s := &Stream{budget: textLimit}
	s.res.SetTextLimit(textLimit)
	return s
}

// Finished reports whether message_stop arrived.
func (s *Stream) Finished() bool { return s.finished }

// Result returns the facts gathered so far, tool calls included.
func (s *Stream) Result() *openai.Response {
	var tc toolCalls
	for i := range s.blocks {
		b := &s.blocks[i]
		if b.cut {
			return &s.res // cut input is not JSON: keep no tool calls
		}
		in := string(b.input)
		if in == "" {
			in = b.start
		}
		if in == "" {
			in = "{}"
		}
		tc.add(b.id, b.name, in, s.res.TextLimit())
	}
	tc.into(&s.res)
	return &s.res
}

// Event reads the data payload of one SSE event and says what it was:
// ChunkContent for generated text, thinking or tool input.
func (s *Stream) Event(data []byte) openai.Chunk {
	data = bytes.TrimSpace(data)
	if text, ok := textDelta(data); ok {
		s.res.Chunks++
		s.res.AddText(text)
		return openai.ChunkContent
	}
	if len(data) == 0 || data[0] != '{' || !gjson.ValidBytes(data) || !openai.Shallow(data) {
		return openai.ChunkOther
	}
	ev := gjson.Parse(str(data))
	typ := ev.Get("type").Str
	if typ == "message_stop" {
		s.finished = true
		return openai.ChunkDone
	}
	s.res.Chunks++
	switch typ {
	case "message_start":
		m := ev.Get("message")
		if v := m.Get("id"); v.Type == gjson.String && s.res.ID == "" {
			s.res.ID = strings.Clone(v.Str)
		}
		if v := m.Get("model"); v.Type == gjson.String {
			s.res.Model = strings.Clone(v.Str)
		}
		if s.usage.read(m.Get("usage")) {
			s.usage.into(&s.res)
		}
	case "content_block_start":
		return s.blockStart(ev)
	case "content_block_delta":
		return s.blockDelta(ev)
	case "message_delta":
		if v := ev.Get("delta.stop_reason"); v.Type == gjson.String {
			s.res.FinishReason = strings.Clone(v.Str)
		}
		if s.usage.read(ev.Get("usage")) {
			s.usage.into(&s.res)
		}
	case "error":
		readError(&s.res, ev)
	}
	return openai.ChunkOther
}

// blockStart reads a content_block_start event.
func (s *Stream) blockStart(ev gjson.Result) openai.Chunk {
	cb := ev.Get("content_block")
	switch cb.Get("type").Str {
	case "text":
		if t := cb.Get("text").Str; t != "" {
			s.res.AddText(t)
			return openai.ChunkContent
		}
	case "tool_use":
		if len(s.blocks) >= maxToolCalls {
			return openai.ChunkContent
		}
		b := toolBlock{index: ev.Get("index").Int(), id: strings.Clone(cb.Get("id").Str), name: strings.Clone(cb.Get("name").Str)}
		if in := cb.Get("input"); in.IsObject() && in.Raw != "{}" && len(in.Raw) <= s.budget {
			b.start = strings.Clone(in.Raw)
			s.budget -= len(in.Raw)
		}
		s.blocks = append(s.blocks, b)
		return openai.ChunkContent
	}
	return openai.ChunkOther
}

// blockDelta reads a content_block_delta event.
func (s *Stream) blockDelta(ev gjson.Result) openai.Chunk {
	d := ev.Get("delta")
	switch d.Get("type").Str {
	case "text_delta":
		s.res.AddText(d.Get("text").Str)
		return openai.ChunkContent
	case "thinking_delta":
		return openai.ChunkContent // generated, but not output text
	case "input_json_delta":
		part := d.Get("partial_json").Str
		idx := ev.Get("index").Int()
		for i := len(s.blocks) - 1; i >= 0; i-- {
			b := &s.blocks[i]
			if b.index != idx {
				continue
			}
			if len(part) > s.budget {
				b.cut = true
			} else if !b.cut {
				b.input = append(b.input, part...)
				s.budget -= len(part)
			}
			break
		}
		return openai.ChunkContent
	}
	return openai.ChunkOther
}

// The usual event of a stream, in the form Anthropic writes it: a text
// delta of block N.
const (
	textDeltaHead = `{"type":"content_block_delta","index":`
	textDeltaMid  = `,"delta":{"type":"text_delta","text":`
)

// textDelta reads data when it is exactly a text delta in the form
// Anthropic writes (textDeltaHead, a block index, textDeltaMid, a JSON
// string, "}}"): the common event, read in one pass without a parser.
// ok is false for anything else, which Event then reads in full. text
// may be a view of data.
func textDelta(data []byte) (text string, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(textDeltaHead))
	if !found {
		return "", false
	}
	i := 0
	for i < len(rest) && i < 9 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 1 && rest[0] == '0' {
		return "", false
	}
	rest, found = bytes.CutPrefix(rest[i:], []byte(textDeltaMid))
	if !found || len(rest) < 4 || rest[0] != '"' || !bytes.HasSuffix(rest, []byte(`"}}`)) {
		return "", false
	}
	quoted := rest[:len(rest)-2]
	// The string must end where its closing quote is: no other unescaped
	// quote inside, and only escapes JSON allows.
	simple := true
	for j := 1; j < len(quoted)-1; j++ {
		switch c := quoted[j]; {
		case c == '"' || c < 0x20:
			return "", false
		case c == '\\':
			simple = false
			if j+1 >= len(quoted)-1 {
				return "", false
			}
			j++
			switch quoted[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(quoted)-1 || !isHex4(quoted[j+1:j+5]) {
					return "", false
				}
				j += 4
			default:
				return "", false
			}
		case c >= 0x80:
			simple = false // gjson checks and keeps UTF-8 as the slow path does
		}
	}
	if simple {
		return str(quoted[1 : len(quoted)-1]), true // a view: AddText copies it
	}
	v := gjson.ParseBytes(quoted)
	if v.Type != gjson.String || !gjson.ValidBytes(quoted) {
		return "", false
	}
	return v.Str, true
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
