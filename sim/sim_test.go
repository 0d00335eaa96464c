package sim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope/tokenizer"
)

// newSim starts a Server for cfg and an openai-go client pointed at it.
func newSim(t testing.TB, cfg Config) (*httptest.Server, openai.Client) {
	t.Helper()
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	return srv, newClient(srv)
}

func newClient(srv *httptest.Server, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(srv.URL + "/v1/"),
		option.WithAPIKey("test"),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30 * time.Second),
	}, opts...)...)
}

// do sends a raw request and returns the response and its whole body.
func do(t testing.TB, srv *httptest.Server, method, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return res, b
}

var chatMsgs = []openai.ChatCompletionMessageParamUnion{
	openai.SystemMessage("You are a terse assistant."),
	openai.UserMessage("Tell me about rivers."),
}

var chatTokMsgs = []tokenizer.Message{
	{Role: "system", Content: "You are a terse assistant."},
	{Role: "user", Content: "Tell me about rivers."},
}

func TestChatNonStream(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 7})
	const model = "gpt-4o-mini"
	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: model, Messages: chatMsgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.ID, "chatcmpl-") || res.Model != model || res.SystemFingerprint != Fingerprint {
		t.Errorf("id %q model %q fingerprint %q", res.ID, res.Model, res.SystemFingerprint)
	}
	if res.Object != "chat.completion" || res.Created < epoch || len(res.Choices) != 1 {
		t.Fatalf("object %q created %d choices %d", res.Object, res.Created, len(res.Choices))
	}
	c := res.Choices[0]
	if c.FinishReason != "stop" || c.Message.Role != "assistant" {
		t.Errorf("finish %q role %q", c.FinishReason, c.Message.Role)
	}
	if n := len(strings.Fields(c.Message.Content)); n < minWords || n > maxWords {
		t.Errorf("answer has %d words: %q", n, c.Message.Content)
	}
	u := res.Usage
	if want := int64(tokenizer.CountChat(model, chatTokMsgs)); u.PromptTokens != want {
		t.Errorf("prompt_tokens %d, tokenizer says %d", u.PromptTokens, want)
	}
	if want := int64(tokenizer.Count(model, c.Message.Content)); u.CompletionTokens != want {
		t.Errorf("completion_tokens %d, tokenizer says %d", u.CompletionTokens, want)
	}
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("total_tokens %d != %d+%d", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
	}
	if !u.PromptTokensDetails.JSON.CachedTokens.Valid() || !u.CompletionTokensDetails.JSON.ReasoningTokens.Valid() {
		t.Error("usage details missing")
	}
	if u.PromptTokensDetails.CachedTokens != 0 || u.CompletionTokensDetails.ReasoningTokens != 0 {
		t.Errorf("details %+v %+v", u.PromptTokensDetails, u.CompletionTokensDetails)
	}
}

