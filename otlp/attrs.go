package otlp

import (
	"bytes"
	"encoding/json"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"llmscope"
)

// attrs builds an ordered attribute list.
type attrs []*commonpb.KeyValue

func (a *attrs) add(k string, v *commonpb.AnyValue) {
	*a = append(*a, &commonpb.KeyValue{Key: k, Value: v})
}

func (a *attrs) str(k, v string) {
	a.add(k, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}})
}

// strIf adds k only when v is not empty.
func (a *attrs) strIf(k, v string) {
	if v != "" {
		a.str(k, v)
	}
}

func (a *attrs) int(k string, v int64) {
	a.add(k, &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}})
}

func (a *attrs) intPtr(k string, v *int64) {
	if v != nil {
		a.int(k, *v)
	}
}

func (a *attrs) dbl(k string, v float64) {
	a.add(k, &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v}})
}

func (a *attrs) dblPtr(k string, v *float64) {
	if v != nil {
		a.dbl(k, *v)
	}
}

func (a *attrs) boolean(k string, v bool) {
	a.add(k, &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}})
}

func (a *attrs) strs(k string, vs []string) {
	vals := make([]*commonpb.AnyValue, len(vs))
	for i, v := range vs {
		vals[i] = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
	}
	a.add(k, &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}})
}

// json adds v encoded as a JSON string value, the form MLflow expects for
// its mlflow.* attributes. Map keys come out sorted, so the encoding is
// stable. A value that cannot be encoded (never the case for the types used
// here) is skipped.
func (a *attrs) json(k string, v any) {
	if s, ok := jsonString(v); ok {
		a.str(k, s)
	}
}

func jsonString(v any) (string, bool) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), true
}

// tokenUsage is the value of mlflow.chat.tokenUsage.
type tokenUsage struct {
	InputTokens          int64 `json:"input_tokens"`
	OutputTokens         int64 `json:"output_tokens"`
	TotalTokens          int64 `json:"total_tokens"`
	CacheReadInputTokens int64 `json:"cache_read_input_tokens,omitempty"`
}

// cost is the value of mlflow.llm.cost, in US dollars.
type cost struct {
	InputCost  float64 `json:"input_cost"`
	OutputCost float64 `json:"output_cost"`
	TotalCost  float64 `json:"total_cost"`
}

// rawOrString returns s as raw JSON when it is valid JSON (captured request
// input is the raw JSON of the request's messages/input/prompt), else as a
// JSON string (e.g. input cut short by the capture limit).
func rawOrString(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

// spanInputs is the value of mlflow.spanInputs: the request as the OpenAI
// API would see it, limited to what llmscope recorded: the model, the
// parameters sent, stream, and, only when capture is on, the captured input
// under the request field it came from (messages for chat, prompt for text
// completions, input otherwise).
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
	if !capture || c.Input == "" {
		return in
	}
	switch c.Operation {
	case llmscope.OpChat:
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

// spanOutputs is the value of mlflow.spanOutputs: the response model, the
// finish reason, usage, the error of a failed call and, only when capture is
// on, the captured response text (as an OpenAI-style choices list for chat
// and text completions, so MLflow can render it, and as output otherwise).
func spanOutputs(c *llmscope.Call, capture, hasUsage bool) map[string]any {
	out := map[string]any{}
	if c.ResponseModel != "" {
		out["model"] = c.ResponseModel
	}
	if c.FinishReason != "" {
		out["finish_reason"] = c.FinishReason
	}
	if hasUsage {
		out["usage"] = tokenUsage{
			InputTokens:          c.Usage.InputTokens,
			OutputTokens:         c.Usage.OutputTokens,
			TotalTokens:          c.Usage.TotalTokens,
			CacheReadInputTokens: c.Usage.CachedInputTokens,
		}
	}
	if c.Failed() {
		e := map[string]any{"type": errorType(c)}
		if c.Status != 0 {
			e["status"] = c.Status
		}
		out["error"] = e
	}
	if !capture || c.Output == "" {
		return out
	}
	choice := map[string]any{"index": 0}
	if c.FinishReason != "" {
		choice["finish_reason"] = c.FinishReason
	}
	switch c.Operation {
	case llmscope.OpChat:
		choice["message"] = map[string]any{"role": "assistant", "content": c.Output}
		out["choices"] = []any{choice}
	case llmscope.OpTextCompletion:
		choice["text"] = c.Output
		out["choices"] = []any{choice}
	default:
		out["output"] = c.Output
	}
	return out
}
