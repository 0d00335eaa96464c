package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

func chatParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage("Name three colours."),
		},
		Temperature: openai.Float(0.7),
		TopP:        openai.Float(1),
		MaxTokens:   openai.Int(256),
		Seed:        openai.Int(42),
	}
}

func TestChat(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 1}, nil)
	cl := client(e.gw.URL, option.WithHeader("X-Llmscope-Run", "run-a"),
		option.WithHeader("X-Llmscope-Tags", "team=search, env=test"), option.WithHeader("X-Llmscope-User", "u1"))
	var raw *http.Response
	got, err := cl.Chat.Completions.New(context.Background(), chatParams(), option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if id := raw.Header.Get("X-Llmscope-Call-Id"); id != c.ID {
		t.Errorf("X-Llmscope-Call-Id = %q, recorded id %q", id, c.ID)
	}
	if c.Usage.InputTokens != got.Usage.PromptTokens || c.Usage.OutputTokens != got.Usage.CompletionTokens {
		t.Errorf("usage %+v, client saw %+v", c.Usage, got.Usage)
	}
	h, _ := e.upstream.last()
	for k := range h {
		if strings.HasPrefix(k, "X-Llmscope-") && k != gateway.HeaderVia {
			t.Errorf("header %s reached the upstream", k)
		}
	}
	if h.Get("Authorization") != "Bearer sk-test-key" {
		t.Errorf("client Authorization not passed through: %q", h.Get("Authorization"))
	}
	checkCall(t, "chat", c)
}

func TestAPIKeyReplacesAuthorization(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.APIKey = "sk-server" })
	if _, err := client(e.gw.URL).Chat.Completions.New(context.Background(), chatParams()); err != nil {
		t.Fatal(err)
	}
	e.sink.one(t)
	h, _ := e.upstream.last()
	if h.Get("Authorization") != "Bearer sk-server" {
		t.Errorf("upstream Authorization = %q, want the configured key", h.Get("Authorization"))
	}
}

// streamBytes posts a streaming request to base and returns the raw SSE body.
func streamBytes(t *testing.T, base, body string) []byte {
	t.Helper()
	status, h, b := post(t, base+"/v1/chat/completions", body, nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q: %s", status, h.Get("Content-Type"), b)
	}
	return b
}

func TestStreamChatWithoutIncludeUsage(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 7}, nil)
	body := `{"model":"gpt-4o-mini","stream":true,"temperature":0.2,"messages":[{"role":"user","content":"Tell me a story."}]}`
	direct := streamBytes(t, e.sim.URL, body)
	via := streamBytes(t, e.gw.URL, body)
	if !bytes.Equal(direct, via) {
		t.Errorf("client stream differs from the upstream's:\ndirect: %q\n   via: %q", direct, via)
	}
	if bytes.Contains(via, []byte(`"usage"`)) {
		t.Errorf("injected usage leaked to the client")
	}
	_, sent := e.upstream.last()
	if !bytes.Contains(sent, []byte(`"include_usage":true`)) {
		t.Errorf("upstream request lacks include_usage: %s", sent)
	}
	c := e.sink.one(t)
	if c.Usage.Source != llmscope.UsageReported || c.Usage.OutputTokens == 0 {
		t.Errorf("usage %+v, want reported counts", c.Usage)
	}

	// The real client sees a normal stream and the same text.
	stream := client(e.gw.URL).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story.")},
		Temperature: openai.Float(0.2),
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Usage.TotalTokens != 0 {
		t.Errorf("client received usage it did not ask for: %+v", acc.Usage)
	}
	c = e.sink.one(t)
	if c.Usage.OutputTokens == 0 || c.TTFTMS <= 0 || c.TTFTMS > c.DurationMS {
		t.Errorf("usage %+v ttft %v duration %v", c.Usage, c.TTFTMS, c.DurationMS)
	}
	checkCall(t, "chat_stream", c)
}

