package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"llmscope"
	"llmscope/internal/golden"
	"llmscope/openai"
	"llmscope/sim"
	"llmscope/tokenizer"
)

// facts is what a golden file holds of a read answer.
type facts struct {
	ID           string         `json:"id"`
	Model        string         `json:"model"`
	FinishReason string         `json:"finish_reason"`
	HasUsage     bool           `json:"has_usage"`
	Usage        llmscope.Usage `json:"usage"`
	Text         string         `json:"text"`
	ToolCalls    string         `json:"tool_calls,omitempty"`
	ErrorType    string         `json:"error_type,omitempty"`
	ErrorCode    string         `json:"error_code,omitempty"`
	ErrorMessage string         `json:"error_message,omitempty"`
	Chunks       int64          `json:"chunks,omitempty"`
	Finished     bool           `json:"finished,omitempty"`
	Content      int            `json:"content_events,omitempty"`
}

func factsOf(r *openai.Response) facts {
	return facts{ID: r.ID, Model: r.Model, FinishReason: r.FinishReason, HasUsage: r.HasUsage, Usage: r.Usage,
		Text: r.Text(), ToolCalls: r.ToolCalls(), ErrorType: r.ErrorType, ErrorCode: r.ErrorCode,
		ErrorMessage: r.ErrorMessage, Chunks: r.Chunks}
}

// readStream reads an SSE body through NewEvents as the gateway's relay
// does.
func readStream(t testing.TB, body []byte, limit int) facts {
	t.Helper()
	s := NewEvents(limit)
	er := openai.NewEventReader(bytes.NewReader(body))
	content := 0
	for {
		raw, data, err := er.Next()
		if len(raw) > 0 && s.Event(data) == openai.ChunkContent {
			content++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	f := factsOf(s.Result())
	f.Finished, f.Content = s.Finished(), content
	return f
}

func readBody(body []byte, limit int) facts {
	var r openai.Response
	r.SetTextLimit(limit)
	ReadBody(&r, body)
	return factsOf(&r)
}

// TestDocumentedGolden reads answers shaped like the API documentation's
// examples (bodies, arrays, SSE streams, errors) and pins their facts.
func TestDocumentedGolden(t *testing.T) {
	bodies, _ := filepath.Glob("testdata/doc_*.response.json")
	streams, _ := filepath.Glob("testdata/doc_*.sse")
	if len(bodies) < 6 || len(streams) < 3 {
		t.Fatalf("documented examples missing: %v %v", bodies, streams)
	}
	for _, name := range append(bodies, streams...) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var f facts
			if strings.HasSuffix(name, ".sse") {
				f = readStream(t, b, 1<<20)
			} else {
				f = readBody(b, 1<<20)
			}
			golden.JSON(t, strings.TrimSuffix(strings.TrimSuffix(name, ".json"), ".response")+".facts.json", f)
		})
	}
}

// simCases are requests whose sim answers are pinned in testdata/sim_*,
// with the facts read from them.
var simCases = []struct{ name, path, body string }{
	{"text", ":generateContent", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}]}`},
	{"text_stream", ":streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}]}`},
	{"thinking_stream", ":streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"Think."}]}],"generationConfig":{"maxOutputTokens":40,"thinkingConfig":{"thinkingBudget":12,"includeThoughts":true}}}`},
	{"max_tokens", ":generateContent", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"maxOutputTokens":5,"thinkingConfig":{"thinkingBudget":-1}}}`},
	{"function_call", ":generateContent", `{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}]}]}`},
	{"function_call_stream", ":streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}]}]}`},
	{"stream_array", ":streamGenerateContent", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"maxOutputTokens":4}}`},
	{"error_429", ":generateContent", `{"contents":[{"parts":[{"text":"Hi"}]}]}`},
	{"no_usage_stream", ":streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":3}}`},
}

const simModel = "gemini-2.5-flash"

