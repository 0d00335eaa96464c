package openai

import "strings"

// Events reads the data payloads of a streamed answer's SSE events, one at
// a time, and gathers the call's facts into a Response. *Stream is the
// OpenAI one; each provider's wire package has its own, and Relay drives
// any of them.
type Events interface {
	// Event reads the data payload of one event and says what it was.
	Event(data []byte) Chunk
	// Finished reports whether the stream's end marker arrived: a reader
	// that stops there has read the whole answer.
	Finished() bool
	// Result returns the facts gathered so far.
	Result() *Response
}

var _ Events = (*Stream)(nil)

// Result returns the facts the stream gathered (Events).
func (s *Stream) Result() *Response { return &s.Response }

// AddText appends generated text to the response's text, within the limit
// set by SetTextLimit. Wire packages of other providers gather text with it.
func (r *Response) AddText(s string) { r.addText(s) }

// SetToolCallsJSON sets the answer's tool calls from a JSON array already in
// the Chat Completions shape ([{"id":…,"type":"function","function":{"name":…,
// "arguments":"…"}}]), kept only while text is (SetTextLimit); wire packages
// of other providers convert their own shapes to it.
func (r *Response) SetToolCallsJSON(s string) {
	if r.textMax > 0 && len(s) <= r.textMax {
		r.tools.raw = strings.Clone(s)
	}
}

// TextLimit returns the bytes of text the response keeps (SetTextLimit);
// wire packages of other providers bound what they gather by it.
func (r *Response) TextLimit() int { return r.textMax }
