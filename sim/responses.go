package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    *string         `json:"instructions"`
	Stream          bool            `json:"stream"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Temperature     *float64        `json:"temperature"`
	TopP            *float64        `json:"top_p"`
	Tools           json.RawMessage `json:"tools"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	Text            json.RawMessage `json:"text"`
}

// responsesShape validates the tools, tool_choice and text.format of a
// Responses request whose conversation ends with role last.
func responsesShape(req *responsesRequest, last string) (*shape, *badRequest) {
	var format json.RawMessage
	if !absent(req.Text) {
		m, err := object(req.Text, "text")
		if err != nil {
			return nil, err
		}
		format = m["format"]
	}
	return newShape(req.Tools, req.ToolChoice, format, last, true, "text.format")
}

type responseItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Output  json.RawMessage `json:"output"`
}

// responsesPrompt turns instructions and input into a conversation:
// instructions become a developer message, a string input one user message,
// and input items with a role their messages (function_call_output items a
// tool message); other items count nothing.
func responsesPrompt(req *responsesRequest) (chatPrompt, error) {
	var p chatPrompt
	if req.Instructions != nil {
		p.add("developer", "", *req.Instructions)
	}
	switch firstByte(req.Input) {
	case 0, 'n':
		return p, nil
	case '"':
		text, err := contentText(req.Input)
		p.add("user", "", text)
		return p, err
	}
	var items []responseItem
	if err := json.Unmarshal(req.Input, &items); err != nil {
		return p, err
	}
	for _, it := range items {
		switch {
		case it.Role != "":
			text, err := contentText(it.Content)
			if err != nil {
				return p, err
			}
			p.add(it.Role, "", text)
		case it.Type == "function_call_output":
			text, err := contentText(it.Output)
			if err != nil {
				return p, err
			}
			p.add("tool", "", text)
		}
	}
	return p, nil
}

// responses serves POST /v1/responses. A streamed answer is the event
// sequence response.created, response.in_progress, response.output_item.added,
// response.content_part.added, response.output_text.delta (one per piece),
// response.output_text.done, response.content_part.done,
// response.output_item.done and response.completed — or, when
// max_output_tokens cut the answer, response.incomplete with status
// "incomplete" and incomplete_details.reason "max_output_tokens", as the API
// does. There is no [DONE]. With function tools the one output item is a
// function_call instead of the message (see respAnswer.streamCall); with a
// JSON text.format the message text is JSON.
func (s *Server) responses(x *exchange) {
	var req responsesRequest
	if !x.decode(&req) || !x.requireModel(req.Model) {
		return
	}
	limit, ok := x.limit([]*int{req.MaxOutputTokens}, "max_output_tokens")
	if !ok {
		return
	}
	if bad := checkTemperature(req.Temperature, req.TopP); bad != nil {
		x.reject(bad)
		return
	}
	p, err := responsesPrompt(&req)
	if err != nil {
		x.error(http.StatusBadRequest, "invalid 'input': "+err.Error(), "input")
		return
	}
	sh, bad := responsesShape(&req, p.lastRole())
	if bad != nil {
		x.reject(bad)
		return
	}
	h := sh.hash(p.hash(s.cfg.Seed, req.Model))
	pt := s.promptTokens(h, func() int { return p.tokens(req.Model) + sh.promptTokens(req.Model) })
	r := &respAnswer{answer: s.newAnswer(x, req.Model, h, pt, limit, nil, sh), req: &req, sh: sh}
	r.text = r.plan.text()
	total := r.pace
	r.completedAt = r.ids.created + int64(total.total(r.plan.len()).Seconds())
	x.setRequestID(r.ids.requestID)
	if req.Stream {
		if err := r.stream(x); err != nil {
			s.log.Debug("sim: responses stream ended early", "err", err)
		}
		return
	}
	if sleep(x.ctx, r.pace.total(r.plan.len())) != nil {
		return
	}
	b := s.getBuf()
	defer s.putBuf(b)
	*b = append(r.appendResponse(*b, true), '\n')
	x.writeJSON(http.StatusOK, *b)
}

// respAnswer is one Responses API answer.
type respAnswer struct {
	answer
	req         *responsesRequest
	sh          *shape
	text        string // the message text, or the function call's arguments
	completedAt int64
}

func (r *respAnswer) status() string {
	if r.plan.truncated {
		return "incomplete"
	}
	return "completed"
}