func simAnswer(t testing.TB, srv *httptest.Server, path, body string, header ...string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/v1beta/models/"+simModel+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSimGolden pins the simulator's Gemini answers and the facts read
// from them, and checks them against what the simulator must mean: usage
// equal to its own token counts, text equal across stream and body.
func TestSimGolden(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Config{Seed: 1}))
	t.Cleanup(srv.Close)
	for _, c := range simCases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			switch {
			case strings.HasPrefix(c.name, "error_429"):
				header = []string{sim.FaultHeader, "status=429"}
			case strings.HasPrefix(c.name, "no_usage"):
				header = []string{sim.FaultHeader, "no_usage"}
			}
			b := simAnswer(t, srv, c.path, c.body, header...)
			sse := strings.Contains(c.path, "alt=sse")
			file := filepath.Join("testdata", "sim_"+c.name)
			var f facts
			if sse {
				golden.Equal(t, file+".sse", b)
				f = readStream(t, b, 1<<20)
			} else {
				golden.Equal(t, file+".response.json", b)
				f = readBody(b, 1<<20)
			}
			golden.JSON(t, file+".facts.json", f)
			if c.name == "error_429" {
				if f.ErrorType != "RESOURCE_EXHAUSTED" || f.ErrorCode != "429" || f.ErrorMessage == "" || f.HasUsage {
					t.Errorf("error facts %+v", f)
				}
				return
			}
			if f.Model != simModel || f.ID == "" || f.FinishReason == "" {
				t.Errorf("facts %+v", f)
			}
			if c.name == "no_usage_stream" {
				if f.HasUsage || f.Finished {
					t.Errorf("no_usage: %+v", f)
				}
				return
			}
			u := f.Usage
			if !f.HasUsage || u.Source != llmscope.UsageReported || u.TotalTokens != u.InputTokens+u.OutputTokens ||
				u.ReasoningTokens > u.OutputTokens {
				t.Errorf("usage %+v", u)
			}
			if f.ToolCalls == "" && tokenizer.Count(simModel, f.Text) != int(u.OutputTokens-u.ReasoningTokens) {
				t.Errorf("output %d - reasoning %d, text %q counts %d", u.OutputTokens, u.ReasoningTokens, f.Text, tokenizer.Count(simModel, f.Text))
			}
			if sse && !f.Finished {
				t.Error("a whole stream is not Finished")
			}
		})
	}
}

// TestStreamMatchesBody checks that a streamed answer and the same answer
// in one body give the same facts.
func TestStreamMatchesBody(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Config{Seed: 8}))
	t.Cleanup(srv.Close)
	for _, body := range []string{
		`{"contents":[{"parts":[{"text":"Describe a river."}]}]}`,
		`{"contents":[{"parts":[{"text":"Describe a river."}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":30}}}`,
		`{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[{"functionDeclarations":[{"name":"w","parameters":{"type":"OBJECT","properties":{"c":{"type":"INTEGER"}}}}]}]}`,
	} {
		whole := readBody(simAnswer(t, srv, ":generateContent", body), 4096)
		stream := readStream(t, simAnswer(t, srv, ":streamGenerateContent?alt=sse", body), 4096)
		array := readBody(simAnswer(t, srv, ":streamGenerateContent", body), 4096)
		stream.Chunks, stream.Finished, stream.Content = 0, false, 0
		if stream != whole || array != whole {
			t.Errorf("%s:\nbody   %+v\nstream %+v\narray  %+v", body, whole, stream, array)
		}
	}
}

