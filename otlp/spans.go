// Package otlp maps llmscope calls onto OpenTelemetry spans and sends them
// over OTLP/HTTP (binary protobuf) to any OTLP receiver: an OpenTelemetry
// collector, or MLflow's /v1/traces endpoint.
//
// Every call becomes one span in its own trace. The span carries the
// OpenTelemetry GenAI attributes (gen_ai.*), the attributes MLflow reads to
// type and chart a span (mlflow.*, JSON-encoded as MLflow expects) and
// llmscope's own (llmscope.*). Trace and span ids are derived from the call,
// so exporting the same call twice yields the same ids and the receiver can
// de-duplicate a replay.
package otlp

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"llmscope"
)

// DefaultServiceName is the service.name of the resource when
// Options.ServiceName is empty; it is also the instrumentation scope name.
const DefaultServiceName = "llmscope"

// Options controls the mapping of calls to spans. The zero value is valid.
type Options struct {
	// ServiceName is the resource's service.name; DefaultServiceName when
	// empty.
	ServiceName string
	// Version, when set, becomes the resource's service.version and the
	// instrumentation scope's version.
	Version string
	// Attributes are extra resource attributes (e.g. deployment.environment,
	// host.name), added in key order. A "service.name" key here is ignored:
	// set ServiceName instead.
	Attributes map[string]string
	// Capture puts the captured prompt and response text (Call.Input and
	// Call.Output) into mlflow.spanInputs / mlflow.spanOutputs. When false,
	// no captured text leaves the process, whatever the call holds.
	Capture bool
	// AutologNames names spans as mlflow.openai.autolog() does
	// (Completions, Embeddings, Responses), for MLflow. When false, span
	// names follow the GenAI convention "{operation} {request model}".
	AutologNames bool
}

// Spans maps calls to one OTLP export request (Request.Marshal encodes it): one resource, one scope
// ("llmscope"), and one span per non-nil call, in the order given. The
// result depends only on calls and opts, so the same input always marshals
// to the same bytes.
//
// Ids: the trace id is the 16 bytes of the 32 hex digits of Call.TraceID;
// when that is not valid hex of that length (or all zeros) it is
// llmscope.TraceIDFor(Call.ID), the id the call would have been given,
// which is the first 16 bytes of sha256(Call.ID) for an id that is not a
// UUID. The span id is the first 8 bytes of sha256("span:"+Call.ID).
func Spans(calls []*llmscope.Call, opts Options) *Request {
	spans := make([]*tracepb.Span, 0, len(calls))
	for _, c := range calls {
		if c != nil {
			spans = append(spans, span(c, opts))
			spans = append(spans, trySpans(c)...)
		}
	}
	return &Request{
		ResourceSpans: []*tracepb.ResourceSpans{{
			Resource: resource(opts),
			ScopeSpans: []*tracepb.ScopeSpans{{
				Scope: &commonpb.InstrumentationScope{
					Name:    DefaultServiceName,
					Version: opts.Version,
				},
				Spans: spans,
			}},
		}},
	}
}

func resource(opts Options) *resourcepb.Resource {
	var a attrs
	name := opts.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	a.str("service.name", name)
	a.strIf("service.version", opts.Version)
	keys := make([]string, 0, len(opts.Attributes))
	for k := range opts.Attributes {
		if k != "service.name" && k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.str(k, opts.Attributes[k])
	}
	return &resourcepb.Resource{Attributes: a}
}

// TraceID returns the 16-byte OTLP trace id of c (see Spans).
func TraceID(c *llmscope.Call) []byte {
	if b, err := hex.DecodeString(c.TraceID); err == nil && len(b) == 16 && !allZero(b) {
		return b
	}
	b, _ := hex.DecodeString(llmscope.TraceIDFor(c.ID)) // always 32 hex digits
	return b
}

// The trace id MLflow shows is "tr-" + Call.TraceHex(); TraceID must stay
// the same bytes (checked in TestTraceHexAgrees).