func TestChatArrayContent(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"model":"gpt-4o","messages":[{"role":"user","name":"ann","content":[{"type":"text","text":"Hello"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":" there"}]}]}`
	res, b := do(t, srv, "POST", "/v1/chat/completions", body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	var out struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	want := tokenizer.CountChat("gpt-4o", []tokenizer.Message{{Role: "user", Name: "ann", Content: "Hello there"}})
	if out.Usage.PromptTokens != want {
		t.Errorf("prompt_tokens %d, want %d", out.Usage.PromptTokens, want)
	}
}

// streamChat collects a chat stream through openai-go.
func streamChat(t *testing.T, client openai.Client, params openai.ChatCompletionNewParams) (text string, chunks []openai.ChatCompletionChunk, err error) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var b strings.Builder
	for stream.Next() {
		ch := stream.Current()
		if !acc.AddChunk(ch) {
			t.Errorf("accumulator refused chunk %s", ch.RawJSON())
		}
		chunks = append(chunks, ch)
		if len(ch.Choices) > 0 {
			b.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	if stream.Err() == nil && len(acc.Choices) > 0 && acc.Choices[0].Message.Content != b.String() {
		t.Errorf("accumulator %q != deltas %q", acc.Choices[0].Message.Content, b.String())
	}
	return b.String(), chunks, stream.Err()
}

func TestChatStream(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 3})
	const model = "gpt-4.1"
	params := openai.ChatCompletionNewParams{Model: model, Messages: chatMsgs}
	full, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	want := full.Choices[0].Message.Content

	text, chunks, err := streamChat(t, client, params)
	if err != nil {
		t.Fatal(err)
	}
	if text != want {
		t.Errorf("stream text %q\nnon-stream  %q", text, want)
	}
	first, last := chunks[0], chunks[len(chunks)-1]
	if first.Choices[0].Delta.Role != "assistant" || first.Choices[0].Delta.Content != "" {
		t.Errorf("first chunk %s", first.RawJSON())
	}
	if last.Choices[0].FinishReason != "stop" || !strings.Contains(last.RawJSON(), `"delta":{}`) {
		t.Errorf("last chunk %s", last.RawJSON())
	}
	for _, ch := range chunks {
		if strings.Contains(ch.RawJSON(), `"usage"`) {
			t.Fatalf("usage without include_usage: %s", ch.RawJSON())
		}
		if ch.ID != full.ID || ch.Object != "chat.completion.chunk" || ch.SystemFingerprint != Fingerprint || ch.Model != model {
			t.Errorf("chunk %s", ch.RawJSON())
		}
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	text, chunks, err = streamChat(t, client, params)
	if err != nil {
		t.Fatal(err)
	}
	if text != want {
		t.Errorf("stream text with usage %q", text)
	}
	for _, ch := range chunks[:len(chunks)-1] {
		if !strings.Contains(ch.RawJSON(), `"usage":null`) || len(ch.Choices) != 1 {
			t.Errorf("chunk before usage: %s", ch.RawJSON())
		}
	}
	u := chunks[len(chunks)-1]
	if len(u.Choices) != 0 || u.Usage.TotalTokens == 0 {
		t.Fatalf("usage chunk %s", u.RawJSON())
	}
	if u.Usage.PromptTokens != full.Usage.PromptTokens || u.Usage.CompletionTokens != full.Usage.CompletionTokens {
		t.Errorf("stream usage %+v, non-stream %+v", u.Usage, full.Usage)
	}
}

func TestChatRawStreamShape(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	res, b := do(t, srv, "POST", "/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	events := strings.Split(string(b), "\n\n")
	if events[len(events)-1] != "" || events[len(events)-2] != "data: [DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", b[max(0, len(b)-80):])
	}
	for _, e := range events[:len(events)-2] {
		data, ok := strings.CutPrefix(e, "data: ")
		if !ok || !json.Valid([]byte(data)) {
			t.Fatalf("bad event %q", e)
		}
	}
	wantFirst := `data: {"id":"chatcmpl-`
	if !strings.HasPrefix(events[0], wantFirst) || !strings.Contains(events[0],
		`"object":"chat.completion.chunk","created":`) || !strings.HasSuffix(events[0],
		`"model":"gpt-4o","service_tier":"default","system_fingerprint":"llmscope-sim","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`) {
		t.Errorf("first event %s", events[0])
	}
	if !strings.Contains(events[len(events)-3], `"choices":[],"usage":{"prompt_tokens":`) {
		t.Errorf("usage event %s", events[len(events)-3])
	}
}

func TestMaxTokens(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	for _, limit := range []int64{1, 5, 12} {
		res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "gpt-4o", Messages: chatMsgs, MaxTokens: openai.Int(limit),
		})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Choices[0]
		if c.FinishReason != "length" || res.Usage.CompletionTokens > limit || res.Usage.CompletionTokens == 0 {
			t.Errorf("limit %d: finish %q completion_tokens %d", limit, c.FinishReason, res.Usage.CompletionTokens)
		}
		if got := int64(tokenizer.Count("gpt-4o", c.Message.Content)); got != res.Usage.CompletionTokens {
			t.Errorf("limit %d: tokenizer %d, usage %d", limit, got, res.Usage.CompletionTokens)
		}
	}
	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: chatMsgs, MaxCompletionTokens: openai.Int(1000),
	})
	if err != nil || res.Choices[0].FinishReason != "stop" {
		t.Fatalf("large limit: %v %+v", err, res)
	}
	text, chunks, err := streamChat(t, client, openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: chatMsgs, MaxCompletionTokens: openai.Int(4),
	})
	if err != nil || chunks[len(chunks)-1].Choices[0].FinishReason != "length" || tokenizer.Count("gpt-4o", text) > 4 {
		t.Errorf("stream with limit: %v %q", err, text)
	}
}

