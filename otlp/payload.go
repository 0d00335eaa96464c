package otlp

import (
	"encoding/json"
	"strconv"

	"llmscope"
)

// The values of mlflow.spanInputs and mlflow.spanOutputs follow what
// mlflow.openai.autolog() records for the same call, so MLflow's UI renders
// both alike: the inputs are the request as the OpenAI API took it, the
// outputs the response object it returned. Only what llmscope recorded can
// be there: without capture, no message, prompt, answer text or tool
// definition leaves the process, only the model, parameters and the
// response's own marks.

// rawOrString returns s as raw JSON when it is valid JSON (captured request
// input is the raw JSON of the request's messages/input/prompt), else as a
// JSON string (e.g. input cut short by the capture limit).
func rawOrString(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

// rawArray returns s as raw JSON when it is a valid JSON array, else nil.
func rawArray(s string) json.RawMessage {
	if len(s) > 0 && s[0] == '[' && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return nil
}

// spanInputs is the value of mlflow.spanInputs: the model, the parameters
// sent, stream, and, only when capture is on, the captured input under the
// request field it came from (messages for chat, prompt for text
// completions, input otherwise) and the tools array.
func spanInputs(c *llmscope.Call, capture bool) map[string]any {
	in := map[string]any{}
	if b, err := json.Marshal(&c.Params); err == nil {
		var params map[string]json.RawMessage
		if json.Unmarshal(b, &params) == nil {
			for k, v := range params {
				in[k] = v
			}
		}
	}
	if c.RequestModel != "" {
		in["model"] = c.RequestModel
	}
	if c.Stream {
		in["stream"] = true
	}
	if iu, ok := in["include_usage"]; ok { // as the request had it
		delete(in, "include_usage")
		in["stream_options"] = map[string]any{"include_usage": iu}
	}
	if !capture {
		return in
	}
	if tools := rawArray(c.Tools); tools != nil {
		in["tools"] = tools // the array itself in place of its count
	}
	if c.Input == "" {
		return in
	}
	switch c.Operation {
	case llmscope.OpChat:
		if c.Provider == anthropicProvider {
			anthropicInputs(c, in)
			break
		}
		in["messages"] = rawOrString(c.Input)
	case llmscope.OpTextCompletion:
		in["prompt"] = rawOrString(c.Input)
	case llmscope.OpResponses:
		// The capture of a Responses request with instructions is
		// {"instructions":…,"input":…}: spread it back into the request.
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(c.Input), &obj) == nil && len(obj) == 2 &&
			obj["instructions"] != nil && obj["input"] != nil {
			in["instructions"] = obj["instructions"]
			in["input"] = obj["input"]
		} else {
			in["input"] = rawOrString(c.Input)
		}
	default:
		in["input"] = rawOrString(c.Input)
	}
	return in
}

