package otlp

import (
	"bytes"
	"encoding/json"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
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
	// Cache writes (Anthropic), part of InputTokens as reads are.
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
}

// cost is the value of mlflow.llm.cost, in US dollars.
type cost struct {
	InputCost  float64 `json:"input_cost"`
	OutputCost float64 `json:"output_cost"`
	TotalCost  float64 `json:"total_cost"`
}
