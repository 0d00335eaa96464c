package otlp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"llmscope"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535000000, time.UTC)

// chatCall is a non-streamed chat call with cached and reasoning tokens and
// a known cost.
func chatCall() *llmscope.Call {
	return &llmscope.Call{
		ID:            "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		TraceID:       "0195a1b2c3d47e5f8a9b0c1d2e3f4a5b",
		Start:         t0,
		DurationMS:    812.4,
		Operation:     llmscope.OpChat,
		Provider:      "openai",
		Endpoint:      "/v1/chat/completions",
		RequestModel:  "o4-mini",
		ResponseModel: "o4-mini-2025-04-16",
		Status:        200,
		FinishReason:  "stop",
		Params: llmscope.Params{
			Temperature:         f64(0.7),
			TopP:                f64(1),
			MaxCompletionTokens: i64(256),
			Seed:                i64(42),
			Stop:                []string{"\n\n", "END"},
			PresencePenalty:     f64(0.1),
			FrequencyPenalty:    f64(0.2),
			ReasoningEffort:     "low",
		},
		Usage: llmscope.Usage{
			InputTokens: 1200, OutputTokens: 300, TotalTokens: 1500,
			CachedInputTokens: 1024, ReasoningTokens: 192, Source: llmscope.UsageReported,
		},
		Cost:       &llmscope.Cost{InputUSD: 0.0004444, OutputUSD: 0.00132, TotalUSD: 0.0017644, PriceSource: "builtin:2026-03-01"},
		Experiment: "llmscope",
		Run:        "sweep-t0.7",
		User:       "alice",
		Session:    "s-42",
		Tags:       map[string]string{"team": "search", "env": "dev"},
		OverheadMS: 0.04,
	}
}

// streamFailedCall is a streamed chat call whose stream broke.
func streamFailedCall() *llmscope.Call {
	return &llmscope.Call{
		ID:           "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60",
		TraceID:      "0195a1b2c3d47e5f8a9b0c1d2e3f4a60",
		Start:        t0.Add(time.Second),
		DurationMS:   1503.25,
		TTFTMS:       143.2,
		Operation:    llmscope.OpChat,
		Provider:     "openai",
		Endpoint:     "/v1/chat/completions",
		RequestModel: "gpt-4o-mini",
		Stream:       true,
		Status:       200,
		ErrorType:    llmscope.ErrTypeStream,
		Params:       llmscope.Params{Temperature: f64(0), MaxTokens: i64(64)},
		Usage:        llmscope.Usage{InputTokens: 21, OutputTokens: 9, TotalTokens: 30, Source: llmscope.UsageEstimated},
		Experiment:   "llmscope",
	}
}

// embeddingsCall is an embeddings call with a non-UUID id and no trace id.
func embeddingsCall() *llmscope.Call {
	return &llmscope.Call{
		ID:            "legacy-42",
		Start:         t0.Add(2 * time.Second),
		DurationMS:    35.5,
		Operation:     llmscope.OpEmbeddings,
		Provider:      "openai",
		Endpoint:      "/v1/embeddings",
		RequestModel:  "text-embedding-3-small",
		ResponseModel: "text-embedding-3-small",
		Status:        200,
		Params:        llmscope.Params{Dimensions: i64(256), EncodingFormat: "float"},
		Usage:         llmscope.Usage{InputTokens: 8, TotalTokens: 8, Source: llmscope.UsageReported},
		Cost:          &llmscope.Cost{InputUSD: 1.6e-7, TotalUSD: 1.6e-7, PriceSource: "builtin:2026-03-01"},
		Experiment:    "llmscope",
	}
}

const (
	secretPrompt   = "SECRET-PROMPT-what is the launch code"
	secretAnswer   = "SECRET-ANSWER-it is 0000"
	secretInstruct = "SECRET-INSTRUCTIONS-be terse"
)

