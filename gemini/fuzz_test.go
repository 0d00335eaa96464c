package gemini

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"llmscope/openai"
)

func seed(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

const fuzzLimit = 256

// checkFacts holds for whatever a reader read: counts are not negative and
// add up, the prompt covers its cached part, text stays within its limit,
// tool calls are JSON within it, and error messages are bounded.
func checkFacts(t *testing.T, in []byte, r *openai.Response) {
	t.Helper()
	u := r.Usage
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.TotalTokens < 0 || u.CachedInputTokens < 0 || u.ReasoningTokens < 0 ||
		u.CachedInputTokens > u.InputTokens || u.ReasoningTokens > u.OutputTokens {
		t.Fatalf("%q: usage %+v", in, u)
	}
	if r.HasUsage != (u.Source != "") {
		t.Fatalf("%q: has usage %v, source %q", in, r.HasUsage, u.Source)
	}
	if len(r.Text()) > fuzzLimit {
		t.Fatalf("%q: text of %d bytes beyond %d", in, len(r.Text()), fuzzLimit)
	}
	if tc := r.ToolCalls(); tc != "" && (!json.Valid([]byte(tc)) || len(tc) > fuzzLimit) {
		t.Fatalf("%q: tool calls %s", in, tc)
	}
	if len(r.ErrorMessage) > 1024 {
		t.Fatalf("%q: error message of %d bytes", in, len(r.ErrorMessage))
	}
}

// FuzzGeminiEvents feeds any stream through NewEvents as the relay does.
func FuzzGeminiEvents(f *testing.F) {
	seed(f, "*.sse")
	f.Add([]byte("data: {\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"totalTokenCount\":\"9223372036854775807\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		s := NewEvents(fuzzLimit)
		er := openai.NewEventReader(bytes.NewReader(body))
		for {
			raw, data, err := er.Next()
			if len(raw) > 0 {
				s.Event(data)
			}
			if err != nil {
				break
			}
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("the stream reader changed its input")
		}
		r := s.Result()
		checkFacts(t, body, r)
		if s.Finished() && (!r.HasUsage || r.FinishReason == "") {
			t.Fatalf("%q: finished without finish reason and usage", body)
		}
	})
}

// FuzzGeminiBody feeds any body to every reader of request and answer
// bodies.
func FuzzGeminiBody(f *testing.F) {
	seed(f, "*.response.json")
	seed(f, "*.request.json")
	f.Add([]byte(`[{"error":{"code":"x","message":null}},{"candidates":{}},7]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		var r openai.Response
		r.SetTextLimit(fuzzLimit)
		ReadBody(&r, body)
		checkFacts(t, body, &r)
		req := ParseRequest("/v1beta/models/m:streamGenerateContent", body)
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("request of %q cannot be encoded: %v", body, err)
		}
		for _, p := range req.Invalid {
			if p.Name == "" || len(p.Raw) > openai.MaxInvalidRaw {
				t.Fatalf("%q: invalid %+v", body, p)
			}
		}
		in, tools := CaptureInput(body, 64)
		if len(in) > 64 || len(tools) > 64 {
			t.Fatalf("capture beyond its limit: %q %q", in, tools)
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("a reader changed its input")
		}
	})
}