// SpanID returns the 8-byte OTLP span id of c (see Spans).
func SpanID(c *llmscope.Call) []byte {
	sum := sha256.Sum256([]byte("span:" + c.ID))
	return sum[:8]
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// genAIOperation returns the gen_ai.operation.name of an llmscope operation:
// the Responses API is a chat operation in the GenAI conventions; the other
// names are used as they are.
func genAIOperation(op string) string {
	if op == llmscope.OpResponses {
		return llmscope.OpChat
	}
	return op
}

// spanType returns MLflow's span type for an llmscope operation.
func spanType(op string) string {
	switch op {
	case llmscope.OpChat, llmscope.OpResponses:
		return "CHAT_MODEL"
	case llmscope.OpTextCompletion:
		return "LLM"
	case llmscope.OpEmbeddings:
		return "EMBEDDING"
	}
	return "UNKNOWN"
}

// spanName follows the GenAI convention "{operation} {request model}",
// or with autolog, the name mlflow.openai.autolog() gives the span of the
// same call (the OpenAI client's resource: Completions, Embeddings,
// Responses), so MLflow users' span.name and trace.name filters find both
// alike.
func spanName(c *llmscope.Call, autolog bool) string {
	if autolog {
		switch c.Operation {
		case llmscope.OpChat, llmscope.OpTextCompletion:
			return "Completions"
		case llmscope.OpEmbeddings:
			return "Embeddings"
		case llmscope.OpResponses:
			return "Responses"
		}
	}
	op := genAIOperation(c.Operation)
	switch {
	case op == "" && c.RequestModel == "":
		return DefaultServiceName
	case op == "":
		return c.RequestModel
	case c.RequestModel == "":
		return op
	}
	return op + " " + c.RequestModel
}

// errorType is the error.type of a failed call: its error type, else its
// HTTP status code.
func errorType(c *llmscope.Call) string {
	if c.ErrorType != "" {
		return c.ErrorType
	}
	return strconv.Itoa(c.Status)
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func span(c *llmscope.Call, opts Options) *tracepb.Span {
	start := unixNano(c.Start)
	end := start
	if c.DurationMS > 0 {
		end += uint64(c.DurationMS * float64(time.Millisecond))
	}
	s := &tracepb.Span{
		TraceId:           TraceID(c),
		SpanId:            SpanID(c),
		Name:              spanName(c, opts.AutologNames),
		Kind:              tracepb.Span_SPAN_KIND_CLIENT,
		StartTimeUnixNano: start,
		EndTimeUnixNano:   end,
		Attributes:        attributes(c, opts),
		// OK rather than UNSET: MLflow derives the trace state from the
		// root span's status.
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
	}
	if c.Failed() {
		typ, msg := exceptionType(c), exceptionMessage(c)
		s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: typ + ": " + msg}
		var ea attrs
		ea.str("exception.type", typ)
		ea.str("exception.message", msg)
		s.Events = append(s.Events, &tracepb.Span_Event{Name: "exception", TimeUnixNano: end, Attributes: ea})
	}
	if c.Stream && c.TTFTMS > 0 {
		// What a user reads off autolog's chunk events, in one event: when
		// the first chunk came, and how many followed.
		var ea attrs
		ea.dbl("llmscope.ttft_ms", c.TTFTMS)
		ea.int("llmscope.chunks", c.Chunks)
		at := start + uint64(c.TTFTMS*float64(time.Millisecond))
		s.Events = append([]*tracepb.Span_Event{{Name: "first_chunk", TimeUnixNano: at, Attributes: ea}}, s.Events...)
	}
	return s
}

// trySpans returns one child span of the call's span per upstream attempt
// of a routed call (Call.Tries), named "attempt {upstream}", with its
// status, outcome and whether another attempt followed. Span ids are the
// first 8 bytes of sha256("try:"+Call.ID+":"+index).
func trySpans(c *llmscope.Call) []*tracepb.Span {
	if len(c.Tries) == 0 {
		return nil
	}
	out := make([]*tracepb.Span, 0, len(c.Tries))
	parent := SpanID(c)
	for i, t := range c.Tries {
		start := unixNano(t.Start)
		var a attrs
		a.str("mlflow.spanType", "UNKNOWN")
		a.strIf("gen_ai.provider.name", c.Provider)
		a.str("llmscope.upstream", t.Upstream)
		a.int("llmscope.attempt", int64(i+1))
		a.str("llmscope.outcome", t.Outcome)
		a.boolean("llmscope.retried", t.Retried)
		if t.Status != 0 {
			a.int("http.response.status_code", int64(t.Status))
		}
		st := &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
		if t.Outcome != "ok" {
			typ := t.Outcome
			if t.Status != 0 {
				typ = strconv.Itoa(t.Status)
			}
			a.str("error.type", typ)
			st = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: t.Outcome}
		}
		sum := sha256.Sum256([]byte("try:" + c.ID + ":" + strconv.Itoa(i)))
		out = append(out, &tracepb.Span{
			TraceId: TraceID(c), SpanId: sum[:8], ParentSpanId: parent,
			Name: "attempt " + t.Upstream, Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: start, EndTimeUnixNano: start + uint64(max(t.DurationMS, 0)*float64(time.Millisecond)),
			Attributes: a, Status: st,
		})
	}
	return out
}

