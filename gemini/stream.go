package gemini

import (
	"bytes"

	"github.com/tidwall/gjson"

	"llmscope/openai"
)

// Stream reads the events of one :streamGenerateContent?alt=sse answer
// (openai.Events). Each event's data is a whole GenerateContentResponse
// chunk: its parts are the new content, its usageMetadata the usage so far
// (the last one read wins), and the final chunk carries the candidate's
// finishReason.
//
// Gemini sends no end marker such as [DONE]. Finished reports true once a
// chunk has carried finishReason and usageMetadata has arrived with it or
// after it: that is the last chunk Gemini sends, so a reader may stop
// there. A stream whose finishing chunk has no usage (an error, a
// no_usage fault) never reports Finished and is read to its end.
type Stream struct {
	res   openai.Response
	facts answerFacts
}

var _ openai.Events = (*Stream)(nil)

// NewEvents returns the reader of one Gemini stream that keeps at most
// textLimit bytes of text (and of function call arguments).
func NewEvents(textLimit int) openai.Events {
	s := &Stream{}
	s.res.SetTextLimit(textLimit)
	return s
}

// Event reads the data payload of one SSE event and says what it was:
// ChunkContent when it carried text, thoughts or a function call, else
// ChunkOther (usage alone, an error, not JSON). Every JSON object counts
// as a chunk.
func (s *Stream) Event(data []byte) openai.Chunk {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' || !gjson.ValidBytes(data) || !openai.Shallow(data) {
		return openai.ChunkOther
	}
	s.res.Chunks++
	if s.facts.chunk(&s.res, gjson.ParseBytes(data)) {
		return openai.ChunkContent
	}
	return openai.ChunkOther
}

// Finished reports whether the finishing chunk and its usage arrived.
func (s *Stream) Finished() bool { return s.facts.done }

// Result returns the facts gathered so far, function calls included.
func (s *Stream) Result() *openai.Response {
	s.facts.calls.into(&s.res)
	return &s.res
}
