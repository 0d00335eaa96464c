package sim

import (
	"encoding/json"
	"net/http"
	"strconv"

	"llmscope/tokenizer"
)

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Name    string          `json:"name"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	ServiceTier         string          `json:"service_tier"`
	sampling
}

// answer is everything needed to write one chat or text completion, in
// either form.
type answer struct {
	model        string
	ids          ids
	plan         plan
	call         *toolCall // the tool call the answer makes, with plan as its arguments
	usage        usage
	tier         string // the service_tier answered: the request's priority or flex, else default
	sendUsage    bool   // false under no_usage
	includeUsage bool   // stream_options.include_usage (and not no_usage)
	pace         pacer
}

// chat serves POST /v1/chat/completions. One choice is returned whatever n
// says. With function tools it answers one tool call (see shape), with a
// JSON response_format JSON content.
func (s *Server) chat(x *exchange) {
	var req chatRequest
	if !x.decode(&req) || !x.requireModel(req.Model) {
		return
	}
	if len(req.Messages) == 0 {
		x.error(http.StatusBadRequest, "'messages' must be a non-empty array", "messages")
		return
	}
	limit, ok := x.limit([]*int{req.MaxCompletionTokens, req.MaxTokens}, "max_completion_tokens", "max_tokens")
	if !ok {
		return
	}
	if bad := req.check(); bad != nil {
		x.reject(bad)
		return
	}
	var p chatPrompt
	p.msgs = make([]tokenizer.Message, 0, len(req.Messages))
	for i, m := range req.Messages {
		text, err := contentText(m.Content)
		if err != nil {
			x.error(http.StatusBadRequest, "invalid 'messages["+strconv.Itoa(i)+"].content': "+err.Error(), "messages")
			return
		}
		p.add(m.Role, m.Name, text)
	}
	sh, bad := newShape(req.Tools, req.ToolChoice, req.ResponseFormat, p.lastRole(), false, "response_format")
	if bad != nil {
		x.reject(bad)
		return
	}
	h := sh.hash(p.hash(s.cfg.Seed, req.Model))
	pt := s.promptTokens(h, func() int { return p.tokens(req.Model) + sh.promptTokens(req.Model) })
	a := s.newAnswer(x, req.Model, h, pt, limit, req.StreamOptions, sh)
	if req.ServiceTier == "priority" || req.ServiceTier == "flex" {
		a.tier = req.ServiceTier // as OpenAI reports the tier it served
	}
	x.setRequestID(a.ids.requestID)
	if req.Stream {
		s.streamChat(x, &a)
		return
	}
	if sleep(x.ctx, a.pace.total(a.plan.len())) != nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = a.appendChatCompletion(*b)
	x.writeJSON(http.StatusOK, *b)
}

// newAnswer plans the answer for request hash h in shape sh (nil for text
// completions).
func (s *Server) newAnswer(x *exchange, model string, h uint64, promptTokens, limit int, so *streamOptions, sh *shape) answer {
	p, call := sh.plan(h, model, limit)
	return answer{
		model:        model,
		ids:          makeIDs(h),
		plan:         p,
		call:         call,
		usage:        newUsage(promptTokens, s.cachedTokens(h, promptTokens), &p),
		sendUsage:    !x.fault.noUsage,
		includeUsage: so != nil && so.IncludeUsage && !x.fault.noUsage,
		pace:         s.modelPacer(h, model),
	}
}

// finishReason is "length" when the token limit cut the answer, else
// "tool_calls" for a tool call and "stop" for text.
func (a *answer) finishReason() string {
	if a.call != nil && !a.plan.truncated {
		return "tool_calls"
	}
	return a.plan.finishReason()
}

func (a *answer) appendChatCompletion(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.ids.chat...)
	b = append(b, `","object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, a.ids.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if a.call != nil {
		b = append(b, `null,"tool_calls":[`...)
		b = a.call.appendChat(b, a.plan.text())
		b = append(b, ']')
	} else {
		b = appendString(b, a.plan.text())
	}
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	b = append(b, a.finishReason()...)
	b = append(b, `"}]`...)
	if a.sendUsage {
		b = append(b, `,"usage":`...)
		b = a.usage.appendChat(b)
	}
	b = append(b, `,"service_tier":"`...)
	b = append(b, a.serviceTier()...)
	b = append(b, `","system_fingerprint":"`+Fingerprint+`"}`+"\n"...)
	return b
}