func TestReasoningTokens(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	for _, model := range []string{"gpt-5-mini", "o3-mini", "o4-mini", "o1"} {
		res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: model, Messages: chatMsgs,
		})
		if err != nil {
			t.Fatal(err)
		}
		visible := int64(tokenizer.Count(model, res.Choices[0].Message.Content))
		r := res.Usage.CompletionTokensDetails.ReasoningTokens
		if r != 2*visible || res.Usage.CompletionTokens != visible+r {
			t.Errorf("%s: visible %d reasoning %d completion %d", model, visible, r, res.Usage.CompletionTokens)
		}
	}
	// The limit covers reasoning and visible tokens together.
	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-5", Messages: chatMsgs, MaxCompletionTokens: openai.Int(30),
	})
	if err != nil {
		t.Fatal(err)
	}
	visible := int64(tokenizer.Count("gpt-5", res.Choices[0].Message.Content))
	if res.Usage.CompletionTokens > 30 || res.Choices[0].FinishReason != "length" || visible == 0 ||
		res.Usage.CompletionTokensDetails.ReasoningTokens != 2*visible {
		t.Errorf("limited reasoning: %+v finish %q", res.Usage, res.Choices[0].FinishReason)
	}
	_, chunks, err := streamChat(t, client, openai.ChatCompletionNewParams{
		Model: "gpt-5", Messages: chatMsgs,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	if err != nil || chunks[len(chunks)-1].Usage.CompletionTokensDetails.ReasoningTokens == 0 {
		t.Errorf("stream reasoning: %v", err)
	}
}

func TestCachedTokens(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 150)
	params := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{
		openai.UserMessage(long),
	}}
	first, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	pt := first.Usage.PromptTokens
	if pt < 1024 || first.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Fatalf("first: prompt %d cached %d", pt, first.Usage.PromptTokensDetails.CachedTokens)
	}
	second, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c := second.Usage.PromptTokensDetails.CachedTokens; c != pt/128*128 || c%128 != 0 || c > pt {
		t.Errorf("second: prompt %d cached %d", pt, c)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	_, chunks, err := streamChat(t, client, params)
	if err != nil || chunks[len(chunks)-1].Usage.PromptTokensDetails.CachedTokens != pt/128*128 {
		t.Errorf("stream cached: %v", err)
	}
	// A short prompt is never cached.
	short := openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}
	for range 2 {
		res, err := client.Chat.Completions.New(context.Background(), short)
		if err != nil || res.Usage.PromptTokensDetails.CachedTokens != 0 {
			t.Errorf("short prompt cached: %v %+v", err, res.Usage)
		}
	}
}

func TestPromptCacheEvicts(t *testing.T) {
	c := newLRU(2)
	for _, k := range []uint64{1, 2, 3} {
		if c.seen(k) {
			t.Fatalf("%d seen before insertion", k)
		}
	}
	if c.seen(1) {
		t.Error("1 should have been evicted")
	}
	if !c.seen(3) || c.order.Len() != 2 || len(c.index) != 2 {
		t.Error("cache bookkeeping")
	}
}

