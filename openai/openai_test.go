package openai

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
	"llmscope/internal/golden"
	"llmscope/tokenizer"
)

// checkGolden compares v, as indented JSON, with testdata/name.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	golden.JSON(t, filepath.Join("testdata", name), v)
}

func TestParseRequestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.request.json")
	if len(files) == 0 {
		t.Fatal("no request files")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".parsed.json", ParseRequest(body))
		})
	}
}

func TestParseRequestInvalid(t *testing.T) {
	for _, body := range []string{``, `{`, `[1,2]`, `"x"`, `{"model":"a",}`, "{\"model\":\"\xff\"}"} {
		r := ParseRequest([]byte(body))
		if r.Valid && body != "{\"model\":\"\xff\"}" {
			t.Errorf("ParseRequest(%q) is valid", body)
		}
		if !r.Valid && (r.Model != "" || r.Params.Temperature != nil) {
			t.Errorf("invalid body %q gave fields %+v", body, r)
		}
	}
}

// facts is what a golden file records of a Response.
type facts struct {
	Model        string
	Usage        llmscope.Usage
	HasUsage     bool
	FinishReason string
	ErrorType    string
	ErrorCode    string
	Text         string
	Kinds        []string `json:",omitempty"`

	ErrorMessage      string `json:",omitempty"`
	ID                string `json:",omitempty"`
	Created           int64  `json:",omitempty"`
	SystemFingerprint string `json:",omitempty"`
	Chunks            int64  `json:",omitempty"`
	ToolCalls         string `json:",omitempty"`
}

func factsOf(r *Response) facts {
	return facts{r.Model, r.Usage, r.HasUsage, r.FinishReason, r.ErrorType, r.ErrorCode, r.Text(), nil,
		r.ErrorMessage, r.ID, r.Created, r.SystemFingerprint, r.Chunks, r.ToolCalls()}
}

func opOf(name string) string {
	switch {
	case strings.HasPrefix(name, "chat"), strings.HasPrefix(name, "error"):
		return llmscope.OpChat
	case strings.HasPrefix(name, "completions"):
		return llmscope.OpTextCompletion
	case strings.HasPrefix(name, "embeddings"):
		return llmscope.OpEmbeddings
	case strings.HasPrefix(name, "responses"):
		return llmscope.OpResponses
	}
	return llmscope.OpOther
}

func TestReadBodyGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.response.json")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".response.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var r Response
			r.SetTextLimit(1 << 10)
			r.ReadBody(opOf(name), body)
			checkGolden(t, name+".facts.json", factsOf(&r))
		})
	}
}

var kindNames = map[Chunk]string{ChunkOther: "other", ChunkContent: "content", ChunkUsageOnly: "usage", ChunkDone: "done"}

func TestStreamGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.sse")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sse")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := NewStream(opOf(name))
			s.SetTextLimit(1 << 10)
			events := NewEventReader(bytes.NewReader(body))
			var kinds []string
			var rebuilt []byte
			for {
				raw, data, err := events.Next()
				rebuilt = append(rebuilt, raw...)
				if len(raw) > 0 {
					kinds = append(kinds, kindNames[s.Event(data)])
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(rebuilt, body) {
				t.Errorf("raw events do not add up to the stream")
			}
			got := factsOf(&s.Response)
			got.Kinds = kinds
			checkGolden(t, name+".sse.facts.json", got)
		})
	}
}