func TestStreamChatWithIncludeUsage(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 7}, nil)
	body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me a story."}]}`
	direct := streamBytes(t, e.sim.URL, body)
	via := streamBytes(t, e.gw.URL, body)
	if !bytes.Equal(direct, via) {
		t.Errorf("client stream differs from the upstream's:\ndirect: %q\n   via: %q", direct, via)
	}
	e.sink.one(t)

	stream := client(e.gw.URL).Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story.")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if acc.Usage.CompletionTokens == 0 || c.Usage.OutputTokens != acc.Usage.CompletionTokens || c.Usage.InputTokens != acc.Usage.PromptTokens {
		t.Errorf("recorded usage %+v, client saw %+v", c.Usage, acc.Usage)
	}
	if c.Output != "" || c.Input != "" {
		t.Errorf("text captured with capture off")
	}
}

func TestEmbeddings(t *testing.T) {
	e := newEnv(t, sim.Config{}, nil)
	res, err := client(e.gw.URL).Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second text"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || len(res.Data[0].Embedding) == 0 {
		t.Fatalf("embeddings: %d vectors", len(res.Data))
	}
	c := e.sink.one(t)
	if c.Usage.InputTokens != res.Usage.PromptTokens {
		t.Errorf("input tokens %d, client saw %d", c.Usage.InputTokens, res.Usage.PromptTokens)
	}
	checkCall(t, "embeddings", c)
}

func TestResponsesStreaming(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 3}, nil)
	stream := client(e.gw.URL).Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model:           "gpt-4.1-mini",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Write a haiku.")},
		MaxOutputTokens: openai.Int(200),
		Temperature:     openai.Float(0.5),
	})
	var text strings.Builder
	var usage responses.ResponseUsage
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			usage = ev.Response.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if text.Len() == 0 || usage.OutputTokens == 0 {
		t.Fatalf("empty stream: text %q usage %+v", text.String(), usage)
	}
	if c.Usage.OutputTokens != usage.OutputTokens || c.Usage.InputTokens != usage.InputTokens {
		t.Errorf("recorded usage %+v, client saw %+v", c.Usage, usage)
	}
	checkCall(t, "responses_stream", c)
}

func TestUpstreamErrorsPassThrough(t *testing.T) {
	for _, status := range []int{429, 500} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t, sim.Config{}, nil)
			fault := map[string]string{"X-Sim-Fault": "status=" + itoa(status)}
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
			ds, dh, direct := post(t, e.sim.URL+"/v1/chat/completions", body, fault)
			vs, vh, via := post(t, e.gw.URL+"/v1/chat/completions", body, fault)
			if ds != status || vs != status || !bytes.Equal(direct, via) {
				t.Errorf("status %d/%d, bodies:\ndirect: %s\n   via: %s", ds, vs, direct, via)
			}
			if dh.Get("Retry-After") != vh.Get("Retry-After") {
				t.Errorf("Retry-After %q, want %q", vh.Get("Retry-After"), dh.Get("Retry-After"))
			}
			c := e.sink.one(t)
			if c.Status != status || c.ErrorType != itoa(status) || c.Usage.Source != llmscope.UsageNone {
				t.Errorf("recorded status %d error %q usage %+v", c.Status, c.ErrorType, c.Usage)
			}
			// And the real client surfaces it as an API error.
			_, err := client(e.gw.URL, option.WithHeader("X-Sim-Fault", "status="+itoa(status))).Chat.Completions.New(context.Background(), chatParams())
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
				t.Errorf("client error %v, want status %d", err, status)
			}
			checkCall(t, "error_"+itoa(status), e.sink.one(t))
		})
	}
}