// attributes lists a call's span attributes in a fixed order: GenAI, then
// MLflow, then llmscope's own.
func attributes(c *llmscope.Call, opts Options) []*commonpb.KeyValue {
	var a attrs
	p := &c.Params
	hasUsage := c.Usage.Source != llmscope.UsageNone && c.Usage.Source != ""

	// OpenTelemetry GenAI semantic conventions.
	a.strIf("gen_ai.operation.name", genAIOperation(c.Operation))
	a.strIf("gen_ai.provider.name", c.Provider)
	a.strIf("gen_ai.request.model", c.RequestModel)
	a.strIf("gen_ai.response.model", c.ResponseModel)
	a.strIf("gen_ai.response.id", c.ResponseID)
	if hasUsage {
		a.int("gen_ai.usage.input_tokens", c.Usage.InputTokens)
		a.int("gen_ai.usage.output_tokens", c.Usage.OutputTokens)
		if c.Usage.CachedInputTokens > 0 {
			a.int("gen_ai.usage.cache_read.input_tokens", c.Usage.CachedInputTokens)
		}
		if c.Usage.CacheCreationInputTokens > 0 {
			a.int("gen_ai.usage.cache_creation.input_tokens", c.Usage.CacheCreationInputTokens)
		}
	}
	a.dblPtr("gen_ai.request.temperature", p.Temperature)
	a.dblPtr("gen_ai.request.top_p", p.TopP)
	a.intPtr("gen_ai.request.max_tokens", firstSet(p.MaxTokens, p.MaxCompletionTokens, p.MaxOutputTokens))
	a.intPtr("gen_ai.request.seed", p.Seed)
	a.dblPtr("gen_ai.request.frequency_penalty", p.FrequencyPenalty)
	a.dblPtr("gen_ai.request.presence_penalty", p.PresencePenalty)
	if len(p.Stop) > 0 {
		a.strs("gen_ai.request.stop_sequences", p.Stop)
	}
	if p.N != nil && *p.N != 1 {
		a.int("gen_ai.request.choice.count", *p.N)
	}
	if p.EncodingFormat != "" {
		a.strs("gen_ai.request.encoding_formats", []string{p.EncodingFormat})
	}
	a.intPtr("gen_ai.embeddings.dimension.count", p.Dimensions)
	if c.FinishReason != "" {
		a.strs("gen_ai.response.finish_reasons", []string{c.FinishReason})
	}
	if c.Failed() {
		a.str("error.type", errorType(c))
	}
	if c.Status != 0 {
		a.int("http.response.status_code", int64(c.Status))
	}

	// MLflow: JSON-encoded values, except the span type, which MLflow
	// stores as sent (a JSON-quoted type would match no span.type filter).
	a.str("mlflow.spanType", spanType(c.Operation))
	if m := c.Model(); m != "" {
		a.json("mlflow.llm.model", m)
	}
	if c.Provider != "" {
		a.json("mlflow.llm.provider", c.Provider)
	}
	if hasUsage {
		a.json("mlflow.chat.tokenUsage", tokenUsage{
			InputTokens:              c.Usage.InputTokens,
			OutputTokens:             c.Usage.OutputTokens,
			TotalTokens:              c.Usage.TotalTokens,
			CacheReadInputTokens:     c.Usage.CachedInputTokens,
			CacheCreationInputTokens: c.Usage.CacheCreationInputTokens,
		})
	}
	if c.Cost != nil {
		a.json("mlflow.llm.cost", cost{
			InputCost:  c.Cost.InputUSD,
			OutputCost: c.Cost.OutputUSD,
			TotalCost:  c.Cost.TotalUSD,
		})
	}
	a.json("mlflow.spanInputs", spanInputs(c, opts.Capture))
	if out := spanOutputs(c, opts.Capture, hasUsage); len(out) > 0 {
		a.json("mlflow.spanOutputs", out)
	}
	if tools := rawArray(c.Tools); opts.Capture && tools != nil {
		a.json("mlflow.chat.tools", tools)
	}
	if c.Operation == llmscope.OpChat || c.Operation == llmscope.OpResponses {
		// The UI renders the inputs and outputs as a conversation.
		a.json("mlflow.message.format", messageFormat(c))
	}
	// User and session: MLflow keeps them as trace metadata under these
	// keys. Recent MLflow servers promote the root span's user.id and
	// session.id (OTel conventions) to that metadata; the mlflow.trace.*
	// span attributes carry the same plain strings for readers of the span.
	if c.User != "" {
		a.str("mlflow.trace.user", c.User)
		a.str("user.id", c.User)
	}
	if c.Session != "" {
		a.str("mlflow.trace.session", c.Session)
		a.str("session.id", c.Session)
	}

	// llmscope's own.
	a.str("llmscope.call_id", c.ID)
	a.strIf("llmscope.operation", c.Operation)
	a.strIf("llmscope.endpoint", c.Endpoint)
	a.strIf("llmscope.experiment", c.Experiment)
	a.strIf("llmscope.run", c.Run)
	a.strIf("llmscope.usage_source", c.Usage.Source)
	if hasUsage {
		a.int("llmscope.usage.total_tokens", c.Usage.TotalTokens)
		a.int("llmscope.usage.cached_input_tokens", c.Usage.CachedInputTokens)
		a.int("llmscope.usage.reasoning_tokens", c.Usage.ReasoningTokens)
	}
	if c.Cost != nil {
		a.strIf("llmscope.cost.price_source", c.Cost.PriceSource)
	}
	if c.TTFTMS > 0 {
		a.dbl("llmscope.ttft_ms", c.TTFTMS)
	}
	if c.Stream {
		a.int("llmscope.chunks", c.Chunks)
	}
	a.strIf("llmscope.error_code", c.ErrorCode)
	a.boolean("llmscope.stream", c.Stream)
	a.strIf("llmscope.key", c.Key)
	a.strIf("llmscope.team", c.Team)
	a.strIf("llmscope.upstream", c.Upstream)
	if c.Attempts > 0 {
		a.int("llmscope.attempts", int64(c.Attempts))
	}
	a.strIf("llmscope.service_tier", c.ServiceTier)
	a.strIf("llmscope.deployment", c.Deployment)
	keys := make([]string, 0, len(c.Tags))
	for k := range c.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.str("llmscope.tags."+k, c.Tags[k])
	}
	// Recent MLflow servers turn mlflow.traceTag.<k> on a root span into
	// the trace tag k (searchable in the trace list); mlflow.traceName is
	// the trace's name, as autolog sets it.
	a.str("mlflow.traceTag.mlflow.traceName", spanName(c, opts.AutologNames))
	if c.Run != "" {
		a.str("mlflow.traceTag.llmscope.run", c.Run)
	}
	for _, k := range keys {
		a.str("mlflow.traceTag."+k, c.Tags[k])
	}
	return a
}

func firstSet(ps ...*int64) *int64 {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}
