package sim

// Event names of a streamed Anthropic Messages answer, in the order the API
// sends them: message_start; per content block content_block_start (a ping
// after the first), content_block_delta…, content_block_stop;
// message_delta; message_stop.
const (
	evMessageStart      = "message_start"
	evContentBlockStart = "content_block_start"
	evPing              = "ping"
	evContentBlockDelta = "content_block_delta"
	evContentBlockStop  = "content_block_stop"
	evMessageDelta      = "message_delta"
	evMessageStop       = "message_stop"
)

// anthropicStream writes the events of one streamed answer.
type anthropicStream struct {
	a      *anthropicAnswer
	st     *sse
	buf    []byte
	pieces int // content pieces sent, for pacing
	pinged bool
}

// stream writes the answer as Anthropic's SSE events, each
// "event: NAME\ndata: {…}\n\n": message_start (usage with output_tokens 1),
// a thinking block (thinking_delta pieces, then one signature_delta) when
// thinking is on, a text block (text_delta pieces) or a tool_use block
// (input_json_delta pieces), message_delta (stop_reason and cumulative
// usage) and message_stop. TTFT passes before message_start, each further
// piece is paced; under no_usage both usage objects are left out.
func (a *anthropicAnswer) stream(x *exchange) error {
	e := &anthropicStream{a: a, st: x.newSSE(a.pace), buf: make([]byte, 0, 512)}
	if err := e.st.wait(a.pace.first()); err != nil {
		return err
	}
	b := append(e.buf[:0], `{"type":"message_start","message":{"id":"`...)
	b = append(b, a.id...)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	b = appendString(b, a.model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null`...)
	if a.sendUsage {
		b = append(b, `,"usage":`...)
		b = a.usage.appendAnthropic(b, 1)
	}
	if err := e.send(evMessageStart, append(b, "}}"...)); err != nil {
		return err
	}
	index := 0
	if a.thinking != nil {
		if err := e.block(index, `{"type":"thinking","thinking":"","signature":""}`, a.thinking, "thinking_delta", "thinking"); err != nil {
			return err
		}
		b = e.begin(evContentBlockDelta, index)
		b = append(b, `,"delta":{"type":"signature_delta","signature":"`...)
		b = append(b, a.signature...)
		if err := e.send(evContentBlockDelta, append(b, `"}}`...)); err != nil {
			return err
		}
		if err := e.stop(index); err != nil {
			return err
		}
		index++
	}
	var err error
	if a.call != nil {
		start := string(a.appendToolUse(nil, "{}"))
		err = e.block(index, start, &a.plan, "input_json_delta", "partial_json")
	} else {
		err = e.block(index, `{"type":"text","text":""}`, &a.plan, "text_delta", "text")
	}
	if err == nil {
		err = e.stop(index)
	}
	if err != nil {
		return err
	}
	b = append(e.buf[:0], `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, a.stopReason()...)
	b = append(b, `","stop_sequence":null}`...)
	if a.sendUsage {
		b = append(b, `,"usage":{"input_tokens":`...)
		b = appendInt(b, a.usage.input)
		b = append(b, `,"cache_creation_input_tokens":`...)
		b = appendInt(b, a.usage.cacheWrite)
		b = append(b, `,"cache_read_input_tokens":`...)
		b = appendInt(b, a.usage.cacheRead)
		b = append(b, `,"output_tokens":`...)
		b = appendInt(b, a.usage.output)
		b = append(b, '}')
	}
	if err := e.send(evMessageDelta, append(b, '}')); err != nil {
		return err
	}
	return e.send(evMessageStop, []byte(`{"type":"message_stop"}`))
}

func (e *anthropicStream) send(name string, data []byte) error {
	e.buf = data[:0]
	return e.st.send(name, data)
}

// begin starts the data of a block event: {"type":NAME,"index":I.
func (e *anthropicStream) begin(name string, index int) []byte {
	b := append(e.buf[:0], `{"type":"`...)
	b = append(b, name...)
	b = append(b, `","index":`...)
	return appendInt(b, index)
}

// block sends content_block_start with the block start (raw JSON), a ping
// after the first block's start, and one delta of type deltaType per piece
// of p, its text under the member field.
func (e *anthropicStream) block(index int, start string, p *plan, deltaType, field string) error {
	b := append(e.begin(evContentBlockStart, index), `,"content_block":`...)
	b = append(b, start...)
	if err := e.send(evContentBlockStart, append(b, '}')); err != nil {
		return err
	}
	if !e.pinged {
		e.pinged = true
		if err := e.send(evPing, []byte(`{"type":"ping"}`)); err != nil {
			return err
		}
	}
	for i := range p.len() {
		if e.pieces > 0 {
			if err := e.st.wait(e.a.pace.next()); err != nil {
				return err
			}
		}
		e.pieces++
		b = append(e.begin(evContentBlockDelta, index), `,"delta":{"type":"`...)
		b = append(b, deltaType...)
		b = append(b, `","`...)
		b = append(b, field...)
		b = append(b, `":`...)
		b = appendString(b, p.at(i))
		if err := e.send(evContentBlockDelta, append(b, "}}"...)); err != nil {
			return err
		}
	}
	return nil
}

// stop sends content_block_stop.
func (e *anthropicStream) stop(index int) error {
	return e.send(evContentBlockStop, append(e.begin(evContentBlockStop, index), '}'))
}
