package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"llmscope"
)

func seedFiles(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseRequest(f *testing.F) {
	seedFiles(f, "*.request.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		r := ParseRequest(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("ParseRequest changed its input")
		}
		// Whatever the body, the parameters read can be encoded, and each
		// invalid one is reported with its value as sent, cut short.
		if _, err := json.Marshal(r.Params); err != nil {
			t.Fatalf("ParseRequest(%q) params cannot be encoded: %v", body, err)
		}
		for _, p := range r.Invalid {
			if p.Name == "" || p.Raw == "" || len(p.Raw) > MaxInvalidRaw || !bytes.Contains(body, []byte(p.Raw)) {
				t.Fatalf("ParseRequest(%q) invalid %+v", body, p)
			}
		}
		want := parseRequestGJSON(body)
		if r.brace, r.Invalid = 0, nil; !reflect.DeepEqual(r, want) {
			t.Fatalf("ParseRequest(%q) = %+v, gjson's way gives %+v", body, r, want)
		}
		r = ParseRequest(body)
		if r.Stream && !r.IncludeUsage {
			out, err := InjectIncludeUsage(body)
			if err == nil && !ParseRequest(out).IncludeUsage {
				t.Fatalf("injection did not take: %s", out)
			}
			// The splice must give sjson's bytes, in place or not.
			for _, in := range [][]byte{bytes.Clone(body), append(bytes.Clone(body), make([]byte, 64)...)[:len(body)]} {
				got, gerr := r.InjectUsage(in)
				if (gerr == nil) != (err == nil) || !bytes.Equal(got, out) {
					t.Fatalf("InjectUsage(%q) = %q, %v; sjson gives %q, %v", body, got, gerr, out, err)
				}
			}
		}
		_ = EstimateInputTokens(llmscope.OpChat, "gpt-4o", body)
	})
}

func FuzzReadBody(f *testing.F) {
	seedFiles(f, "*.response.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range []string{llmscope.OpChat, llmscope.OpTextCompletion, llmscope.OpEmbeddings, llmscope.OpResponses} {
			var r Response
			r.SetTextLimit(64)
			r.ReadBody(op, body)
			if len(r.Text()) > 64 {
				t.Fatalf("text over its limit: %d bytes", len(r.Text()))
			}
		}
	})
}

// FuzzStream checks that splitting a stream into events loses no byte, that
// parsing any event never panics, and that stripping "usage":null leaves
// valid JSON valid.
func FuzzStream(f *testing.F) {
	seedFiles(f, "*.sse")
	f.Fuzz(func(t *testing.T, stream []byte) {
		events := NewEventReader(bytes.NewReader(stream))
		s := NewStream(llmscope.OpChat)
		s.SetTextLimit(128)
		r := NewStream(llmscope.OpResponses)
		var rebuilt []byte
		for i := 0; i < 10000; i++ {
			raw, data, err := events.Next()
			rebuilt = append(rebuilt, raw...)
			s.Event(data)
			r.Event(data)
			stripped := StripUsage(raw)
			if len(stripped) > len(raw) {
				t.Fatal("stripping grew the event")
			}
			if start, end := dataLine(raw); start >= 0 && validJSON(raw[start:end]) {
				if s2, e2 := dataLine(stripped); s2 < 0 || !validJSON(stripped[s2:e2]) {
					t.Fatalf("stripping broke valid JSON: %q -> %q", raw, stripped)
				}
			}
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
		}
		if !bytes.Equal(rebuilt, stream) && !bytes.Equal(bytes.TrimLeft(stream, "\r\n"), rebuilt) {
			// Stray blank lines between events are folded into the next event;
			// everything else must come back byte for byte.
			if len(rebuilt) > len(stream) {
				t.Fatalf("events hold more bytes than the stream")
			}
		}
	})
}

// FuzzCapture checks that Capture, reading a valid body's members once,
// captures what gjson's lookups capture, and that CaptureInput and
// CaptureTools refuse what is not JSON.
func FuzzCapture(f *testing.F) {
	seedFiles(f, "*.request.json")
	f.Add([]byte(`{"input":[{"role":"user","content":"hi"}],"instructions":"be brief","tools":[{"type":"function"}]}`))
	f.Add([]byte(` {"prompt":"x","messages":null,"messages":[1],"tools":[],"tools":[2]} `))
	f.Add([]byte(`{"m\u0065ssages":"esc","instructions":1,"input":"y","tools":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, max := range []int{0, 8, 64} {
			wantIn, wantTools := captureGJSON(body, max)
			if got := CaptureInput(body, max); got != wantIn {
				t.Fatalf("CaptureInput(%q, %d) = %q, gjson's way %q", body, max, got, wantIn)
			}
			if got := CaptureTools(body, max); got != wantTools {
				t.Fatalf("CaptureTools(%q, %d) = %q, gjson's way %q", body, max, got, wantTools)
			}
			if ParseRequest(body).Valid {
				if in, tools := Capture(body, max); in != wantIn || tools != wantTools {
					t.Fatalf("Capture(%q, %d) = %q, %q; gjson's way %q, %q", body, max, in, tools, wantIn, wantTools)
				}
			}
		}
	})
}