// serviceTier is the service_tier of the answer.
func (a *answer) serviceTier() string {
	if a.tier == "" {
		return "default"
	}
	return a.tier
}

// chatChunks writes the chunks of a streamed chat completion.
type chatChunks struct {
	a      *answer
	prefix []byte // every chunk's fields up to and including `"choices":[`
}

func newChatChunks(a *answer) *chatChunks {
	b := make([]byte, 0, 256)
	b = append(b, `{"id":"`...)
	b = append(b, a.ids.chat...)
	b = append(b, `","object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, a.ids.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"service_tier":"`...)
	b = append(b, a.serviceTier()...)
	b = append(b, `","system_fingerprint":"`+Fingerprint+`","choices":[`...)
	return &chatChunks{a: a, prefix: b}
}

// choice appends a chunk of one choice; delta is raw JSON unless text is
// set, finish is raw JSON (null or a quoted reason).
func (c *chatChunks) choice(b []byte, delta, text, finish string) []byte {
	b = c.begin(b)
	if delta != "" {
		b = append(b, delta...)
	} else {
		b = append(b, `{"content":`...)
		b = appendString(b, text)
		b = append(b, '}')
	}
	return c.end(b, finish)
}

// begin appends a chunk of one choice up to its delta.
func (c *chatChunks) begin(b []byte) []byte {
	b = append(b, c.prefix...)
	return append(b, `{"index":0,"delta":`...)
}

// end closes a chunk begun by begin after its delta.
func (c *chatChunks) end(b []byte, finish string) []byte {
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	b = append(b, finish...)
	if c.a.includeUsage {
		return append(b, `}],"usage":null}`...)
	}
	return append(b, `}]}`...)
}

func (c *chatChunks) open(b []byte) ([]byte, bool) {
	return c.choice(b, `{"role":"assistant","content":"","refusal":null}`, "", "null"), true
}

func (c *chatChunks) piece(b []byte, text string) []byte { return c.choice(b, "", text, "null") }

func (c *chatChunks) finish(b []byte) []byte {
	return c.choice(b, "{}", "", `"`+c.a.finishReason()+`"`)
}

func (c *chatChunks) usage(b []byte) []byte {
	b = append(b, c.prefix...)
	b = append(b, `],"usage":`...)
	b = c.a.usage.appendChat(b)
	return append(b, '}')
}

// chunker writes the chunks of a chat or text completion stream.
type chunker interface {
	open(b []byte) ([]byte, bool) // the chunk before the first piece, if any
	piece(b []byte, text string) []byte
	finish(b []byte) []byte // the chunk with finish_reason
	usage(b []byte) []byte  // the usage-only chunk, "choices":[]
}

// streamChat streams a chat completion: a role chunk, one chunk per piece
// (of the content, or of a tool call's arguments), a finish chunk, the usage
// chunk when asked for, then [DONE].
func (s *Server) streamChat(x *exchange, a *answer) {
	var c chunker = newChatChunks(a)
	if a.call != nil {
		c = &toolChunks{newChatChunks(a)}
	}
	if err := s.streamPieces(x, a, c); err != nil {
		s.log.Debug("sim: chat stream ended early", "err", err)
	}
}

// streamPieces drives a chat or text completion stream: TTFT, the opening
// chunk, the pieces paced 1/TokensPerSecond apart, the finish chunk, the
// usage chunk when include_usage, and [DONE].
func (s *Server) streamPieces(x *exchange, a *answer, c chunker) error {
	st := x.newSSE(a.pace)
	if err := st.wait(a.pace.first()); err != nil {
		return err
	}
	buf := make([]byte, 0, 512)
	if b, ok := c.open(buf[:0]); ok {
		if err := st.send("", b); err != nil {
			return err
		}
	}
	for i := range a.plan.len() {
		if i > 0 {
			if err := st.wait(a.pace.next()); err != nil {
				return err
			}
		}
		buf = c.piece(buf[:0], a.plan.at(i))
		if err := st.send("", buf); err != nil {
			return err
		}
	}
	if err := st.send("", c.finish(buf[:0])); err != nil {
		return err
	}
	if a.includeUsage {
		if err := st.send("", c.usage(buf[:0])); err != nil {
			return err
		}
	}
	return st.done()
}