// chatUsage is a usage object in the Chat Completions naming.
type chatUsage struct {
	PromptTokens            int64            `json:"prompt_tokens"`
	CompletionTokens        int64            `json:"completion_tokens"`
	TotalTokens             int64            `json:"total_tokens"`
	PromptTokensDetails     map[string]int64 `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails map[string]int64 `json:"completion_tokens_details,omitempty"`
}

// responsesUsage is a usage object in the Responses naming.
type responsesUsage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

// spanOutputs is the value of mlflow.spanOutputs: the response object in
// the shape of the operation's API (ChatCompletion, Completion, Response,
// the embeddings list) with what was recorded of it, and, for a failed
// call, the error. Nil when there is nothing to say.
func spanOutputs(c *llmscope.Call, capture, hasUsage bool) map[string]any {
	if c.Failed() && c.Status >= 400 {
		return map[string]any{"error": errorObject(c)}
	}
	out := map[string]any{}
	if c.ResponseID != "" {
		out["id"] = c.ResponseID
	}
	if c.ResponseModel != "" {
		out["model"] = c.ResponseModel
	}
	text := ""
	if capture {
		text = c.Output
	}
	switch c.Operation {
	case llmscope.OpChat:
		if c.Provider == anthropicProvider {
			anthropicOutputs(c, out, text, capture, hasUsage)
			if c.Failed() {
				out["error"] = errorObject(c)
			}
			return out
		}
		out["object"] = "chat.completion"
		chatOutputs(c, out, text, capture)
	case llmscope.OpTextCompletion:
		out["object"] = "text_completion"
		choice := map[string]any{"index": 0, "text": text}
		if c.FinishReason != "" {
			choice["finish_reason"] = c.FinishReason
		}
		out["choices"] = []any{choice}
	case llmscope.OpResponses:
		responsesOutputs(c, out, text, capture, hasUsage)
	case llmscope.OpEmbeddings:
		out["object"] = "list"
	default:
		if text != "" {
			out["output"] = text
		}
	}
	if c.ResponseCreated != 0 && c.Operation != llmscope.OpResponses {
		out["created"] = c.ResponseCreated
	}
	if c.SystemFingerprint != "" {
		out["system_fingerprint"] = c.SystemFingerprint
	}
	if hasUsage && c.Operation != llmscope.OpResponses {
		u := chatUsage{PromptTokens: c.Usage.InputTokens, CompletionTokens: c.Usage.OutputTokens, TotalTokens: c.Usage.TotalTokens}
		if c.Usage.CachedInputTokens > 0 {
			u.PromptTokensDetails = map[string]int64{"cached_tokens": c.Usage.CachedInputTokens}
		}
		if c.Usage.ReasoningTokens > 0 {
			u.CompletionTokensDetails = map[string]int64{"reasoning_tokens": c.Usage.ReasoningTokens}
		}
		if c.Operation == llmscope.OpEmbeddings {
			out["usage"] = map[string]int64{"prompt_tokens": u.PromptTokens, "total_tokens": u.TotalTokens}
		} else {
			out["usage"] = u
		}
	}
	if c.Failed() {
		out["error"] = errorObject(c) // an answer that broke or was cut off
	}
	return out
}

// chatOutputs fills out as a ChatCompletion: one choice with the assistant
// message (content and tool calls when captured) and the finish reason.
func chatOutputs(c *llmscope.Call, out map[string]any, text string, capture bool) {
	msg := map[string]any{"role": "assistant", "content": nil}
	if text != "" {
		msg["content"] = text
	}
	if capture {
		if calls := rawArray(c.ToolCalls); calls != nil {
			msg["tool_calls"] = calls
		}
	}
	choice := map[string]any{"index": 0, "message": msg}
	if c.FinishReason != "" {
		choice["finish_reason"] = c.FinishReason
	}
	out["choices"] = []any{choice}
}

// responsesOutputs fills out as a Responses API response object: the
// assistant's message and function calls as output items.
func responsesOutputs(c *llmscope.Call, out map[string]any, text string, capture, hasUsage bool) {
	out["object"] = "response"
	if c.ResponseCreated != 0 {
		out["created_at"] = c.ResponseCreated
	}
	status := "completed"
	switch c.FinishReason {
	case "length":
		status = "incomplete"
	case "error":
		status = "failed"
	}
	out["status"] = status
	output := []any{}
	if text != "" {
		output = append(output, map[string]any{
			"type": "message", "role": "assistant", "status": "completed",
			"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}},
		})
	}
	if capture {
		var calls []json.RawMessage
		if json.Unmarshal([]byte(c.ToolCalls), &calls) == nil {
			for _, fc := range calls {
				output = append(output, fc)
			}
		}
	}
	out["output"] = output
	if hasUsage {
		out["usage"] = responsesUsage{c.Usage.InputTokens, c.Usage.OutputTokens, c.Usage.TotalTokens}
	}
}

// errorObject is the error of a failed call in the OpenAI error shape, with
// the HTTP status.
func errorObject(c *llmscope.Call) map[string]any {
	e := map[string]any{"type": errorType(c)}
	if c.ErrorCode != "" {
		e["code"] = c.ErrorCode
	}
	if c.ErrorMessage != "" {
		e["message"] = c.ErrorMessage
	}
	if c.Status != 0 {
		e["status"] = c.Status
	}
	return e
}

// exceptionType names a failed call's error as the OpenAI Python client's
// exception classes do (what autolog records as exception.type), so both
// read alike in MLflow.
func exceptionType(c *llmscope.Call) string {
	switch c.ErrorType {
	case llmscope.ErrTypeTimeout:
		return "APITimeoutError"
	case llmscope.ErrTypeUnreachable:
		return "APIConnectionError"
	case llmscope.ErrTypeCancelled:
		return "Cancelled"
	case llmscope.ErrTypeStream:
		return "APIError"
	}
	switch s := c.Status; {
	case s == 400:
		return "BadRequestError"
	case s == 401:
		return "AuthenticationError"
	case s == 403:
		return "PermissionDeniedError"
	case s == 404:
		return "NotFoundError"
	case s == 409:
		return "ConflictError"
	case s == 422:
		return "UnprocessableEntityError"
	case s == 429:
		return "RateLimitError"
	case s >= 500:
		return "InternalServerError"
	case s >= 400:
		return "APIStatusError"
	}
	return "APIError"
}

// exceptionMessage is the message of a failed call's exception event: the
// upstream's own message when it sent one, else what llmscope knows.
func exceptionMessage(c *llmscope.Call) string {
	msg := c.ErrorMessage
	if msg == "" {
		msg = errorMessages[c.ErrorType]
	}
	if msg == "" {
		msg = "error type " + errorType(c)
	}
	if c.Status >= 400 {
		return "Error code: " + strconv.Itoa(c.Status) + " - " + msg
	}
	return msg
}

// errorMessages says what llmscope's own error types mean.
var errorMessages = map[string]string{
	llmscope.ErrTypeCancelled:   "the client went away before the end of the answer",
	llmscope.ErrTypeStream:      "the upstream's stream ended before its end marker",
	llmscope.ErrTypeUnreachable: "no response from the upstream",
	llmscope.ErrTypeTimeout:     "the upstream did not answer in time",
	llmscope.ErrTypeUpstream:    "the upstream reported an error inside its answer",
}