func TestStreamResetMidway(t *testing.T) {
	e := newEnv(t, sim.Config{}, nil)
	stream := client(e.gw.URL, option.WithHeader("X-Sim-Fault", "reset_after=3")).Chat.Completions.NewStreaming(
		context.Background(), chatParams())
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil {
		t.Errorf("client saw a clean end after %d chunks; the break must reach it", n)
	}
	c := e.sink.one(t)
	if c.ErrorType != llmscope.ErrTypeStream || c.Status != 200 {
		t.Errorf("error type %q status %d, want %q 200", c.ErrorType, c.Status, llmscope.ErrTypeStream)
	}
	if c.Usage.Source != llmscope.UsageEstimated || c.Usage.InputTokens == 0 || c.Usage.OutputTokens == 0 {
		t.Errorf("usage %+v, want an estimate of what was seen", c.Usage)
	}
	checkCall(t, "stream_reset", c)
}

func TestClientHangsUpMidStream(t *testing.T) {
	e := newEnv(t, sim.Config{TokensPerSecond: 20}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stream := client(e.gw.URL).Chat.Completions.NewStreaming(ctx, chatParams())
	for i := 0; i < 2 && stream.Next(); i++ {
	}
	cancel()
	_ = stream.Close()
	c := e.sink.one(t)
	if c.ErrorType != llmscope.ErrTypeCancelled {
		t.Errorf("error type %q, want %q", c.ErrorType, llmscope.ErrTypeCancelled)
	}
	select {
	case <-e.upstream.cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the upstream request was not cancelled")
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.MaxBodyBytes = 1024 })
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`
	status, _, body := post(t, e.gw.URL+"/v1/chat/completions", big, nil)
	if status != 413 || !bytes.Contains(body, []byte(`"error":{"message"`)) {
		t.Errorf("oversized body: %d %s", status, body)
	}
	if c := e.sink.one(t); c.Status != 413 || c.ErrorType != "request_too_large" {
		t.Errorf("oversized body recorded as %d %q", c.Status, c.ErrorType)
	}

	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/v1/chat/completions", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET chat: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	e.sink.one(t)

	// Not JSON: forwarded unchanged, the upstream decides, params stay empty.
	status, _, body = post(t, e.gw.URL+"/v1/chat/completions", `{"model": "gpt-4o-mini", oops`, nil)
	_, sent := e.upstream.last()
	if string(sent) != `{"model": "gpt-4o-mini", oops` {
		t.Errorf("malformed body was changed on the way: %q", sent)
	}
	if status != 400 {
		t.Errorf("malformed body: upstream said %d %s", status, body)
	}
	c := e.sink.one(t)
	if c.Status != 400 || c.RequestModel != "" || c.Params.Temperature != nil {
		t.Errorf("malformed body recorded as %+v", c)
	}
}

func TestCapture(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.Capture = true; c.CaptureMaxBytes = 40 })
	res, err := client(e.gw.URL).Chat.Completions.New(context.Background(), chatParams())
	if err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if !strings.HasPrefix(c.Input, `[{`) || len(c.Input) > 40 || len(c.Input) < 30 {
		t.Errorf("captured input %q", c.Input)
	}
	if want := res.Choices[0].Message.Content; !strings.HasPrefix(want, c.Output) || c.Output == "" || len(c.Output) > 40 {
		t.Errorf("captured output %q, answer %q", c.Output, want)
	}
}

func TestModelsAndOther(t *testing.T) {
	e := newEnv(t, sim.Config{}, nil)
	page, err := client(e.gw.URL).Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 {
		t.Error("no models listed")
	}
	if c := e.sink.one(t); c.Operation != llmscope.OpModels || c.Status != 200 {
		t.Errorf("models call recorded as %q %d", c.Operation, c.Status)
	}
	status, _, _ := post(t, e.gw.URL+"/v1/files", `{}`, nil)
	c := e.sink.one(t)
	if c.Operation != llmscope.OpOther || c.Status != status || c.Endpoint != "/v1/files" {
		t.Errorf("other call recorded as %q %d %q (status %d)", c.Operation, c.Status, c.Endpoint, status)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
