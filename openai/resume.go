package openai

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
)

// A chat stream repeats itself: every content chunk carries the same id,
// model, creation time, fingerprint and tier, then its choice up to the
// delta, byte for byte; only the delta and what follows it change. Once a
// content chunk has been read in full, its bytes up to the delta's value
// are the stream's template. A later event that starts with the template
// is read from the delta on: the template's members were valid and gave
// their facts already (every fact they carry is kept first-wins or is read
// to the same value again), so the event's facts and kind are what reading
// it in full gives, for the price of its last few dozen bytes.

// template is what a stream's template says of the members it holds.
type template struct {
	prefix  []byte // the event's bytes up to the delta's value
	usage   bool   // a top-level usage member (not an object) comes before choices
	finish  bool   // the choice has a finish_reason member before delta
	index   bool   // the choice has an index member before delta
	first   bool   // that index says the first choice (its text is kept)
	learned bool   // prefix holds a template
}

// learnTemplate makes data, a chat chunk just read in full with top-level
// members ms, the stream's template, when it has the shape of one: no
// error member, no usage object before choices (a full read reads it again
// each time, and another event may have changed it), one choice that is an
// object with an object delta, and the stream's id and model known.
func (s *Stream) learnTemplate(data []byte, ms []member) {
	s.tmpl.learned = false
	if s.ID == "" || s.Model == "" {
		return
	}
	var t template
	choices := -1
	for i := range ms {
		switch ms[i].name(data) {
		case "error":
			return
		case "usage":
			if choices < 0 {
				if isObject(data[ms[i].v0:ms[i].v1]) && !t.usage {
					return
				}
				t.usage = true
			}
		case "choices":
			if choices < 0 {
				choices = i
			}
		}
	}
	if choices < 0 {
		return
	}
	c := data[ms[choices].v0:ms[choices].v1]
	e := skipWS(c, 1)
	if !isArray(c) || c[e] != '{' {
		return
	}
	cms, n := members(c[e:], s.cms[:0])
	s.cms = cms
	if skipWS(c, e+n) != len(c)-1 {
		return // more than one choice
	}
	delta := -1
	for i := range cms {
		switch cms[i].name(c[e:]) {
		case "delta":
			delta = cms[i].v0
		case "finish_reason":
			t.finish = true
		case "index":
			if !t.index {
				v := c[e+cms[i].v0 : e+cms[i].v1]
				t.index, t.first = true, isFirstChoice(v)
			}
		}
		if delta >= 0 {
			break
		}
	}
	if delta < 0 || c[e+delta] != '{' {
		return
	}
	t.prefix = append(s.tmpl.prefix[:0], data[:ms[choices].v0+e+delta]...)
	t.learned = true
	s.tmpl = t
}

// resume reads data, an event that starts with the stream's template, from
// its delta on. ok is false when the rest is not valid JSON of the expected
// shape, or holds a member whose meaning the template does not settle: the
// caller then reads the event in full.
func (s *Stream) resume(data []byte) (kind Chunk, ok bool) {
	i := len(s.tmpl.prefix)
	if i == len(data) || data[i] != '{' {
		return ChunkOther, false
	}
	end, ok := validObject(data, i+1, len(data))
	if !ok {
		return ChunkOther, false
	}
	delta := data[i:end]
	cms, j, ok := restMembers(data, end, s.cms[:0])
	s.cms = cms
	if !ok {
		return ChunkOther, false
	}
	if j = skipWS(data, j); j == len(data) || data[j] != ']' {
		return ChunkOther, false // another choice follows
	}
	tms, k, ok := restMembers(data, j+1, s.ms[:0])
	s.ms = tms
	if !ok || skipWS(data, k) != len(data) {
		return ChunkOther, false
	}
	var fr, index, usage []byte
	for m := range cms {
		v := data[cms[m].v0:cms[m].v1]
		switch cms[m].name(data) {
		case "finish_reason":
			if !s.tmpl.finish {
				fr = first(fr, v)
			}
		case "index":
			if !s.tmpl.index {
				index = first(index, v)
			}
		}
	}
	seenError := false
	for m := range tms {
		v := data[tms[m].v0:tms[m].v1]
		switch tms[m].name(data) {
		case "error":
			if !seenError && isObject(v) {
				return ChunkOther, false
			}
			seenError = true
		case "usage":
			if !s.tmpl.usage {
				usage = first(usage, v)
			}
		}
	}
	if isObject(usage) {
		s.readUsage(gjson.Result{Type: gjson.JSON, Raw: str(usage)})
	}
	if len(fr) > 0 && fr[0] == '"' && s.FinishReason == "" {
		s.FinishReason = strings.Clone(stringValue(fr))
	}
	kind = ChunkOther
	if t := s.deltaMembers(delta, &kind); t != "" {
		kind = ChunkContent
		if s.tmpl.index && s.tmpl.first || !s.tmpl.index && (index == nil || isFirstChoice(index)) {
			s.addText(t)
		}
	}
	return kind, true
}

// isFirstChoice reports whether a choice's index value v says the first
// choice, as choiceMembers reads it.
func isFirstChoice(v []byte) bool {
	return string(v) == "0" || gjson.Parse(str(v)).Int() == 0
}

// restMembers validates the members that follow a member of an object, from
// b[i] (white space, then a comma and a member, as often as they come, then
// the closing brace), appends them to ms, and returns the index past the
// closing brace.
func restMembers(b []byte, i int, ms []member) (_ []member, _ int, ok bool) {
	for {
		if i = skipWS(b, i); i == len(b) {
			return ms, i, false
		}
		if b[i] == '}' {
			return ms, i + 1, true
		}
		if b[i] != ',' {
			return ms, i, false
		}
		if i = skipWS(b, i+1); i == len(b) || b[i] != '"' {
			return ms, i, false
		}
		m := member{k0: i}
		if i, m.esc, ok = validString(b, i+1); !ok {
			return ms, i, false
		}
		m.k1 = i
		if i = skipWS(b, i); i == len(b) || b[i] != ':' {
			return ms, i, false
		}
		if i = skipWS(b, i+1); i == len(b) {
			return ms, i, false
		}
		m.v0 = i
		if i, ok = validValue(b, i, len(b)); !ok {
			return ms, i, false
		}
		m.v1 = i
		ms = append(ms, m)
	}
}

// matchesTemplate reports whether data starts with the stream's template.
func (s *Stream) matchesTemplate(data []byte) bool {
	return s.tmpl.learned && len(data) > len(s.tmpl.prefix) && bytes.HasPrefix(data, s.tmpl.prefix)
}