// appendResponse appends the response object: in progress (no output, no
// usage) or final.
func (r *respAnswer) appendResponse(b []byte, final bool) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.ids.resp...)
	b = append(b, `","object":"response","created_at":`...)
	b = strconv.AppendInt(b, r.ids.created, 10)
	b = append(b, `,"status":"`...)
	if final {
		b = append(b, r.status()...)
	} else {
		b = append(b, "in_progress"...)
	}
	b = append(b, `","background":false,"completed_at":`...)
	if final && !r.plan.truncated {
		b = strconv.AppendInt(b, r.completedAt, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":null,"incomplete_details":`...)
	if final && r.plan.truncated {
		b = append(b, `{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":`...)
	b = appendStringOrNull(b, r.req.Instructions)
	b = append(b, `,"max_output_tokens":`...)
	if r.req.MaxOutputTokens != nil {
		b = appendInt(b, *r.req.MaxOutputTokens)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"max_tool_calls":null,"model":`...)
	b = appendString(b, r.model)
	b = append(b, `,"output":[`...)
	if final {
		b = r.appendOutput(b, r.status())
	}
	b = append(b, `],"parallel_tool_calls":true,"previous_response_id":null,"prompt_cache_key":null,"reasoning":{"effort":`...)
	if isReasoningModel(r.model) {
		b = append(b, `"medium"`...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"summary":null},"safety_identifier":null,"service_tier":"default","store":true,"temperature":`...)
	b = appendParam(b, r.req.Temperature)
	b = append(b, `,"text":{"format":`...)
	b = appendRawOr(b, r.sh.formatRaw, `{"type":"text"}`)
	b = append(b, `,"verbosity":"medium"},"tool_choice":`...)
	b = appendRawOr(b, r.sh.choiceRaw, `"auto"`)
	b = append(b, `,"tools":`...)
	b = appendRawOr(b, r.sh.toolsRaw, `[]`)
	b = append(b, `,"top_logprobs":0,"top_p":`...)
	b = appendParam(b, r.req.TopP)
	b = append(b, `,"truncation":"disabled","usage":`...)
	if final && r.sendUsage {
		b = r.usage.appendResponses(b)
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"user":null,"metadata":{}}`...)
}

// appendRawOr appends the compact JSON raw as sent, or def when it was not.
func appendRawOr(b, raw []byte, def string) []byte {
	if raw == nil {
		return append(b, def...)
	}
	return append(b, raw...)
}

// appendParam appends a sampling parameter as sent, or the API's 1.0.
func appendParam(b []byte, v *float64) []byte {
	if v == nil {
		return append(b, "1.0"...)
	}
	return appendFloat(b, *v)
}

// appendMessage appends the output message item, with its one output_text
// part when withContent.
func (r *respAnswer) appendMessage(b []byte, status string, withContent bool) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.ids.msg...)
	b = append(b, `","type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","content":[`...)
	if withContent {
		b = appendTextPart(b, r.text)
	}
	return append(b, `],"role":"assistant"}`...)
}

func appendTextPart(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	b = appendString(b, text)
	return append(b, '}')
}

// events writes the typed events of a Responses stream.
type events struct {
	st  *sse
	seq int
	buf []byte
}

// begin starts event typ: `{"type":typ,"sequence_number":n`.
func (e *events) begin(typ string) []byte {
	e.buf = append(e.buf[:0], `{"type":"`...)
	e.buf = append(e.buf, typ...)
	e.buf = append(e.buf, `","sequence_number":`...)
	e.buf = appendInt(e.buf, e.seq)
	return e.buf
}

// send closes the object b and writes it as event typ.
func (e *events) send(typ string, b []byte) error {
	e.buf = append(b, '}')
	e.seq++
	return e.st.send(typ, e.buf)
}

// itemRef appends the item_id, output_index and content_index fields.
func (r *respAnswer) itemRef(b []byte) []byte {
	b = append(b, `,"item_id":"`...)
	b = append(b, r.ids.msg...)
	return append(b, `","output_index":0,"content_index":0`...)
}

func (r *respAnswer) stream(x *exchange) error {
	e := &events{st: x.newSSE(r.pace), buf: make([]byte, 0, 1024)}
	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		b := append(e.begin(typ), `,"response":`...)
		if err := e.send(typ, r.appendResponse(b, false)); err != nil {
			return err
		}
	}
	if err := e.st.wait(r.pace.first()); err != nil {
		return err
	}
	if r.call != nil {
		if err := r.streamCall(e); err != nil {
			return err
		}
		return r.complete(e)
	}
	b := append(e.begin("response.output_item.added"), `,"output_index":0,"item":`...)
	if err := e.send("response.output_item.added", r.appendMessage(b, "in_progress", false)); err != nil {
		return err
	}
	b = append(r.itemRef(e.begin("response.content_part.added")), `,"part":`...)
	if err := e.send("response.content_part.added", appendTextPart(b, "")); err != nil {
		return err
	}
	for i := range r.plan.len() {
		if i > 0 {
			if err := e.st.wait(r.pace.next()); err != nil {
				return err
			}
		}
		b = append(r.itemRef(e.begin("response.output_text.delta")), `,"delta":`...)
		b = appendString(b, r.plan.at(i))
		if err := e.send("response.output_text.delta", append(b, `,"logprobs":[]`...)); err != nil {
			return err
		}
	}
	b = append(r.itemRef(e.begin("response.output_text.done")), `,"text":`...)
	b = appendString(b, r.text)
	if err := e.send("response.output_text.done", append(b, `,"logprobs":[]`...)); err != nil {
		return err
	}
	b = append(r.itemRef(e.begin("response.content_part.done")), `,"part":`...)
	if err := e.send("response.content_part.done", appendTextPart(b, r.text)); err != nil {
		return err
	}
	b = append(e.begin("response.output_item.done"), `,"output_index":0,"item":`...)
	if err := e.send("response.output_item.done", r.appendMessage(b, r.status(), true)); err != nil {
		return err
	}
	return r.complete(e)
}

// complete writes the last event: response.completed, or
// response.incomplete when the token limit cut the answer.
func (r *respAnswer) complete(e *events) error {
	last := "response.completed"
	if r.plan.truncated {
		last = "response.incomplete"
	}
	b := append(e.begin(last), `,"response":`...)
	return e.send(last, r.appendResponse(b, true))
}
