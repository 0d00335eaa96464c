package anthropic

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

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

// checkFacts holds for whatever a parser read: counts are not negative,
// the prompt covers its cached parts, text stays within its limit, and tool
// calls are JSON.
func checkFacts(t *testing.T, in []byte, r *openai.Response, limit int) {
	u := r.Usage
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CachedInputTokens < 0 || u.CacheCreationInputTokens < 0 ||
		u.CachedInputTokens+u.CacheCreationInputTokens > u.InputTokens && u.InputTokens >= 0 && !overflowed(u.InputTokens) {
		t.Fatalf("%q: usage %+v", in, u)
	}
	if len(r.Text()) > limit {
		t.Fatalf("%q: text of %d bytes beyond %d", in, len(r.Text()), limit)
	}
	if tc := r.ToolCalls(); tc != "" && !json.Valid([]byte(tc)) {
		t.Fatalf("%q: tool calls not JSON: %s", in, tc)
	}
}

// overflowed reports a sum that wrapped (counts near MaxInt64 in a fuzzed body).
func overflowed(n int64) bool { return n < 0 }

func FuzzAnthropicStream(f *testing.F) {
	seed(f, "*.sse")
	f.Add([]byte("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":null}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		s := NewEvents(256)
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
		checkFacts(t, body, s.Result(), 256)
	})
}

func FuzzAnthropicBody(f *testing.F) {
	seed(f, "*.response.json")
	seed(f, "*.request.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		var r openai.Response
		r.SetTextLimit(256)
		ReadBody(&r, body)
		checkFacts(t, body, &r, 256)
		req := ParseRequest(body)
		if _, err := json.Marshal(req.Params); err != nil {
			t.Fatalf("params of %q cannot be encoded: %v", body, err)
		}
		in, tools := CaptureInput(body, 64)
		if len(in) > 64 || len(tools) > 64 {
			t.Fatalf("capture beyond its limit: %q %q", in, tools)
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("a parser changed its input")
		}
	})
}

// FuzzTextDelta: whatever the fast reading of a text delta accepts, the
// full parse reads the same way, with the same text.
func FuzzTextDelta(f *testing.F) {
	for _, s := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
		`{"type":"content_block_delta","index":12,"delta":{"type":"text_delta","text":"a \"q\" \\ \u00e9 \n"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"caf\u00e9 ☕"}}`,
		`{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"extra":1}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, ok := textDelta(data)
		if !ok {
			return
		}
		text = strings.Clone(text)
		if !gjson.ValidBytes(data) {
			t.Fatalf("%q: read fast but not JSON", data)
		}
		ev := gjson.ParseBytes(data)
		if ev.Get("type").Str != "content_block_delta" || ev.Get("delta.type").Str != "text_delta" || ev.Get("delta.text").Str != text {
			t.Fatalf("%q: fast text %q, full parse %q", data, text, ev.Get("delta.text").Str)
		}
	})
}