func TestOperation(t *testing.T) {
	for _, c := range []struct{ method, path, op, allowed string }{
		{"POST", "/v1beta/models/gemini-2.5-flash:generateContent", llmscope.OpChat, ""},
		{"POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", llmscope.OpChat, ""},
		{"POST", "/v1/models/gemini-2.5-flash:generateContent", llmscope.OpChat, ""},
		{"POST", "/v1beta/models%2Fgemini-2.5-flash%3AgenerateContent", llmscope.OpChat, ""},
		{"POST", "/v1beta/tunedModels/my-model-123:generateContent", llmscope.OpChat, ""},
		{"GET", "/v1beta/models/gemini-2.5-flash:generateContent", llmscope.OpChat, "POST, OPTIONS"},
		{"PUT", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", llmscope.OpChat, "POST, OPTIONS"},
		{"OPTIONS", "/v1beta/models/gemini-2.5-flash:generateContent", llmscope.OpOther, ""},
		{"POST", "/v1beta/models/text-embedding-004:embedContent", llmscope.OpEmbeddings, ""},
		{"POST", "/v1beta/models/text-embedding-004:batchEmbedContents", llmscope.OpEmbeddings, ""},
		{"GET", "/v1beta/models/text-embedding-004:batchEmbedContents", llmscope.OpEmbeddings, "POST, OPTIONS"},
		{"POST", "/v1beta/models/gemini-2.5-flash:countTokens", llmscope.OpOther, ""},
		{"GET", "/v1beta/models", llmscope.OpModels, ""},
		{"GET", "/v1beta/models/gemini-2.5-flash", llmscope.OpModels, ""},
		{"POST", "/v1beta/models", llmscope.OpModels, "GET, OPTIONS"},
		{"DELETE", "/v1beta/models/gemini-2.5-flash", llmscope.OpModels, "GET, OPTIONS"},
		{"POST", "/v1beta/files", llmscope.OpOther, ""},
		{"POST", "/v1beta/cachedContents", llmscope.OpOther, ""},
	} {
		op, allowed := Operation(c.method, c.path)
		if op != c.op || allowed != c.allowed {
			t.Errorf("%s %s: %q %q, want %q %q", c.method, c.path, op, allowed, c.op, c.allowed)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, c := range []struct{ name, path string }{
		{"doc_full", "/v1beta/models/gemini-2.5-pro:streamGenerateContent"},
		{"doc_snake", "/v1beta/models/gemini-2.0-flash:generateContent"},
		{"doc_min", "/v1beta/models%2Fgemini-2.5-flash%3AgenerateContent"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.name+".request.json"))
		if err != nil {
			t.Fatal(err)
		}
		r := ParseRequest(c.path, b)
		in, tools := CaptureInput(b, 1<<20)
		golden.JSON(t, filepath.Join("testdata", c.name+".parsed.json"), struct {
			Request openai.Request `json:"request"`
			Input   string         `json:"input"`
			Tools   string         `json:"tools"`
		}{r, in, tools})
		if in != "" && !json.Valid([]byte(in)) {
			t.Errorf("%s: input not JSON: %s", c.name, in)
		}
	}
	r := ParseRequest("/v1beta/models/gemini-2.5-pro:streamGenerateContent", []byte(`{"generationConfig":{"temperature":1e999,"maxOutputTokens":1.5,"seed":"7","topP":0.5,"candidateCount":null}}`))
	if !r.Valid || !r.Stream || !r.IncludeUsage || r.Model != "gemini-2.5-pro" || r.Params.Temperature != nil || r.Params.MaxTokens != nil ||
		r.Params.Seed != nil || r.Params.TopP == nil || *r.Params.TopP != 0.5 || r.Params.N != nil {
		t.Errorf("%+v", r)
	}
	var names []string
	for _, p := range r.Invalid {
		names = append(names, p.Name+"="+p.Raw)
	}
	if got := strings.Join(names, " "); got != `generationConfig.temperature=1e999 generationConfig.maxOutputTokens=1.5 generationConfig.seed="7"` {
		t.Errorf("invalid %s", got)
	}
	for _, body := range []string{``, `[]`, `"x"`, `{`, strings.Repeat("[", openai.MaxDepth+1) + strings.Repeat("]", openai.MaxDepth+1)} {
		if r := ParseRequest("/v1beta/models/m:generateContent", []byte(body)); r.Valid || r.Model != "m" {
			t.Errorf("%q: %+v", body, r)
		}
	}
}

func TestCaptureInput(t *testing.T) {
	body := []byte(`{"systemInstruction":{"parts":[{"text":"Be "},{"text":"brief."}]},"contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"text":"Let me think.","thought":true},{"text":"Hello"}]}],"tools":[{"googleSearch":{}}]}`)
	in, tools := CaptureInput(body, 1000)
	if want := `[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]`; in != want {
		t.Errorf("input %s, want %s", in, want)
	}
	if tools != `[{"googleSearch":{}}]` {
		t.Errorf("tools %s", tools)
	}
	in, tools = CaptureInput(body, 20)
	if len(in) > 20 || tools != "" {
		t.Errorf("cut: %q %q", in, tools)
	}
	// countTokens wraps a generateContentRequest.
	in, _ = CaptureInput([]byte(`{"generateContentRequest":{"model":"models/x","contents":[{"parts":[{"text":"Hi"}]}]}}`), 1000)
	if in != `[{"role":"user","content":"Hi"}]` {
		t.Errorf("countTokens input %s", in)
	}
	if in, tools := CaptureInput([]byte(`not json`), 1000); in != "" || tools != "" {
		t.Errorf("not JSON: %q %q", in, tools)
	}
}

func TestReadBodyLimits(t *testing.T) {
	b, err := os.ReadFile("testdata/doc_function_call.response.json")
	if err != nil {
		t.Fatal(err)
	}
	if f := readBody(b, 0); f.ToolCalls != "" || f.Text != "" || !f.HasUsage {
		t.Errorf("limit 0: %+v", f)
	}
	if f := readBody(b, 60); f.ToolCalls != "" {
		t.Errorf("tool calls beyond the limit kept: %s", f.ToolCalls)
	}
	f := readBody(b, 1000)
	var calls []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal([]byte(f.ToolCalls), &calls); err != nil || len(calls) != 1 || calls[0].ID != "call_0" ||
		calls[0].Function.Name != "schedule_meeting" || !json.Valid([]byte(calls[0].Function.Arguments)) {
		t.Errorf("tool calls %s: %v", f.ToolCalls, err)
	}
	long := `{"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("é", 100) + `"}]}}]}`
	if f := readBody([]byte(long), 51); len(f.Text) > 51 || !strings.HasPrefix(strings.Repeat("é", 100), f.Text) {
		t.Errorf("text cut %q", f.Text)
	}
	// Usage rule: output is candidates plus thoughts, input counts the
	// tool-use prompt, the reported total is kept.
	f = readBody([]byte(`{"usageMetadata":{"promptTokenCount":10,"toolUsePromptTokenCount":5,"candidatesTokenCount":"7","thoughtsTokenCount":3,"cachedContentTokenCount":40,"totalTokenCount":25}}`), 10)
	if u := f.Usage; u.InputTokens != 15 || u.OutputTokens != 10 || u.ReasoningTokens != 3 || u.TotalTokens != 25 || u.CachedInputTokens != 15 {
		t.Errorf("usage %+v", u)
	}
}

func TestStreamFinished(t *testing.T) {
	chunk := func(s string) []byte { return []byte(s) }
	s := NewEvents(100)
	steps := []struct {
		data     string
		kind     openai.Chunk
		finished bool
	}{
		{`{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}`, openai.ChunkContent, false},
		{`{"candidates":[{"content":{"parts":[{"text":"b","thought":true}]}}]}`, openai.ChunkContent, false},
		{`{"candidates":[{"content":{"parts":[{"text":"c"}]},"finishReason":"STOP"}]}`, openai.ChunkContent, false},
		{`{"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}`, openai.ChunkOther, true},
		{`not json`, openai.ChunkOther, true},
	}
	for i, st := range steps {
		if k := s.Event(chunk(st.data)); k != st.kind || s.Finished() != st.finished {
			t.Errorf("step %d: %v finished %v", i, k, s.Finished())
		}
	}
	if r := s.Result(); r.Text() != "ac" || r.FinishReason != "STOP" || r.Chunks != 4 || r.Usage.TotalTokens != 3 {
		t.Errorf("%+v %q", r, r.Text())
	}
	// Candidates other than the first are not read.
	s = NewEvents(100)
	s.Event(chunk(`{"candidates":[{"index":1,"content":{"parts":[{"text":"x"}]},"finishReason":"SAFETY"},{"index":0,"content":{"parts":[{"text":"y"}]}}]}`))
	if r := s.Result(); r.Text() != "y" || r.FinishReason != "" {
		t.Errorf("second candidate read: %q %q", r.Text(), r.FinishReason)
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		status         int
		typ, code, msg string
		statusName     string
	}{
		{429, "budget_exceeded", "", "budget of key k exceeded", "RESOURCE_EXHAUSTED"},
		{502, "upstream_error", "bad_gateway", "upstream failed", "INTERNAL"},
		{503, "", "", "overloaded", "UNAVAILABLE"},
		{400, "invalid_request_error", "", `bad "json"`, "INVALID_ARGUMENT"},
	} {
		w := httptest.NewRecorder()
		WriteError(w, c.status, c.typ, c.code, c.msg)
		f := readBody(w.Body.Bytes(), 0)
		if w.Code != c.status || f.ErrorType != c.statusName || f.ErrorCode != itoa(c.status) || f.ErrorMessage != c.msg {
			t.Errorf("%d: %d %+v %s", c.status, w.Code, f, w.Body)
		}
		reason := c.code
		if reason == "" {
			reason = c.typ
		}
		if has := strings.Contains(w.Body.String(), `"reason":"`+reason+`"`); has != (reason != "") {
			t.Errorf("%d: reason %q in %s", c.status, reason, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) || w.Header().Get("Content-Length") != itoa(w.Body.Len()) {
			t.Errorf("%d: body %s", c.status, w.Body)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
