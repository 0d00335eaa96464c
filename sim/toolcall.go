package sim

import "net/http"

// reject answers 400 with the OpenAI error body of e.
func (x *exchange) reject(e *badRequest) {
	x.errorCode(http.StatusBadRequest, e.msg, "invalid_request_error", e.code, e.param)
}

// appendChat appends the call as an element of a chat message's tool_calls:
// {"id","type":"function","function":{"name","arguments"}}.
func (c *toolCall) appendChat(b []byte, args string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, c.id...)
	b = append(b, `","type":"function","function":{"name":`...)
	b = appendString(b, c.name)
	b = append(b, `,"arguments":`...)
	b = appendString(b, args)
	return append(b, `}}`...)
}

// toolChunks writes the chunks of a streamed chat tool call as the API
// does: the first delta carries the role, a null content and the call with
// its id, name and empty arguments; each further delta one piece of the
// arguments; the finish chunk an empty delta.
type toolChunks struct {
	*chatChunks
}

func (c *toolChunks) open(b []byte) ([]byte, bool) {
	b = c.begin(b)
	b = append(b, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"`...)
	b = append(b, c.a.call.id...)
	b = append(b, `","type":"function","function":{"name":`...)
	b = appendString(b, c.a.call.name)
	b = append(b, `,"arguments":""}}],"refusal":null}`...)
	return c.end(b, "null"), true
}

func (c *toolChunks) piece(b []byte, text string) []byte {
	b = c.begin(b)
	b = append(b, `{"tool_calls":[{"index":0,"function":{"arguments":`...)
	b = appendString(b, text)
	b = append(b, `}}]}`...)
	return c.end(b, "null")
}

// appendFunctionCall appends the call as a Responses output item:
// {"id":"fc_…","type":"function_call","status","arguments","call_id","name"},
// with empty arguments unless withArgs.
func (r *respAnswer) appendFunctionCall(b []byte, status string, withArgs bool) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.call.item...)
	b = append(b, `","type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","arguments":`...)
	if withArgs {
		b = appendString(b, r.text)
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"call_id":"`...)
	b = append(b, r.call.id...)
	b = append(b, `","name":`...)
	b = appendString(b, r.call.name)
	return append(b, '}')
}

// appendOutput appends the final output item: the function call or the
// message.
func (r *respAnswer) appendOutput(b []byte, status string) []byte {
	if r.call != nil {
		return r.appendFunctionCall(b, status, true)
	}
	return r.appendMessage(b, status, true)
}

// callRef appends the item_id and output_index fields of a function call
// event.
func (r *respAnswer) callRef(b []byte) []byte {
	b = append(b, `,"item_id":"`...)
	b = append(b, r.call.item...)
	return append(b, `","output_index":0`...)
}

// streamCall writes the events of a function call after response.created
// and response.in_progress: response.output_item.added,
// response.function_call_arguments.delta (one per piece),
// response.function_call_arguments.done and response.output_item.done.
func (r *respAnswer) streamCall(e *events) error {
	b := append(e.begin("response.output_item.added"), `,"output_index":0,"item":`...)
	if err := e.send("response.output_item.added", r.appendFunctionCall(b, "in_progress", false)); err != nil {
		return err
	}
	for i := range r.plan.len() {
		if i > 0 {
			if err := e.st.wait(r.pace.next()); err != nil {
				return err
			}
		}
		b = append(r.callRef(e.begin("response.function_call_arguments.delta")), `,"delta":`...)
		if err := e.send("response.function_call_arguments.delta", appendString(b, r.plan.at(i))); err != nil {
			return err
		}
	}
	b = append(r.callRef(e.begin("response.function_call_arguments.done")), `,"arguments":`...)
	if err := e.send("response.function_call_arguments.done", appendString(b, r.text)); err != nil {
		return err
	}
	b = append(e.begin("response.output_item.done"), `,"output_index":0,"item":`...)
	return e.send("response.output_item.done", r.appendFunctionCall(b, r.status(), true))
}
