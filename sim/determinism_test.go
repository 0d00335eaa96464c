package sim

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"llmscope/internal/golden"
)

// goldenCases are requests whose exact answers are pinned in testdata/sim.
var goldenCases = []struct{ name, path, body string }{
	{"chat", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something."}]}`},
	{"chat_stream", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say something."}]}`},
	{"chat_stream_usage", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something."}]}`},
	{"chat_reasoning_length", "/v1/chat/completions", `{"model":"o3-mini","max_completion_tokens":40,"messages":[{"role":"user","content":"Think."}]}`},
	{"completions_stream_usage", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","stream":true,"stream_options":{"include_usage":true},"max_tokens":8,"prompt":"Once"}`},
	{"completions", "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["a","b"]}`},
	{"embeddings", "/v1/embeddings", `{"model":"text-embedding-3-small","input":["a","b"],"dimensions":4}`},
	{"embeddings_base64", "/v1/embeddings", `{"model":"text-embedding-3-small","input":"a","dimensions":4,"encoding_format":"base64"}`},
	{"responses", "/v1/responses", `{"model":"gpt-4.1","instructions":"Be brief.","input":"Describe a bridge.","temperature":0.2}`},
	{"responses_stream", "/v1/responses", `{"model":"gpt-4.1","stream":true,"input":[{"role":"user","content":"Describe a bridge."}]}`},
	{"responses_stream_incomplete", "/v1/responses", `{"model":"gpt-5","stream":true,"max_output_tokens":20,"input":"Describe a bridge."}`},
}

// shapeGoldenCases are requests with tools and formats whose exact answers
// are pinned in sim/testdata.
var shapeGoldenCases = []struct{ name, path, body string }{
	{"chat_tool_call", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[` + goldenTool + `]}`},
	{"chat_tool_call_stream_usage", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[` + goldenTool + `],"tool_choice":"required"}`},
	{"chat_json_schema", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"A person."}],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string"}},"required":["city","zip"],"additionalProperties":false}},"required":["name","age","address"],"additionalProperties":false}}}}`},
	{"responses_function_call_stream", "/v1/responses", `{"model":"gpt-4.1","stream":true,"input":"Weather in Oslo?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false},"strict":true}]}`},
}

const goldenTool = `{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":3}},"required":["city","days"]}}}`

func goldenExt(path, body string) string {
	if strings.Contains(body, `"stream":true`) {
		return ".sse"
	}
	return ".json"
}

// TestGolden pins the exact bytes of one answer per shape, and checks that a
// second identical request and a second server with the same seed give the
// same bytes.
func TestGolden(t *testing.T) {
	t.Parallel()
	checkGolden(t, goldenCases, filepath.Join("..", "testdata", "sim"))
}

// TestGoldenShapes pins the answers with tool calls and JSON formats, as
// TestGolden does.
func TestGoldenShapes(t *testing.T) {
	t.Parallel()
	checkGolden(t, shapeGoldenCases, "testdata")
}

func checkGolden(t *testing.T, cases []struct{ name, path, body string }, dir string) {
	srvA, _ := newSim(t, Config{Seed: 1})
	srvB, _ := newSim(t, Config{Seed: 1})
	srvC, _ := newSim(t, Config{Seed: 2})
	for _, c := range cases {
		resA, a := do(t, srvA, "POST", c.path, c.body)
		_, a2 := do(t, srvA, "POST", c.path, c.body)
		resB, b := do(t, srvB, "POST", c.path, c.body)
		_, other := do(t, srvC, "POST", c.path, c.body)
		if resA.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.name, resA.StatusCode, a)
		}
		if !bytes.Equal(a, a2) || !bytes.Equal(a, b) {
			t.Errorf("%s: identical requests gave different bytes", c.name)
		}
		if resA.Header.Get("X-Request-Id") != resB.Header.Get("X-Request-Id") || resA.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: request ids %q %q", c.name, resA.Header.Get("X-Request-Id"), resB.Header.Get("X-Request-Id"))
		}
		if bytes.Equal(a, other) {
			t.Errorf("%s: another seed gave the same bytes", c.name)
		}
		file := filepath.Join(dir, c.name+goldenExt(c.path, c.body))
		golden.Equal(t, file, a)
	}
}

func TestPacing(t *testing.T) {
	t.Parallel()
	const ttft, tps = 150 * time.Millisecond, 200.0
	_, client := newSim(t, Config{TTFT: ttft, TokensPerSecond: tps})
	start := time.Now()
	stream := client.Chat.Completions.NewStreaming(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs})
	var first time.Duration
	pieces := 0
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			if pieces == 0 {
				first = time.Since(start)
			}
			pieces++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	minTotal := ttft + time.Duration(pieces-1)*time.Second/tps
	if first < ttft || total < minTotal {
		t.Errorf("first piece after %v (ttft %v), %d pieces in %v (want ≥ %v)", first, ttft, pieces, total, minTotal)
	}
	start = time.Now()
	if _, err := client.Chat.Completions.New(context.Background(),
		openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < minTotal {
		t.Errorf("non-stream answered in %v, want ≥ %v", d, minTotal)
	}
}

func TestJitterDeterministic(t *testing.T) {
	s := New(Config{TTFT: 100 * time.Millisecond, TokensPerSecond: 10, Jitter: 30 * time.Millisecond})
	a, b := s.pacer(99), s.pacer(99)
	varies := false
	prev := time.Duration(-1)
	for range 50 {
		da, db := a.next(), b.next()
		if da != db {
			t.Fatalf("jitter differs: %v %v", da, db)
		}
		if da < 70*time.Millisecond || da > 130*time.Millisecond {
			t.Fatalf("delay %v outside 100ms±30ms", da)
		}
		varies = varies || (prev >= 0 && da != prev)
		prev = da
	}
	if !varies {
		t.Error("jitter never varied")
	}
	if d := (&pacer{jitter: time.Second}).first(); d != 0 {
		t.Errorf("zero TTFT with jitter gave %v", d)
	}
}

// TestClientGone checks that handlers stop promptly when the client goes
// away, streaming or not.
func TestClientGone(t *testing.T) {
	t.Parallel()
	sim := New(Config{TTFT: 10 * time.Millisecond, TokensPerSecond: 5})
	done := make(chan time.Time, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sim.ServeHTTP(w, r)
		done <- time.Now()
	}))
	t.Cleanup(srv.Close)
	client := newClient(srv)

	ctx, cancel := context.WithCancel(context.Background())
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs})
	for i := 0; i < 2 && stream.Next(); i++ {
	}
	cancel()
	cancelled := time.Now()
	stream.Close()
	select {
	case end := <-done:
		if d := end.Sub(cancelled); d > time.Second {
			t.Errorf("stream handler ended %v after the client left", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream handler still running 5s after the client left")
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: chatMsgs}); err == nil {
		t.Fatal("non-stream answered before its 12s pacing")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("non-stream handler still running 5s after the client left")
	}
}
