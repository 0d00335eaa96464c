package openai

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// maxToolCalls bounds the tool calls a streamed answer is assembled into.
const maxToolCalls = 64

// toolCalls gathers the tool calls of an answer: the raw JSON array of a
// whole answer, or the pieces of a streamed one, assembled by index.
type toolCalls struct {
	raw    string // a JSON array as the upstream sent it, when it came whole
	parts  []toolCallPart
	budget int // bytes of arguments still kept
}

type toolCallPart struct {
	index         int64
	id, typ, name string
	args          strings.Builder
	argsTruncated bool
}

// setRaw keeps a whole JSON array of tool calls, when it fits max bytes.
func (t *toolCalls) setRaw(v gjson.Result, max int) {
	if v.IsArray() && len(v.Raw) <= max && t.raw == "" {
		t.raw = strings.Clone(v.Raw)
	}
}

// addDelta adds the tool_calls array of one streamed delta; max bounds the
// argument bytes kept over the whole answer.
func (t *toolCalls) addDelta(v gjson.Result, max int) {
	if t.parts == nil {
		t.budget = max
	}
	v.ForEach(func(_, d gjson.Result) bool {
		idx := d.Get("index").Int()
		p := t.part(idx)
		if p == nil {
			return false
		}
		if s := d.Get("id").Str; s != "" && p.id == "" {
			p.id = strings.Clone(s)
		}
		if s := d.Get("type").Str; s != "" && p.typ == "" {
			p.typ = strings.Clone(s)
		}
		f := d.Get("function")
		if s := f.Get("name").Str; s != "" && p.name == "" {
			p.name = strings.Clone(s)
		}
		if a := f.Get("arguments").Str; a != "" {
			if len(a) > t.budget {
				a, p.argsTruncated = Truncate(a, t.budget), true
			}
			t.budget -= len(a)
			p.args.WriteString(a)
		}
		return true
	})
}

func (t *toolCalls) part(idx int64) *toolCallPart {
	for i := range t.parts {
		if t.parts[i].index == idx {
			return &t.parts[i]
		}
	}
	if len(t.parts) >= maxToolCalls {
		return nil
	}
	t.parts = append(t.parts, toolCallPart{index: idx})
	return &t.parts[len(t.parts)-1]
}

// JSON returns the tool calls as a JSON array in the Chat Completions shape
// ([{"id","type":"function","function":{"name","arguments"}}]), or "" when
// the answer had none.
func (t *toolCalls) JSON() string {
	if t.raw != "" {
		return t.raw
	}
	if len(t.parts) == 0 {
		return ""
	}
	type function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	type call struct {
		ID       string   `json:"id"`
		Type     string   `json:"type"`
		Function function `json:"function"`
	}
	out := make([]call, len(t.parts))
	for i := range t.parts {
		p := &t.parts[i]
		typ := p.typ
		if typ == "" {
			typ = "function"
		}
		out[i] = call{ID: p.id, Type: typ, Function: function{Name: p.name, Arguments: p.args.String()}}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return ""
	}
	return string(b)
}

// functionCallItems returns the function_call items of a Responses output
// array as a JSON array, or "" when there are none or they exceed max bytes.
func functionCallItems(output gjson.Result, max int) string {
	var b strings.Builder
	output.ForEach(func(_, item gjson.Result) bool {
		if item.Get("type").Str != "function_call" {
			return true
		}
		if b.Len() == 0 {
			b.WriteByte('[')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(item.Raw)
		return b.Len() <= max
	})
	if b.Len() == 0 || b.Len() > max {
		return ""
	}
	b.WriteByte(']')
	return b.String()
}