// capturedCalls holds a chat and a Responses call with captured text.
func capturedCalls() []*llmscope.Call {
	chat := chatCall()
	chat.Input = `[{"role":"user","content":"` + secretPrompt + `"}]`
	chat.Output = secretAnswer
	chat.ResponseID, chat.ResponseCreated, chat.SystemFingerprint = "chatcmpl-1", 1773500966, "fp_1"
	chat.Tools = `[{"type":"function","function":{"name":"launch","parameters":{"type":"object","properties":{"code":{"type":"string"}}}}}]`
	chat.ToolCalls = `[{"id":"call_1","type":"function","function":{"name":"launch","arguments":"{\"code\":\"` + secretAnswer + `\"}"}}]`
	chat.Params.Tools = i64(1)
	resp := &llmscope.Call{
		ID:            "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61",
		TraceID:       "0195a1b2c3d47e5f8a9b0c1d2e3f4a61",
		Start:         t0.Add(3 * time.Second),
		DurationMS:    420,
		Operation:     llmscope.OpResponses,
		Provider:      "openai",
		Endpoint:      "/v1/responses",
		RequestModel:  "gpt-4.1-nano",
		ResponseModel: "gpt-4.1-nano-2025-04-14",
		Status:        200,
		FinishReason:  "completed",
		Params:        llmscope.Params{MaxOutputTokens: i64(100)},
		Usage:         llmscope.Usage{InputTokens: 30, OutputTokens: 12, TotalTokens: 42, Source: llmscope.UsageReported},
		Experiment:    "llmscope",
		Input:         `{"instructions":"` + secretInstruct + `","input":"` + secretPrompt + `"}`,
		Output:        secretAnswer,
		ResponseID:    "resp_1",
		ToolCalls:     `[{"type":"function_call","id":"fc_1","call_id":"call_2","name":"launch","arguments":"{}","status":"completed"}]`,
	}
	return []*llmscope.Call{chat, resp}
}