func TestStripUsage(t *testing.T) {
	cases := map[string]string{
		"data: {\"id\":\"a\",\"choices\":[],\"usage\":null}\n\n":                      "data: {\"id\":\"a\",\"choices\":[]}\n\n",
		"data: {\"id\":\"a\",\"usage\":null,\"x\":1}\n\n":                             "data: {\"id\":\"a\",\"x\":1}\n\n",
		"data: {\"usage\": null, \"id\": \"a\"}\n\n":                                  "data: {\"id\": \"a\"}\n\n",
		"data: {\"id\": \"a\", \"usage\" : null}\r\n\r\n":                             "data: {\"id\": \"a\"}\r\n\r\n",
		"data:{\"c\":[{\"t\":\"data: x\"}],\"usage\":{\"total_tokens\":3}}\n\n":       "data:{\"c\":[{\"t\":\"data: x\"}]}\n\n",
		"id: 7\ndata: {\"id\":\"a\",\"usage\":null}\n\n":                              "id: 7\ndata: {\"id\":\"a\"}\n\n",
		"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"x\":1,\"usage\":null}}]}\n\n": "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"x\":1,\"usage\":null}}]}\n\n",
		"data: {\"id\":\"a\",\"c\":\"text ,\\\"usage\\\":null\"}\n\n":                 "data: {\"id\":\"a\",\"c\":\"text ,\\\"usage\\\":null\"}\n\n",
		"data: {\"id\":\"a\"}\n\n":                                                    "data: {\"id\":\"a\"}\n\n",
		"data: [DONE]\n\n":                                                            "data: [DONE]\n\n",
		": comment\n\n":                                                               ": comment\n\n",
	}
	for in, want := range cases {
		if got := string(StripUsage([]byte(in))); got != want {
			t.Errorf("StripUsage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUsageOnlyWithoutChoices(t *testing.T) {
	s := NewStream(llmscope.OpChat)
	if k := s.Event([]byte(`{"id":"a","usage":{"prompt_tokens":3,"completion_tokens":4}}`)); k != ChunkUsageOnly || s.Usage.TotalTokens != 7 {
		t.Errorf("kind %v usage %+v", k, s.Usage)
	}
}

func TestDeepNestingIsNotParsed(t *testing.T) {
	deep := bytes.Repeat([]byte("["), 8<<20)
	if r := ParseRequest(deep); r.Valid {
		t.Error("8 MiB of [ parsed as valid")
	}
	var r Response
	r.ReadBody(llmscope.OpChat, deep)
	NewStream(llmscope.OpChat).Event(deep)
	_ = EstimateInputTokens(llmscope.OpChat, "gpt-4o", deep)
	pad := strings.Repeat(" ", shallowSize)
	ok := []byte(strings.Repeat("[", MaxDepth) + pad + strings.Repeat("]", MaxDepth))
	if !validJSON(ok) || validJSON([]byte(strings.Repeat("[", MaxDepth+1)+pad+strings.Repeat("]", MaxDepth+1))) {
		t.Error("depth bound is off")
	}
	if !validJSON([]byte(`{"s":"[[[[\"]]"}`)) {
		t.Error("brackets inside strings counted")
	}
}

func TestEventReaderLimits(t *testing.T) {
	huge := "data: " + strings.Repeat("x", MaxEventSize) + "\n\n"
	_, _, err := NewEventReader(strings.NewReader(huge)).Next()
	if !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("huge event: err %v, want ErrEventTooLarge", err)
	}
	// A long line that is still within bounds is read whole.
	long := "data: " + strings.Repeat("y", 100_000) + "\n\n"
	raw, data, err := NewEventReader(strings.NewReader(long)).Next()
	if err != nil || string(raw) != long || len(data) != 100_000 {
		t.Errorf("long event: err %v, raw %d bytes, data %d bytes", err, len(raw), len(data))
	}
	// A stream cut mid-event returns what it had with io.EOF.
	raw, _, err = NewEventReader(strings.NewReader("data: {\"a\":1}\n")).Next()
	if err != io.EOF || string(raw) != "data: {\"a\":1}\n" {
		t.Errorf("cut stream: %q %v", raw, err)
	}
}

func TestInjectIncludeUsage(t *testing.T) {
	for in, want := range map[string]string{
		`{"model":"m","stream":true}`:                                          `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":false}}`: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		`{"stream_options":{"include_obfuscation":false},"stream":true}`:       `{"stream_options":{"include_obfuscation":false,"include_usage":true},"stream":true}`,
	} {
		got, err := InjectIncludeUsage([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("InjectIncludeUsage(%s) = %s, %v; want %s", in, got, err, want)
		}
		if r := ParseRequest(got); !r.IncludeUsage {
			t.Errorf("injected body does not parse as include_usage: %s", got)
		}
		r := ParseRequest([]byte(in))
		if got, err := r.InjectUsage([]byte(in)); err != nil || string(got) != want {
			t.Errorf("InjectUsage(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}

// TestInjectUsageSplice checks that the splice gives sjson's bytes around
// white space and escaped keys, and for a large body appended in place.
func TestInjectUsageSplice(t *testing.T) {
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("prose and more ", 4000) + `"}],"stream":true}`
	for _, in := range []string{
		`{"stream":true}`, `{"stream":true} `, " \n{\"stream\":true}\t", `{"stream":true ,"a":{"b":"}"} }` + "\r\n",
		`{"stream":true,"stream\u005foptions":{}}`, `{"stream":true,"stream_options":null}`, big, big + "\n",
	} {
		want, werr := InjectIncludeUsage([]byte(in))
		r := ParseRequest([]byte(in))
		body := append([]byte(in), make([]byte, 64)...)[:len(in)]
		got, err := r.InjectUsage(body)
		if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Errorf("InjectUsage(%.60q) = %.60q, %v; sjson gives %.60q, %v", in, got, err, want, werr)
		}
		if len(in) == len(big) && &got[0] != &body[0] {
			t.Error("a body with room was copied")
		}
	}
}

// TestParseRequestDepth checks the one-pass validation against the old way
// at the nesting bound, for bodies above and below shallowSize.
func TestParseRequestDepth(t *testing.T) {
	pad := strings.Repeat(" ", shallowSize)
	for _, depth := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1, 2 * MaxDepth} {
		nest := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1)
		for _, body := range []string{
			`{"model":"m","a":` + nest + `}`,
			`{"model":"m","a":` + nest + `,"pad":"` + pad + `"}`,
			`{"model":"m","a":` + strings.Repeat(`{"b":`, depth-1) + "1" + strings.Repeat("}", depth-1) + `,"pad":"` + pad + `"}`,
		} {
			got, want := ParseRequest([]byte(body)), parseRequestGJSON([]byte(body))
			if got.Valid != want.Valid || got.Model != want.Model {
				t.Errorf("depth %d, %d bytes: valid %v, want %v", depth, len(body), got.Valid, want.Valid)
			}
			if wantValid := depth <= MaxDepth || len(body) < shallowSize; got.Valid != wantValid {
				t.Errorf("depth %d, %d bytes: valid %v", depth, len(body), got.Valid)
			}
		}
	}
}

func TestEstimateInputTokens(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}`)
	// 3 (reply priming) + 3 (message) + 1 ("user") + 2 ("hello world")
	if got := EstimateInputTokens(llmscope.OpChat, "gpt-4o", body); got != 9 {
		t.Errorf("chat estimate = %d, want 9", got)
	}
	withTools := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object"}}}]}`)
	want := 9 + int64(tokenizer.CountTools("gpt-4o", []tokenizer.Tool{{Name: "get_weather", Description: "Get the weather", Parameters: []byte(`{"type":"object"}`)}}))
	if got := EstimateInputTokens(llmscope.OpChat, "gpt-4o", withTools); got != want || want <= 9 {
		t.Errorf("chat with tools estimate = %d, want %d", got, want)
	}
	body = []byte(`{"model":"text-embedding-3-small","input":["hello world","hello world"]}`)
	if got := EstimateInputTokens(llmscope.OpEmbeddings, "text-embedding-3-small", body); got != 4 {
		t.Errorf("embeddings estimate = %d, want 4", got)
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("héllo", 2); got != "h" {
		t.Errorf("Truncate split a rune: %q", got)
	}
	if got := Truncate("hello", 0); got != "hello" {
		t.Errorf("Truncate with no limit: %q", got)
	}
}

func TestReadTail(t *testing.T) {
	body := `{"object":"list","data":[{"embedding":[0.1,0.2]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":4096,"total_tokens":4096}}` + "\n"
	var r Response
	r.ReadTail([]byte(body[40:])) // a tail that starts mid-data
	if r.Model != "text-embedding-3-large" || !r.HasUsage || r.Usage.InputTokens != 4096 {
		t.Errorf("tail read %+v", r)
	}
	var cut Response
	cut.ReadTail([]byte(`"usage":{"prompt_tokens":40`))
	if cut.HasUsage {
		t.Error("a cut-off usage object was read")
	}
}
