package sim

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"llmscope/tokenizer"
)

type geminiResponse struct {
	Candidates []struct {
		Content struct {
			Role  string `json:"role"`
			Parts []struct {
				Text         string `json:"text"`
				Thought      bool   `json:"thought"`
				FunctionCall *struct {
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount        int `json:"promptTokenCount"`
		CandidatesTokenCount    int `json:"candidatesTokenCount"`
		TotalTokenCount         int `json:"totalTokenCount"`
		CachedContentTokenCount int `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
}

func decodeGemini(t testing.TB, b string) geminiResponse {
	t.Helper()
	var r geminiResponse
	if err := json.Unmarshal([]byte(b), &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if len(r.Candidates) != 1 {
		t.Fatalf("candidates: %s", b)
	}
	return r
}

// text returns the answer's text and thought text.
func (r *geminiResponse) text() (text, thought string) {
	for _, p := range r.Candidates[0].Content.Parts {
		if p.Thought {
			thought += p.Text
		} else {
			text += p.Text
		}
	}
	return text, thought
}

const geminiPath = "/v1beta/models/gemini-2.5-flash"

func TestGeminiGenerate(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{Seed: 5})
	const model = "gemini-2.5-flash"
	body := `{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"text":"Hello."}]},{"role":"user","parts":[{"text":"Rivers?"}]}]}`
	res, b := do(t, srv, "POST", geminiPath+":generateContent?key=AIza-ignored", body, "x-goog-api-key", "also-ignored")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	r := decodeGemini(t, string(b))
	text, _ := r.text()
	u := r.UsageMetadata
	if r.ModelVersion != model || len(r.ResponseID) != 22 || r.Candidates[0].FinishReason != "STOP" || r.Candidates[0].Content.Role != "model" || u == nil {
		t.Fatalf("%s", b)
	}
	want := tokenizer.CountChat(model, []tokenizer.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "Rivers?"}})
	if u.PromptTokenCount != want {
		t.Errorf("promptTokenCount %d, want %d", u.PromptTokenCount, want)
	}
	if n := tokenizer.Count(model, text); u.CandidatesTokenCount != n || u.TotalTokenCount != u.PromptTokenCount+n || u.ThoughtsTokenCount != 0 {
		t.Errorf("usage %+v, text counts %d", u, n)
	}
	_, c := do(t, srv, "POST", geminiPath+":countTokens", body)
	if got := num(decodeJSON(t, string(c)), "totalTokens"); got != u.PromptTokenCount {
		t.Errorf("countTokens %d, promptTokenCount %d", got, u.PromptTokenCount)
	}
	_, c = do(t, srv, "POST", geminiPath+":countTokens", `{"generateContentRequest":`+strings.Replace(body, "{", `{"model":"models/gemini-2.5-flash",`, 1)+`}`)
	if got := num(decodeJSON(t, string(c)), "totalTokens"); got != u.PromptTokenCount {
		t.Errorf("countTokens of a generateContentRequest %d, promptTokenCount %d: %s", got, u.PromptTokenCount, c)
	}
	// The model comes from the path, escaped or not.
	_, b = do(t, srv, "POST", "/v1beta/models/gemini-2.0-flash-lite%3AgenerateContent", body)
	if r := decodeGemini(t, string(b)); r.ModelVersion != "gemini-2.0-flash-lite" {
		t.Errorf("escaped path: %s", b)
	}
}

// TestGeminiStream checks that a stream's chunks add up to the
// non-streamed answer, each with cumulative usage, the last alone carrying
// finishReason, and that the array form holds the same chunks.
func TestGeminiStream(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, body string }{
		{"text", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}]}`},
		{"thinking", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":30,"includeThoughts":true}}}`},
		{"hidden thinking", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":-1}}}`},
		{"max tokens", `{"contents":[{"parts":[{"text":"Describe a bridge."}]}],"generationConfig":{"maxOutputTokens":7}}`},
		{"json", `{"contents":[{"parts":[{"text":"A person."}]}],"generationConfig":{"responseMimeType":"application/json","responseSchema":{"type":"OBJECT","properties":{"name":{"type":"STRING"},"age":{"type":"INTEGER"}},"required":["name","age"]}}}`},
		{"function call", `{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[` + geminiTool + `]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := newSim(t, Config{})
			_, b := do(t, srv, "POST", geminiPath+":generateContent", c.body)
			whole := decodeGemini(t, string(b))
			wantText, wantThought := whole.text()
			res, sb := do(t, srv, "POST", geminiPath+":streamGenerateContent?alt=sse", c.body)
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("%d %s", res.StatusCode, sb)
			}
			events := parseSSE(t, sb)
			var text, thought, call strings.Builder
			prev := 0
			for i, e := range events {
				if e.name != "" {
					t.Errorf("event name %q: Gemini sends data-only events", e.name)
				}
				r := decodeGemini(t, e.data)
				t1, t2 := r.text()
				text.WriteString(t1)
				thought.WriteString(t2)
				for _, p := range r.Candidates[0].Content.Parts {
					if p.FunctionCall != nil {
						call.Write(p.FunctionCall.Args)
					}
				}
				last := i == len(events)-1
				if (r.Candidates[0].FinishReason != "") != last {
					t.Errorf("chunk %d of %d: finishReason %q", i, len(events), r.Candidates[0].FinishReason)
				}
				u := r.UsageMetadata
				if u == nil || u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount+u.ThoughtsTokenCount || u.TotalTokenCount < prev {
					t.Errorf("chunk %d usage %+v (previous total %d)", i, u, prev)
				}
				prev = u.TotalTokenCount
				if last {
					if *u != *whole.UsageMetadata || r.Candidates[0].FinishReason != whole.Candidates[0].FinishReason {
						t.Errorf("last chunk usage %+v %s, non-stream %+v %s", u, r.Candidates[0].FinishReason, whole.UsageMetadata, whole.Candidates[0].FinishReason)
					}
				}
				if r.ResponseID != whole.ResponseID || r.ModelVersion != whole.ModelVersion {
					t.Errorf("chunk %d ids %s %s", i, r.ResponseID, r.ModelVersion)
				}
			}
			if text.String() != wantText || thought.String() != wantThought {
				t.Errorf("stream text %q / %q, non-stream %q / %q", text.String(), thought.String(), wantText, wantThought)
			}
			if fc := whole.Candidates[0].Content.Parts[0].FunctionCall; fc != nil && call.String() != string(fc.Args) {
				t.Errorf("stream call %s, non-stream %s", call.String(), fc.Args)
			}
			// The default (not SSE) form: one JSON array of the same chunks.
			_, ab := do(t, srv, "POST", geminiPath+":streamGenerateContent", c.body)
			var arr []json.RawMessage
			if err := json.Unmarshal(ab, &arr); err != nil || len(arr) != len(events) {
				t.Fatalf("array form: %v, %d chunks, %d events", err, len(arr), len(events))
			}
			for i := range arr {
				if string(arr[i]) != events[i].data {
					t.Errorf("array chunk %d %s, event %s", i, arr[i], events[i].data)
				}
			}
		})
	}
}

func TestGeminiThinkingAndLimits(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	const model = "gemini-2.5-pro"
	path := "/v1beta/models/" + model + ":generateContent"
	_, b := do(t, srv, "POST", path, `{"contents":[{"parts":[{"text":"Think."}]}],"generationConfig":{"maxOutputTokens":40,"thinkingConfig":{"thinkingBudget":12,"includeThoughts":true}}}`)
	r := decodeGemini(t, string(b))
	text, thought := r.text()
	u := r.UsageMetadata
	if thought == "" || u.ThoughtsTokenCount != tokenizer.Count(model, thought) || u.ThoughtsTokenCount > 12 {
		t.Errorf("thoughts %q, usage %+v", thought, u)
	}
	if u.CandidatesTokenCount != tokenizer.Count(model, text) || u.CandidatesTokenCount+u.ThoughtsTokenCount > 40 {
		t.Errorf("candidates %q, usage %+v", text, u)
	}
	// Hidden thinking still counts; budget 0 turns it off.
	_, b = do(t, srv, "POST", path, `{"contents":[{"parts":[{"text":"Think."}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":-1}}}`)
	if r := decodeGemini(t, string(b)); r.UsageMetadata.ThoughtsTokenCount == 0 || strings.Contains(string(b), `"thought":true`) {
		t.Errorf("hidden thinking: %s", b)
	}
	_, b = do(t, srv, "POST", path, `{"contents":[{"parts":[{"text":"Think."}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":0}}}`)
	if strings.Contains(string(b), "thoughtsTokenCount") {
		t.Errorf("thinkingBudget 0: %s", b)
	}
	// maxOutputTokens cuts the answer: MAX_TOKENS.
	_, b = do(t, srv, "POST", path, `{"contents":[{"parts":[{"text":"Think."}]}],"generationConfig":{"maxOutputTokens":3}}`)
	if r := decodeGemini(t, string(b)); r.Candidates[0].FinishReason != "MAX_TOKENS" || r.UsageMetadata.CandidatesTokenCount > 3 {
		t.Errorf("maxOutputTokens 3: %s", b)
	}
}

func TestGeminiFunctionCall(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	_, b := do(t, srv, "POST", geminiPath+":generateContent", `{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[`+geminiTool+`]}`)
	r := decodeGemini(t, string(b))
	fc := r.Candidates[0].Content.Parts[0].FunctionCall
	var args struct {
		City string `json:"city"`
		Days *int   `json:"days"`
	}
	if fc == nil || fc.Name != "get_weather" || json.Unmarshal(fc.Args, &args) != nil || args.Days == nil || *args.Days < 1 || *args.Days > 3 ||
		r.Candidates[0].FinishReason != "STOP" {
		t.Fatalf("%s", b)
	}
	// After the function's response the model answers with text; mode NONE never calls.
	for _, body := range []string{
		`{"contents":[{"parts":[{"text":"Weather?"}]},{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":` + string(fc.Args) + `}}]},` +
			`{"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"temp":12}}}]}],"tools":[` + geminiTool + `]}`,
		`{"contents":[{"parts":[{"text":"Weather?"}]}],"tools":[` + geminiTool + `],"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}}`,
	} {
		_, b = do(t, srv, "POST", geminiPath+":generateContent", body)
		if r := decodeGemini(t, string(b)); r.Candidates[0].Content.Parts[0].FunctionCall != nil {
			t.Errorf("called again: %s", b)
		}
	}
}

func TestGeminiCachedContent(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	long := strings.Repeat("The river runs under the old stone bridge. ", 150)
	body := `{"contents":[{"parts":[{"text":"` + long + `"}]}]}`
	_, b := do(t, srv, "POST", geminiPath+":generateContent", body)
	first := decodeGemini(t, string(b))
	if first.UsageMetadata.CachedContentTokenCount != 0 || strings.Contains(string(b), "cachedContentTokenCount") {
		t.Errorf("first: %s", b)
	}
	_, b = do(t, srv, "POST", geminiPath+":generateContent", body)
	u := decodeGemini(t, string(b)).UsageMetadata
	if u.CachedContentTokenCount == 0 || u.CachedContentTokenCount > u.PromptTokenCount || u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount {
		t.Errorf("again: %+v", u)
	}
}

func TestGeminiErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"contents":[{"parts":[{"text":"Hi"}]}]}`
	for _, c := range []struct {
		status int
		name   string
	}{{429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"}, {503, "UNAVAILABLE"}, {400, "INVALID_ARGUMENT"}, {403, "PERMISSION_DENIED"}, {404, "NOT_FOUND"}, {504, "DEADLINE_EXCEEDED"}} {
		for _, p := range []string{":generateContent", ":streamGenerateContent?alt=sse", ":countTokens"} {
			res, b := do(t, srv, "POST", geminiPath+p, body, FaultHeader, "status="+itoa(c.status))
			m := decodeJSON(t, string(b))
			if res.StatusCode != c.status || num(m, "error.code") != c.status || m["error"].(map[string]any)["status"] != c.name ||
				m["error"].(map[string]any)["message"] == "" {
				t.Errorf("%s status=%d: %d %s", p, c.status, res.StatusCode, b)
			}
		}
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", geminiPath + ":generateContent", `{"contents":[]}`, "contents is not specified"},
		{"POST", geminiPath + ":generateContent", `{"contents":[{"role":"bot","parts":[{"text":"x"}]}]}`, "valid role"},
		{"POST", geminiPath + ":generateContent", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"temperature":3}}`, "temperature"},
		{"POST", geminiPath + ":generateContent", `{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":0}}`, "max_output_tokens"},
		{"POST", geminiPath + ":generateContent", `[`, "could not parse"},
		{"POST", geminiPath + ":embedSomething", body, "unknown url"},
		{"POST", "/v1beta/files", body, "unknown url"},
		{"GET", geminiPath + ":generateContent", "", "not allowed"},
	} {
		res, b := do(t, srv, c.method, c.path, c.body)
		m := decodeJSON(t, string(b))
		e, _ := m["error"].(map[string]any)
		if res.StatusCode < 400 || num(m, "error.code") != res.StatusCode || e["status"] == "" || !strings.Contains(e["message"].(string), c.want) {
			t.Errorf("%s %s %s: %d %s", c.method, c.path, c.body, res.StatusCode, b)
		}
	}
}

func TestGeminiFaults(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"contents":[{"parts":[{"text":"Describe a bridge."}]}]}`
	_, out, err := doErr(t, srv, "POST", geminiPath+":streamGenerateContent?alt=sse", body, FaultHeader, "reset_after=3")
	if err == nil || len(parseSSE(t, out[:strings.LastIndex(string(out), "\n\n")+2])) != 3 {
		t.Errorf("reset_after=3: err %v, %s", err, out)
	}
	for _, p := range []string{":generateContent", ":streamGenerateContent"} {
		if _, _, err := doErr(t, srv, "POST", geminiPath+p, body, FaultHeader, "reset_after=0"); err == nil {
			t.Errorf("%s reset_after=0 answered", p)
		}
	}
	for _, p := range []string{":generateContent", ":streamGenerateContent?alt=sse", ":streamGenerateContent"} {
		res, out := do(t, srv, "POST", geminiPath+p, body, FaultHeader, "no_usage,delay=10ms")
		if res.StatusCode != 200 || strings.Contains(string(out), "usageMetadata") || !strings.Contains(string(out), `"finishReason":"STOP"`) {
			t.Errorf("%s no_usage: %d %s", p, res.StatusCode, out)
		}
	}
}

func TestGeminiEmbedAndModels(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	res, b := do(t, srv, "POST", "/v1beta/models/text-embedding-004:embedContent", `{"content":{"parts":[{"text":"a bridge"}]}}`)
	var one struct {
		Embedding struct {
			Values []float64 `json:"values"`
		} `json:"embedding"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &one) != nil || len(one.Embedding.Values) != textEmbeddingDims {
		t.Fatalf("embedContent: %d %.200s", res.StatusCode, b)
	}
	_, b = do(t, srv, "POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`{"requests":[{"content":{"parts":[{"text":"a bridge"}]},"outputDimensionality":8},{"content":{"parts":[{"text":"a river"}]}}]}`)
	var batch struct {
		Embeddings []struct {
			Values []float64 `json:"values"`
		} `json:"embeddings"`
	}
	if json.Unmarshal(b, &batch) != nil || len(batch.Embeddings) != 2 || len(batch.Embeddings[0].Values) != 8 || len(batch.Embeddings[1].Values) != geminiEmbeddingDims {
		t.Fatalf("batchEmbedContents: %.300s", b)
	}
	sum := 0.0
	for _, v := range batch.Embeddings[0].Values {
		sum += v * v
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("not unit length: %v", sum)
	}
	// The same text gives the same vector, in a batch or alone.
	_, again := do(t, srv, "POST", "/v1beta/models/gemini-embedding-001:embedContent", `{"content":{"parts":[{"text":"a river"}]}}`)
	if json.Unmarshal(again, &one) != nil || fmt.Sprint(one.Embedding.Values) != fmt.Sprint(batch.Embeddings[1].Values) {
		t.Error("embedContent and batchEmbedContents disagree")
	}
	for _, body := range []string{`{"content":{"parts":[]}}`, `{"content":{"parts":[{"text":"x"}]},"outputDimensionality":0}`} {
		if res, b := do(t, srv, "POST", "/v1beta/models/text-embedding-004:embedContent", body); res.StatusCode != 400 || !strings.Contains(string(b), "INVALID_ARGUMENT") {
			t.Errorf("%s: %d %s", body, res.StatusCode, b)
		}
	}
	res, b = do(t, srv, "GET", "/v1beta/models", "")
	var list struct {
		Models []struct {
			Name    string   `json:"name"`
			Methods []string `json:"supportedGenerationMethods"`
		} `json:"models"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &list) != nil || len(list.Models) < 4 || list.Models[1].Name != "models/gemini-2.5-flash" {
		t.Errorf("list: %s", b)
	}
	res, b = do(t, srv, "GET", "/v1beta/models/gemini-2.5-pro", "")
	if res.StatusCode != 200 || !strings.Contains(string(b), `"name":"models/gemini-2.5-pro","version":"001","displayName":"Gemini 2.5 Pro"`) {
		t.Errorf("get: %d %s", res.StatusCode, b)
	}
	if res, b := do(t, srv, "POST", "/v1beta/models", "{}"); res.StatusCode != 405 || !strings.Contains(string(b), `"status":"FAILED_PRECONDITION"`) {
		t.Errorf("POST models: %d %s", res.StatusCode, b)
	}
}

// TestGeminiVersions checks that the stable (v1) and alpha versions answer
// like v1beta, and that OpenAI's /v1/models is still OpenAI's.
func TestGeminiVersions(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	body := `{"contents":[{"parts":[{"text":"Hi"}]}]}`
	_, want := do(t, srv, "POST", geminiPath+":generateContent", body)
	for _, v := range []string{"/v1/", "/v1alpha/"} {
		res, b := do(t, srv, "POST", v+"models/gemini-2.5-flash:generateContent", body)
		if res.StatusCode != 200 || string(b) != string(want) {
			t.Errorf("%s: %d %s", v, res.StatusCode, b)
		}
	}
	if res, b := do(t, srv, "GET", "/v1/models", ""); res.StatusCode != 200 || !strings.Contains(string(b), `"object":"list"`) {
		t.Errorf("OpenAI models: %d %s", res.StatusCode, b)
	}
	if res, b := do(t, srv, "POST", "/v1/models/gemini-2.5-flash:bogus", body); res.StatusCode != 404 || !strings.Contains(string(b), `"status":"NOT_FOUND"`) {
		t.Errorf("v1 unknown method: %d %s", res.StatusCode, b)
	}
}

// TestGeminiSnakeCase checks that members spelled in snake_case, as
// Google's Python SDK sends some of them, mean what their camelCase
// spelling means, while the client's own names (schema properties,
// function arguments) are kept as sent.
func TestGeminiSnakeCase(t *testing.T) {
	t.Parallel()
	srv, _ := newSim(t, Config{})
	camelReq := `{"contents":[{"role":"user","parts":[{"text":"Weather?"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]},` +
		`"tools":[{"functionDeclarations":[{"name":"get_weather","parametersJsonSchema":{"type":"object","properties":{"city_name":{"type":"string"}},"required":["city_name"]}}]}],` +
		`"generationConfig":{"maxOutputTokens":60,"thinkingConfig":{"includeThoughts":true,"thinkingBudget":20}}}`
	snake := `{"contents":[{"role":"user","parts":[{"text":"Weather?"}]}],"system_instruction":{"parts":[{"text":"Be brief."}]},` +
		`"tools":[{"function_declarations":[{"name":"get_weather","parameters_json_schema":{"type":"object","properties":{"city_name":{"type":"string"}},"required":["city_name"]}}]}],` +
		`"generation_config":{"max_output_tokens":60,"thinking_config":{"include_thoughts":true,"thinking_budget":20}}}`
	_, a := do(t, srv, "POST", geminiPath+":generateContent", camelReq)
	_, b := do(t, srv, "POST", geminiPath+":generateContent", snake)
	if string(a) != string(b) {
		t.Errorf("camelCase:\n%s\nsnake_case:\n%s", a, b)
	}
	r := decodeGemini(t, string(b))
	if fc := r.Candidates[0].Content.Parts[len(r.Candidates[0].Content.Parts)-1].FunctionCall; fc == nil || !strings.Contains(string(fc.Args), `"city_name":`) {
		t.Errorf("function call args renamed: %s", b)
	}
	if r.UsageMetadata.ThoughtsTokenCount == 0 || r.UsageMetadata.ThoughtsTokenCount > 20 {
		t.Errorf("thinking budget not read: %s", b)
	}
	if camel("thinking_budget") != "thinkingBudget" || camel("_x") != "_x" || camel("a__b") != "aB" {
		t.Error("camel")
	}
}
