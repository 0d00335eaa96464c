package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int            `json:"max_tokens"`
	sampling
}

// completions serves POST /v1/completions. Several prompts are answered as
// one (one choice, prompt tokens summed); max_tokens has no default of 16
// here, the answer is its natural 20–60 words unless capped.
func (s *Server) completions(x *exchange) {
	var req completionRequest
	if !x.decode(&req) || !x.requireModel(req.Model) {
		return
	}
	limit, ok := x.limit([]*int{req.MaxTokens}, "max_tokens")
	if !ok {
		return
	}
	if bad := req.check(); bad != nil {
		x.reject(bad)
		return
	}
	prompts, err := textInputs(req.Prompt)
	if err != nil {
		x.error(http.StatusBadRequest, "invalid 'prompt': "+err.Error(), "prompt")
		return
	}
	if len(prompts) == 0 {
		x.error(http.StatusBadRequest, "'prompt' is required", "prompt")
		return
	}
	h := newHasher(s.cfg.Seed, req.Model)
	for _, p := range prompts {
		p.feed(&h)
	}
	sum := h.sum()
	promptTokens := s.promptTokens(sum, func() int {
		n := 0
		for _, p := range prompts {
			n += p.count(req.Model)
		}
		return n
	})
	a := s.newAnswer(x, req.Model, sum, promptTokens, limit, req.StreamOptions, nil)
	x.setRequestID(a.ids.requestID)
	if req.Stream {
		if err := s.streamPieces(x, &a, newCompletionChunks(&a)); err != nil {
			s.log.Debug("sim: completion stream ended early", "err", err)
		}
		return
	}
	if sleep(x.ctx, a.pace.total(a.plan.len())) != nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(*b, `{"id":"`...)
	*b = append(*b, a.ids.cmpl...)
	*b = append(*b, `","object":"text_completion","created":`...)
	*b = strconv.AppendInt(*b, a.ids.created, 10)
	*b = append(*b, `,"model":`...)
	*b = appendString(*b, a.model)
	*b = append(*b, `,"choices":[{"text":`...)
	*b = appendString(*b, a.plan.text())
	*b = append(*b, `,"index":0,"logprobs":null,"finish_reason":"`...)
	*b = append(*b, a.plan.finishReason()...)
	*b = append(*b, `"}]`...)
	if a.sendUsage {
		*b = append(*b, `,"usage":`...)
		*b = a.usage.appendCompletion(*b)
	}
	*b = append(*b, `,"system_fingerprint":"`+Fingerprint+`"}`+"\n"...)
	x.writeJSON(http.StatusOK, *b)
}

// completionChunks writes the chunks of a streamed text completion:
// {"id","object":"text_completion","created","model","system_fingerprint",
// "choices":[{"text","index","logprobs","finish_reason"}]}.
type completionChunks struct {
	a      *answer
	prefix []byte
}

func newCompletionChunks(a *answer) *completionChunks {
	b := make([]byte, 0, 256)
	b = append(b, `{"id":"`...)
	b = append(b, a.ids.cmpl...)
	b = append(b, `","object":"text_completion","created":`...)
	b = strconv.AppendInt(b, a.ids.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"system_fingerprint":"`+Fingerprint+`","choices":[`...)
	return &completionChunks{a: a, prefix: b}
}

func (c *completionChunks) choice(b []byte, text, finish string) []byte {
	b = append(b, c.prefix...)
	b = append(b, `{"text":`...)
	b = appendString(b, text)
	b = append(b, `,"index":0,"logprobs":null,"finish_reason":`...)
	b = append(b, finish...)
	if c.a.includeUsage {
		return append(b, `}],"usage":null}`...)
	}
	return append(b, `}]}`...)
}

func (c *completionChunks) open(b []byte) ([]byte, bool) { return b, false }

func (c *completionChunks) piece(b []byte, text string) []byte { return c.choice(b, text, "null") }

func (c *completionChunks) finish(b []byte) []byte {
	return c.choice(b, "", `"`+c.a.plan.finishReason()+`"`)
}

func (c *completionChunks) usage(b []byte) []byte {
	b = append(b, c.prefix...)
	b = append(b, `],"usage":`...)
	b = c.a.usage.appendCompletion(b)
	return append(b, '}')
}