// goldenJSON renders req as stable, indented protojson.
func goldenJSON(t *testing.T, calls []*llmscope.Call, opts Options) []byte {
	t.Helper()
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(pb(Spans(calls, opts)))
	if err != nil {
		t.Fatal(err)
	}
	// protojson varies its whitespace on purpose: normalise it.
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		calls []*llmscope.Call
		opts  Options
	}{
		{"chat_cached_reasoning", []*llmscope.Call{chatCall()}, Options{Version: "v0.1.0"}},
		{"stream_failed", []*llmscope.Call{streamFailedCall()}, Options{}},
		{"embeddings", []*llmscope.Call{embeddingsCall()}, Options{ServiceName: "my-gateway", Attributes: map[string]string{"deployment.environment.name": "test", "service.name": "ignored"}}},
		{"capture_on", capturedCalls(), Options{Capture: true, AutologNames: true}},
		{"capture_off", capturedCalls(), Options{AutologNames: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := goldenJSON(t, tc.calls, tc.opts)
			path := filepath.Join("testdata", tc.name+".otlp.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the mapping (run go test ./otlp -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// attrMap indexes a span's attributes by key.
func attrMap(s *tracepb.Span) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func oneSpan(t *testing.T, c *llmscope.Call, opts Options) (*tracepb.Span, map[string]*commonpb.AnyValue) {
	t.Helper()
	req := Spans([]*llmscope.Call{c}, opts)
	if n := len(req.ResourceSpans); n != 1 {
		t.Fatalf("resource spans = %d, want 1", n)
	}
	spans := req.ResourceSpans[0].ScopeSpans[0].Spans
	if len(spans) != 1 {
		t.Fatalf("spans = %d, want 1", len(spans))
	}
	return spans[0], attrMap(spans[0])
}

func TestCaptureOff(t *testing.T) {
	calls := capturedCalls()
	b, err := proto.Marshal(pb(Spans(calls, Options{})))
	if err != nil {
		t.Fatal(err)
	}
	j := goldenJSON(t, calls, Options{})
	for _, secret := range []string{secretPrompt, secretAnswer, secretInstruct, "SECRET"} {
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(j, []byte(secret)) {
			t.Errorf("capture off: %q leaked into the export", secret)
		}
	}
	// Capture on: the text is there, under the request's own fields.
	_, a := oneSpan(t, calls[0], Options{Capture: true})
	var in struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	if err := json.Unmarshal([]byte(a["mlflow.spanInputs"].GetStringValue()), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Messages) != 1 || in.Messages[0].Content != secretPrompt {
		t.Errorf("capture on: spanInputs messages = %+v", in.Messages)
	}
	if !strings.Contains(a["mlflow.spanOutputs"].GetStringValue(), secretAnswer) {
		t.Errorf("capture on: spanOutputs lacks the answer: %s", a["mlflow.spanOutputs"].GetStringValue())
	}
}

func TestDeterministic(t *testing.T) {
	calls := []*llmscope.Call{chatCall(), streamFailedCall(), embeddingsCall()}
	opts := Options{Attributes: map[string]string{"b": "2", "a": "1", "c": "3"}}
	m := proto.MarshalOptions{Deterministic: true}
	first, err := m.Marshal(pb(Spans(calls, opts)))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := m.Marshal(pb(Spans([]*llmscope.Call{chatCall(), streamFailedCall(), embeddingsCall()}, opts)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("same calls marshalled to different bytes")
		}
	}

	c := chatCall()
	s, _ := oneSpan(t, c, Options{})
	if got := hex.EncodeToString(s.TraceId); got != c.TraceID {
		t.Errorf("trace id = %s, want call.TraceID %s", got, c.TraceID)
	}
	sum := sha256.Sum256([]byte("span:" + c.ID))
	if !bytes.Equal(s.SpanId, sum[:8]) {
		t.Errorf("span id = %x, want %x", s.SpanId, sum[:8])
	}
}

func TestTraceIDFallback(t *testing.T) {
	// A non-UUID id without a trace id: first 16 bytes of sha256(id).
	e := embeddingsCall()
	sum := sha256.Sum256([]byte(e.ID))
	if got := TraceID(e); !bytes.Equal(got, sum[:16]) {
		t.Errorf("trace id = %x, want %x", got, sum[:16])
	}
	// Invalid trace ids fall back to the id the call would have been given.
	for _, bad := range []string{"", "xyz", "0195a1b2c3d47e5f", strings.Repeat("0", 32), strings.Repeat("g", 32)} {
		c := chatCall()
		c.TraceID = bad
		want := llmscope.TraceIDFor(c.ID)
		if got := hex.EncodeToString(TraceID(c)); got != want {
			t.Errorf("TraceID(%q) = %s, want %s", bad, got, want)
		}
	}
}

func TestSpanFields(t *testing.T) {
	s, a := oneSpan(t, streamFailedCall(), Options{AutologNames: true})
	if s.Name != "Completions" || s.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("name, kind = %q, %v", s.Name, s.Kind)
	}
	if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		s.Status.GetMessage() != "APIError: the upstream's stream ended before its end marker" {
		t.Errorf("status = %v", s.Status)
	}
	if a["mlflow.traceTag.mlflow.traceName"].GetStringValue() != "Completions" {
		t.Errorf("trace name %v, want Completions", a["mlflow.traceTag.mlflow.traceName"])
	}
	// The first chunk's event, then the exception's.
	if len(s.Events) != 2 || s.Events[0].Name != "first_chunk" || s.Events[1].Name != "exception" ||
		s.Events[0].TimeUnixNano != s.StartTimeUnixNano+uint64(143200*time.Microsecond) {
		t.Errorf("events %v", s.Events)
	}
	if s.StartTimeUnixNano != uint64(t0.Add(time.Second).UnixNano()) ||
		s.EndTimeUnixNano-s.StartTimeUnixNano != uint64(1503250*time.Microsecond) {
		t.Errorf("times = %d..%d", s.StartTimeUnixNano, s.EndTimeUnixNano)
	}
	if a["error.type"].GetStringValue() != llmscope.ErrTypeStream ||
		a["llmscope.ttft_ms"].GetDoubleValue() != 143.2 || !a["llmscope.stream"].GetBoolValue() ||
		a["mlflow.spanType"].GetStringValue() != "CHAT_MODEL" ||
		a["mlflow.llm.model"].GetStringValue() != `"gpt-4o-mini"` {
		t.Errorf("attributes: %v", a)
	}
	if _, ok := a["mlflow.llm.cost"]; ok {
		t.Error("mlflow.llm.cost set for a call with unknown cost")
	}

	// An HTTP error without an error type, and no usage.
	c := streamFailedCall()
	c.ErrorType, c.Status, c.Usage = "", 429, llmscope.Usage{Source: llmscope.UsageNone}
	c.ErrorCode, c.ErrorMessage = "rate_limit_exceeded", "Rate limit reached for gpt-4o-mini"
	s, a = oneSpan(t, c, Options{})
	const wantMsg = "Error code: 429 - Rate limit reached for gpt-4o-mini"
	if s.Status.GetMessage() != "RateLimitError: "+wantMsg || a["error.type"].GetStringValue() != "429" ||
		a["http.response.status_code"].GetIntValue() != 429 || a["llmscope.error_code"].GetStringValue() != "rate_limit_exceeded" {
		t.Errorf("status %v, attributes %v", s.Status, a)
	}
	if ev := s.Events[len(s.Events)-1]; ev.Name != "exception" || len(ev.Attributes) != 2 ||
		ev.Attributes[0].Value.GetStringValue() != "RateLimitError" || ev.Attributes[1].Value.GetStringValue() != wantMsg {
		t.Errorf("exception event %v", ev)
	}
	for _, k := range []string{"mlflow.chat.tokenUsage", "gen_ai.usage.input_tokens"} {
		if _, ok := a[k]; ok {
			t.Errorf("%s set with usage source none", k)
		}
	}

	// Span types and operation names per operation.
	// (autolog's span name, then the GenAI convention's)
	for op, want := range map[string][4]string{
		llmscope.OpChat:           {"CHAT_MODEL", "chat", "Completions", "chat o4-mini"},
		llmscope.OpResponses:      {"CHAT_MODEL", "chat", "Responses", "chat o4-mini"},
		llmscope.OpTextCompletion: {"LLM", "text_completion", "Completions", "text_completion o4-mini"},
		llmscope.OpEmbeddings:     {"EMBEDDING", "embeddings", "Embeddings", "embeddings o4-mini"},
		llmscope.OpModels:         {"UNKNOWN", "models", "models o4-mini", "models o4-mini"},
		llmscope.OpOther:          {"UNKNOWN", "other", "other o4-mini", "other o4-mini"},
	} {
		c := chatCall()
		c.Operation = op
		s, a := oneSpan(t, c, Options{AutologNames: true})
		s2, _ := oneSpan(t, c, Options{})
		if a["mlflow.spanType"].GetStringValue() != want[0] || s2.Name != want[3] ||
			a["gen_ai.operation.name"].GetStringValue() != want[1] || s.Name != want[2] {
			t.Errorf("%s: spanType %s, operation %s, name %q", op,
				a["mlflow.spanType"].GetStringValue(), a["gen_ai.operation.name"].GetStringValue(), s.Name)
		}
	}

	// max_tokens precedence.
	c = chatCall()
	c.Params.MaxTokens, c.Params.MaxOutputTokens = i64(10), i64(30)
	if _, a := oneSpan(t, c, Options{}); a["gen_ai.request.max_tokens"].GetIntValue() != 10 {
		t.Errorf("max_tokens = %v, want 10", a["gen_ai.request.max_tokens"])
	}
	// Nil calls are skipped.
	if n := len(Spans([]*llmscope.Call{nil, chatCall()}, Options{}).ResourceSpans[0].ScopeSpans[0].Spans); n != 1 {
		t.Errorf("spans = %d, want 1", n)
	}
}

// TestTraceHexAgrees: the trace id sent over OTLP and the one the MLflow
// exporter names in its REST calls are the same.
func TestTraceHexAgrees(t *testing.T) {
	for _, id := range []struct{ id, trace string }{
		{"0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "0195a1b2c3d47e5f8a9b0c1d2e3f4a5b"},
		{"legacy-42", ""},
		{"legacy-43", "00000000000000000000000000000000"},
		{"legacy-44", "not hex at all, but 32 long....."},
		{"legacy-45", "0195A1B2C3D47E5F8A9B0C1D2E3F4A5B"},
	} {
		c := &llmscope.Call{ID: id.id, TraceID: id.trace}
		if got, want := c.TraceHex(), hex.EncodeToString(TraceID(c)); got != want {
			t.Errorf("%+v: TraceHex %s, OTLP trace id %s", id, got, want)
		}
	}
}

// A routed call's trace has one child span per upstream attempt.
func TestTrySpans(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c := &llmscope.Call{ID: "0190b9a4-0000-7000-8000-000000000001", Start: t0, DurationMS: 900, Operation: llmscope.OpChat,
		Provider: "openai", Status: 200, Upstream: "b", Attempts: 2, Key: "ci-bot", Team: "search", User: "ann",
		Tries: []llmscope.Try{
			{Upstream: "a", Start: t0, DurationMS: 300, Status: 429, Outcome: "status", Retried: true},
			{Upstream: "b", Start: t0.Add(300 * time.Millisecond), DurationMS: 100, Status: 200, Outcome: "ok"},
		}}
	spans := Spans([]*llmscope.Call{c}, Options{}).ResourceSpans[0].ScopeSpans[0].Spans
	if len(spans) != 3 {
		t.Fatalf("%d spans, want the call's and one per attempt", len(spans))
	}
	root := spans[0]
	if got := attrMap(root)["llmscope.upstream"].GetStringValue(); got != "b" {
		t.Errorf("root llmscope.upstream = %q, want b", got)
	}
	if got := attrMap(root)["llmscope.key"].GetStringValue() + "/" + attrMap(root)["llmscope.team"].GetStringValue(); got != "ci-bot/search" {
		t.Errorf("root llmscope.key/team = %q", got)
	}
	if got := attrMap(root)["llmscope.attempts"].GetIntValue(); got != 2 {
		t.Errorf("root llmscope.attempts = %d, want 2", got)
	}
	for i, want := range []struct {
		name   string
		status tracepb.Status_StatusCode
		code   int64
		start  time.Time
	}{
		{"attempt a", tracepb.Status_STATUS_CODE_ERROR, 429, t0},
		{"attempt b", tracepb.Status_STATUS_CODE_OK, 200, t0.Add(300 * time.Millisecond)},
	} {
		s := spans[i+1]
		if s.Name != want.name || s.Status.Code != want.status || !bytes.Equal(s.ParentSpanId, root.SpanId) ||
			!bytes.Equal(s.TraceId, root.TraceId) || s.StartTimeUnixNano != uint64(want.start.UnixNano()) ||
			attrMap(s)["http.response.status_code"].GetIntValue() != want.code {
			t.Errorf("attempt span %d: %s %v parent %x (root %x) start %d code %v", i, s.Name, s.Status.Code,
				s.ParentSpanId, root.SpanId, s.StartTimeUnixNano, attrMap(s)["http.response.status_code"])
		}
		if bytes.Equal(s.SpanId, root.SpanId) || i == 1 && bytes.Equal(s.SpanId, spans[1].SpanId) {
			t.Errorf("attempt span %d reuses a span id", i)
		}
	}
	if again := Spans([]*llmscope.Call{c}, Options{}).ResourceSpans[0].ScopeSpans[0].Spans; !bytes.Equal(again[2].SpanId, spans[2].SpanId) {
		t.Error("attempt span ids differ between two exports of the same call")
	}
}

// An Anthropic call reads in MLflow as mlflow.anthropic.autolog() records
// one: the Messages request and the Message returned, with content blocks
// and Anthropic's usage (input without the cache's reads and writes).
func TestAnthropicSpan(t *testing.T) {
	c := &llmscope.Call{ID: "0190b9a4-0000-7000-8000-0000000000a1", Start: time.Unix(1_700_000_000, 0), DurationMS: 500,
		Operation: llmscope.OpChat, Provider: "anthropic", RequestModel: "claude-sonnet-4-5", ResponseModel: "claude-sonnet-4-5-20250929",
		Status: 200, FinishReason: "tool_use", ResponseID: "msg_01",
		Usage:     llmscope.Usage{InputTokens: 120, CachedInputTokens: 80, CacheCreationInputTokens: 30, OutputTokens: 15, TotalTokens: 135, Source: llmscope.UsageReported},
		Input:     `{"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"weather?"}]}]}`,
		Output:    "Let me check.",
		ToolCalls: `[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`,
	}
	s := Spans([]*llmscope.Call{c}, Options{Capture: true}).ResourceSpans[0].ScopeSpans[0].Spans[0]
	a := attrMap(s)
	if got := a["mlflow.message.format"].GetStringValue(); got != `"anthropic"` {
		t.Errorf("mlflow.message.format = %s", got)
	}
	var in struct {
		System   string
		Messages []map[string]any
	}
	if err := json.Unmarshal([]byte(a["mlflow.spanInputs"].GetStringValue()), &in); err != nil || in.System != "Be brief." || len(in.Messages) != 1 {
		t.Errorf("spanInputs %s (%v)", a["mlflow.spanInputs"].GetStringValue(), err)
	}
	var out struct {
		Type, Role string
		StopReason string `json:"stop_reason"`
		Content    []map[string]any
		Usage      map[string]int64
	}
	raw := a["mlflow.spanOutputs"].GetStringValue()
	if err := json.Unmarshal([]byte(raw), &out); err != nil || len(out.Content) != 2 || out.Content[0]["text"] != "Let me check." ||
		out.Content[1]["type"] != "tool_use" || out.Content[1]["name"] != "get_weather" || out.StopReason != "tool_use" ||
		out.Usage["input_tokens"] != 10 || out.Usage["cache_read_input_tokens"] != 80 || out.Usage["cache_creation_input_tokens"] != 30 {
		t.Errorf("spanOutputs %s (%v)", raw, err)
	}
	if a["gen_ai.usage.cache_read.input_tokens"].GetIntValue() != 80 || a["gen_ai.usage.cache_creation.input_tokens"].GetIntValue() != 30 {
		t.Errorf("cache usage attributes: %v %v", a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.cache_creation.input_tokens"])
	}
}
