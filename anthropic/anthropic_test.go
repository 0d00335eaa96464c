package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
	"llmscope/openai"
)

var update = flag.Bool("update", false, "rewrite the golden .facts.json and .parsed.json files")

// facts is what a golden file holds of a read answer.
type facts struct {
	ID           string         `json:"id"`
	Model        string         `json:"model"`
	FinishReason string         `json:"finish_reason"`
	HasUsage     bool           `json:"has_usage"`
	Usage        llmscope.Usage `json:"usage"`
	ServiceTier  string         `json:"service_tier,omitempty"`
	Text         string         `json:"text"`
	ToolCalls    string         `json:"tool_calls,omitempty"`
	ErrorType    string         `json:"error_type,omitempty"`
	ErrorMessage string         `json:"error_message,omitempty"`
	Chunks       int64          `json:"chunks,omitempty"`
	Finished     bool           `json:"finished,omitempty"`
	Content      int            `json:"content_events,omitempty"`
}

func factsOf(r *openai.Response) facts {
	return facts{ID: r.ID, Model: r.Model, FinishReason: r.FinishReason, HasUsage: r.HasUsage, Usage: r.Usage,
		ServiceTier: r.ServiceTier, Text: r.Text(), ToolCalls: r.ToolCalls(), ErrorType: r.ErrorType,
		ErrorMessage: r.ErrorMessage, Chunks: r.Chunks}
}

// golden compares got with the JSON in testdata/name, or writes it with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs:\ngot  %s\nwant %s", name, b, want)
	}
}

// readStream reads an SSE file through Stream as the gateway's relay does.
func readStream(t testing.TB, body []byte, limit int) (facts, error) {
	s := NewEvents(limit)
	er := openai.NewEventReader(bytes.NewReader(body))
	content := 0
	var err error
	for {
		var raw, data []byte
		raw, data, err = er.Next()
		if len(raw) > 0 && s.Event(data) == openai.ChunkContent {
			content++
		}
		if err != nil {
			break
		}
	}
	f := factsOf(s.Result())
	f.Finished, f.Content = s.Finished(), content
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return f, err
}

func TestStreamGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.sse")
	if len(files) < 5 {
		t.Fatalf("golden streams missing: %v", files)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			f, err := readStream(t, b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Base(name)+".facts.json", f)
		})
	}
}

func TestBodyGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.response.json")
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var r openai.Response
			r.SetTextLimit(1 << 20)
			ReadBody(&r, b)
			golden(t, strings.TrimSuffix(filepath.Base(name), ".response.json")+".facts.json", factsOf(&r))
		})
	}
}

// The usage arithmetic the store relies on: the prompt is input + cache
// writes + cache reads; cached is the reads; output is message_delta's
// cumulative count, never added to message_start's.
func TestStreamUsageArithmetic(t *testing.T) {
	b, err := os.ReadFile("testdata/cache.sse")
	if err != nil {
		t.Fatal(err)
	}
	f, err := readStream(t, b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := llmscope.Usage{InputTokens: 5 + 1200 + 42203, OutputTokens: 21, TotalTokens: 5 + 1200 + 42203 + 21,
		CachedInputTokens: 42203, CacheCreationInputTokens: 1200, Source: llmscope.UsageReported}
	if f.Usage != want || f.ServiceTier != "priority" || !f.Finished {
		t.Fatalf("usage %+v tier %q finished %v, want %+v priority true", f.Usage, f.ServiceTier, f.Finished, want)
	}
}

// Thinking is generated content (it counts for the time to first token) but
// never output text.
func TestThinkingNotText(t *testing.T) {
	b, _ := os.ReadFile("testdata/thinking.sse")
	f, err := readStream(t, b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Text, "Euclidean") || !strings.Contains(f.Text, "**21**") || f.FinishReason != "max_tokens" {
		t.Fatalf("text %q finish %q", f.Text, f.FinishReason)
	}
}

// A stream cut short (no message_stop) is not Finished, and what arrived is kept.
func TestStreamCut(t *testing.T) {
	b, _ := os.ReadFile("testdata/text.sse")
	cut := b[:bytes.Index(b, []byte("event: content_block_stop"))]
	f, err := readStream(t, cut, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if f.Finished || f.Text != "Hello! How can I help you today?" || f.Usage.OutputTokens != 1 {
		t.Fatalf("%+v", f)
	}
}

// Text and tool input are bounded by the text limit.
func TestStreamLimit(t *testing.T) {
	b, _ := os.ReadFile("testdata/tool_use.sse")
	f, err := readStream(t, b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Text) > 10 || f.ToolCalls != "" {
		t.Fatalf("text %q tool calls %q beyond a limit of 10", f.Text, f.ToolCalls)
	}
}

func TestParseRequest(t *testing.T) {
	for _, name := range []string{"full", "min"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + name + ".request.json")
			if err != nil {
				t.Fatal(err)
			}
			r := ParseRequest(b)
			in, tools := CaptureInput(b, 1<<16)
			golden(t, name+".parsed.json", struct {
				Request openai.Request
				Input   string
				Tools   string
			}{r, in, tools})
		})
	}
	if r := ParseRequest([]byte(`[1]`)); r.Valid {
		t.Fatal("an array is not a request")
	}
}

func TestOperation(t *testing.T) {
	for _, c := range []struct{ method, path, op, allowed string }{
		{"POST", "/v1/messages", llmscope.OpChat, ""},
		{"GET", "/v1/messages", llmscope.OpChat, "POST, OPTIONS"},
		{"OPTIONS", "/v1/messages", llmscope.OpOther, ""},
		{"POST", "/v1/messages/count_tokens", llmscope.OpOther, ""},
		{"POST", "/v1/messages/batches", llmscope.OpOther, ""},
	} {
		if op, allowed := Operation(c.method, c.path); op != c.op || allowed != c.allowed {
			t.Errorf("Operation(%s %s) = %q, %q; want %q, %q", c.method, c.path, op, allowed, c.op, c.allowed)
		}
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		status    int
		typ, code string
		want      string
	}{
		{503, "server_error", "overloaded", "overloaded_error"},
		{413, "invalid_request_error", "request_too_large", "request_too_large"},
		{400, "invalid_request_error", "invalid_path", "invalid_request_error"},
		{502, "upstream_error", "upstream_unreachable", "api_error"},
	} {
		w := httptest.NewRecorder()
		WriteError(w, c.status, c.typ, c.code, "bad \x01 \"thing\"")
		var body struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		if w.Code != c.status || body.Type != "error" || body.Error.Type != c.want || body.Error.Message != "bad \x01 \"thing\"" {
			t.Errorf("%d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Error(w.Header())
		}
	}
	_ = http.StatusOK
}