func TestCompletions(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{Seed: 11})
	const model = "gpt-3.5-turbo-instruct"
	params := openai.CompletionNewParams{
		Model:  model,
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
	}
	res, err := client.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Choices[0].Text
	if !strings.HasPrefix(res.ID, "cmpl-") || res.Object != "text_completion" || res.Model != model || res.SystemFingerprint != Fingerprint {
		t.Errorf("completion %s", res.RawJSON())
	}
	if res.Usage.PromptTokens != int64(tokenizer.Count(model, "Once upon a time")) ||
		res.Usage.CompletionTokens != int64(tokenizer.Count(model, text)) {
		t.Errorf("usage %+v for %q", res.Usage, text)
	}
	stream := client.Completions.NewStreaming(context.Background(), params)
	var b strings.Builder
	var lastFinish string
	for stream.Next() {
		ch := stream.Current()
		if strings.Contains(ch.RawJSON(), "usage") {
			t.Errorf("usage without include_usage: %s", ch.RawJSON())
		}
		b.WriteString(ch.Choices[0].Text)
		lastFinish = string(ch.Choices[0].FinishReason)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if b.String() != text || lastFinish != "stop" {
		t.Errorf("stream %q finish %q, want %q", b.String(), lastFinish, text)
	}

	params.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{1, 2, 3, 4}}
	params.MaxTokens = openai.Int(3)
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream = client.Completions.NewStreaming(context.Background(), params)
	var usage openai.CompletionUsage
	for stream.Next() {
		if ch := stream.Current(); len(ch.Choices) == 0 {
			usage = ch.Usage
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if usage.PromptTokens != 4 || usage.CompletionTokens > 3 || usage.CompletionTokens == 0 {
		t.Errorf("token prompt usage %+v", usage)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	_, client := newSim(t, Config{})
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.OwnedBy != "llmscope-sim" || m.Object != "model" || m.Created == 0 {
			t.Errorf("model %s", m.RawJSON())
		}
	}
	if strings.Join(ids, ",") != strings.Join(models, ",") {
		t.Errorf("models %v", ids)
	}
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	cases := []struct {
		method, path, body string
		status             int
		code, contains     string
	}{
		{"GET", "/v1/nope", "", 404, "not_found", "unknown url"},
		{"POST", "/v2/chat/completions", "{}", 404, "not_found", ""},
		{"GET", "/v1/chat/completions", "", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/models", "", 405, "method_not_allowed", "GET"},
		{"POST", "/v1/chat/completions", "{not json", 400, "", "could not parse"},
		{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "", "model"},
		{"POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 400, "", "messages"},
		{"POST", "/v1/chat/completions", `{"model":"gpt-4o","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, 400, "integer_below_min_value", "max_tokens"},
		{"POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":5}]}`, 400, "", "content"},
		{"POST", "/v1/completions", `{"model":"gpt-4o"}`, 400, "", "prompt"},
		{"POST", "/v1/embeddings", `{"model":"text-embedding-3-small"}`, 400, "", "input"},
		{"POST", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x","encoding_format":"hex"}`, 400, "", "encoding_format"},
		{"POST", "/v1/embeddings", `{"input":"x"}`, 400, "", "model"},
		{"POST", "/v1/responses", `{"input":"x"}`, 400, "", "model"},
		{"POST", "/v1/responses", `{"model":"gpt-4o","input":7}`, 400, "", "input"},
	}
	for _, c := range cases {
		res, b := do(t, srv, c.method, c.path, c.body)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s %s: body %s: %v", c.method, c.path, b, err)
			continue
		}
		code := ""
		if e.Error.Code != nil {
			code = *e.Error.Code
		}
		if res.StatusCode != c.status || e.Error.Type != "invalid_request_error" || code != c.code ||
			!strings.Contains(e.Error.Message, c.contains) {
			t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, res.StatusCode, b)
		}
	}
	res, b := do(t, srv, "GET", "/v1/nope", "")
	if want := `{"error":{"message":"unknown url GET /v1/nope","type":"invalid_request_error","param":null,"code":"not_found"}}` + "\n"; string(b) != want {
		t.Errorf("404 body %s", b)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("404 content type %q", res.Header.Get("Content-Type"))
	}
}

func TestPieceTokensAddUp(t *testing.T) {
	t.Parallel()
	for _, model := range []string{"gpt-4o", "gpt-3.5-turbo"} {
		for h := range uint64(300) {
			p := makePlan(mix(h), model, 0)
			if got := tokenizer.Count(model, p.text()); got != p.tokens {
				t.Fatalf("%s hash %d: pieces sum to %d tokens, tokenizer counts %d in %q", model, h, p.tokens, got, p.text())
			}
		}
	}
}

func TestJSONString(t *testing.T) {
	for _, s := range []string{"plain", "q\"b\\s", "ctl\x01\n\r\t", "uni é 日本 \u2028\u2029", "bad \xff utf8", "<html>&"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q → %s → %q, want %q", s, got, back, wantBack)
		}
	}
}
