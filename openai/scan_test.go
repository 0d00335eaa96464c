package openai

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"llmscope"
)

// Chunks in the shapes that make the fast scan and gjson part ways if either
// is wrong: escaped and repeated keys, choices that are not objects, odd
// index values, usage that is not an object, white space everywhere.
var scanSeeds = []string{
	`{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`,
	`{"id":"a","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":1}}}`,
	`{"id":"a","usage":{"prompt_tokens":3},"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
	` { "mod\u0065l" : "m\"x" , "choices" : [ { "index" : 0 , "delta" : { "content" : "a\nb" } } ] , "us\u0061ge" : null } `,
	`{"model":"a","model":"b","choices":[{"index":1,"delta":{"content":"x"}},{"index":0,"delta":{"content":"y"},"delta":{"content":"z"}}]}`,
	`{"choices":[1,"x",null,[{"delta":{"content":"q"}}],{"delta":"s"},{"delta":[1]},{"delta":{"tool_calls":[]}}]}`,
	`{"choices":[{"index":"0","delta":{"content":"a"}},{"index":0.0,"delta":{"content":"b"}},{"index":true,"delta":{"content":"c"}},{"index":-0,"delta":{"content":"d"}},{"index":1e0,"delta":{"content":"e"}}]}`,
	`{"choices":[{"delta":{"refusal":"no"}},{"delta":{"reasoning_content":"hm"}},{"delta":{"function_call":{}}},{"delta":{"refusal":null,"content":""}}]}`,
	`{"choices":[{"text":"hello","index":0,"finish_reason":"length"}],"usage":"none"}`,
	`{"error":{"type":"server_error","code":"x"},"model":"m"}`,
	`{"error":"x","model":"m","choices":{"0":1}}`,
	`{"type":"response.output_text.delta","delta":"hi"}`,
	`{"type":"response.created","response":{"model":"gpt-4o"}}`,
	`{"type":"response.completed","response":{"model":"m","status":"completed","usage":{"input_tokens":2,"output_tokens":3},"output":[{"type":"message","content":[{"type":"output_text","text":"t"}]}]}}`,
	`{"typ\u0065":"response.output_text.delta","delta":"a\u00e9"}`,
	`{"a":[1,2,{"b":"}"}],"choices":[{"finish_reason":"stop","delta":{"content":"]"}}]}`,
	`{}`, `{"a":1,}`, `{"a" 1}`, `[1]`, `"s"`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":"\x"}`, `{"a":"\u12"}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":1e}`, `{"a":1E+5}`, `{"a":{"b":[]}} x`, "{\"a\":\"\x01\"}", `{"a":[1 2]}`,
}

func FuzzScanObject(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= shallowSize {
			return
		}
		ms, ok := scanObject(b, nil)
		want := gjson.ValidBytes(b) && gjson.ParseBytes(b).IsObject()
		if ok != want {
			t.Fatalf("scanObject(%q) ok = %v, gjson says %v", b, ok, want)
		}
		if !ok {
			return
		}
		var i int
		gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
			if i >= len(ms) {
				t.Fatalf("%q: gjson has more members than %d", b, len(ms))
			}
			m := ms[i]
			if k.Str != gjson.Parse(str(b[m.k0:m.k1])).Str || v.Raw != string(b[m.v0:m.v1]) || !m.keyIs(b, k.Str) {
				t.Fatalf("%q: member %d is %q:%q, gjson has %q:%q", b, i, b[m.k0:m.k1], b[m.v0:m.v1], k.Raw, v.Raw)
			}
			i++
			return true
		})
		if i != len(ms) {
			t.Fatalf("%q: %d members, gjson has %d", b, len(ms), i)
		}
		// The walker over validated JSON agrees with the validating scan.
		trimmed := bytes.TrimSpace(b)
		if got, end := members(trimmed, nil); len(got) != len(ms) || end != len(trimmed) {
			t.Fatalf("%q: members found %d ending at %d, scan %d", b, len(got), end, len(ms))
		}
	})
}

// referenceEvent is Event as gjson alone reads it.
func referenceEvent(s *Stream, data []byte) Chunk {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ChunkOther
	}
	if bytes.Equal(data, doneMarker) {
		s.finished = true
		return ChunkDone
	}
	s.Chunks++
	return s.eventGJSON(data)
}

type streamState struct {
	facts
	Finished bool
}

func stateOf(s *Stream) streamState { return streamState{factsOf(&s.Response), s.finished} }

// FuzzEventFast checks that Event's own scan reads every event exactly as
// gjson does: the same kind and the same facts, event after event, and that
// the usage member it cuts is the one gjson finds.
func FuzzEventFast(f *testing.F) {
	seedFiles(f, "*.sse")
	for _, s := range scanSeeds {
		f.Add([]byte("data: " + s + "\n\ndata: " + s + "\n\n"))
		f.Add([]byte("data:  " + s + " \r\ndata: " + s + "\n\nevent: x\ndata:" + s + "\n\n"))
	}
	// Streams whose later events start with the first one's bytes up to
	// the delta (a template) and differ after it.
	head := benchChunk[:strings.Index(benchChunk, `"delta":`)+len(`"delta":`)]
	for _, rest := range templateRests {
		f.Add([]byte("data: " + benchChunk + "\n\ndata: " + head + rest + "\n\ndata: " + benchChunk + "\n\n"))
	}
	// Templates whose head decides: a second choice's index, a usage
	// object another event changes.
	a := `{"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":null}]}`
	b := `{"id":"a","model":"m","choices":[{"index":1,"delta":{"content":"B"},"finish_reason":null}]}`
	f.Add([]byte("data: " + a + "\n\ndata: " + b + "\n\ndata: " + b + "\n\ndata: " + a + "\n\n"))
	c := `{"id":"a","model":"m","usage":{"prompt_tokens":1,"completion_tokens":1},"choices":[{"delta":{"content":"A"}}]}`
	u := `{"id":"a","model":"m","usage":{"prompt_tokens":7,"completion_tokens":7},"choices":[]}`
	f.Add([]byte("data: " + c + "\n\ndata: " + u + "\n\ndata: " + c + "\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		for _, op := range []string{llmscope.OpChat, llmscope.OpTextCompletion, llmscope.OpResponses} {
			fast, ref := NewStream(op), NewStream(op)
			fast.SetTextLimit(64)
			ref.SetTextLimit(64)
			events := NewEventReader(bytes.NewReader(stream))
			for range 1000 {
				raw, data, err := events.Next()
				if k1, k2 := fast.Event(data), referenceEvent(ref, data); k1 != k2 {
					t.Fatalf("%s %q: kind %v, gjson says %v", op, data, k1, k2)
				}
				if got, want := stateOf(fast), stateOf(ref); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s %q: state %+v, gjson says %+v", op, data, got, want)
				}
				want := stripUsageReference(raw)
				if got := StripUsage(raw); !bytes.Equal(got, want) {
					t.Fatalf("StripUsage(%q) = %q, gjson's way %q", raw, got, want)
				}
				// As a Relay cuts it, with the scan Event made.
				got := raw
				if from, to, _ := usageCut(raw, fast, nil); from >= 0 {
					got = append(append([]byte(nil), raw[:from]...), raw[to:]...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("usageCut(%q) after Event = %q, gjson's way %q", raw, got, want)
				}
				if err != nil {
					break
				}
			}
		}
	})
}

// templateRests are ends of chat chunks after "delta": that a stream's
// template leaves to resume, each a case it must read as a full read does
// (or leave to one).
var templateRests = []string{
	`{"content":" bay"},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"content":"a\"b\u00e9\n"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x}y"}`,
	`{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
	`{},"logprobs":null,"finish_reason":"length","finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
	`{"content":"x"},"finish_reason":null}],"usage":null,"error":{"type":"server_error","message":"boom"}}`,
	`{"content":"x"},"finish_reason":null}],"error":null,"error":{"type":"t"}}`,
	`{"content":"x"},"finish_reason":null},{"index":1,"delta":{"content":"y"}}],"usage":null}`,
	`{"content":"x"},"index":1}],"usage":null}`,
	`{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}],"usage":null}`,
	`{"refusal":"no"},"finish_reason":null}],"model":"other","id":"x","usage":null}`,
	`{"content":"x","content":"y"},"delta":{"content":"z"}}],"choices":[],"usage":null}`,
	`{"content":"x"}}],"usage":null} `,
	`{"content":"x"}}],"usage":null}}`,
	`{"content":"x"}]],"usage":null}`,
	`{"content":"x\u12"}}],"usage":null}`,
	`{"content":"x"}}],"usage":nul}`,
}

// stripUsageReference is StripUsage with gjson finding the member.
func stripUsageReference(raw []byte) []byte {
	start, end := dataLine(raw)
	if start < 0 {
		return raw
	}
	payload := raw[start:end]
	if !bytes.Contains(payload, []byte(`"usage"`)) {
		return raw
	}
	from, to := usageMemberGJSON(payload)
	if from < 0 {
		return raw
	}
	if i := lastNonSpace(payload[:from]); i >= 0 && payload[i] == ',' {
		from = i
	} else if j := firstNonSpace(payload[to:]); j >= 0 && payload[to+j] == ',' {
		to += j + 1
		for to < len(payload) && isSpace(payload[to]) {
			to++
		}
	}
	return append(append([]byte(nil), raw[:start+from]...), raw[start+to:]...)
}

func TestScanSeedsAgree(t *testing.T) {
	for _, s := range scanSeeds {
		ms, ok := scanObject([]byte(s), nil)
		want := gjson.Valid(s) && gjson.Parse(s).IsObject()
		if ok != want {
			t.Errorf("scanObject(%s) = %v, want %v", s, ok, want)
		}
		_ = ms
	}
}

// benchChunk is one content chunk as OpenAI (and the simulator) send it.
const benchChunk = `{"id":"chatcmpl-ec2TUwsFaCaVpdC1NeNgZqyR07rY9","object":"chat.completion.chunk","created":1709824883,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"llmscope-sim","choices":[{"index":0,"delta":{"content":" harbor"},"logprobs":null,"finish_reason":null}],"usage":null}`

func BenchmarkEvent(b *testing.B) {
	data := []byte(benchChunk)
	for _, c := range []struct {
		name string
		f    func(*Stream, []byte) Chunk
	}{{"scan", (*Stream).Event}, {"gjson", referenceEvent}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			s := NewStream(llmscope.OpChat)
			s.SetTextLimit(1 << 20)
			for b.Loop() {
				if c.f(s, data) != ChunkContent {
					b.Fatal("not content")
				}
				if s.text.Len() > 1<<19 {
					s.text.Reset()
				}
			}
		})
	}
}

func BenchmarkStripUsage(b *testing.B) {
	raw := []byte("data: " + benchChunk + "\n\n")
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			StripUsage(raw)
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			stripUsageReference(raw)
		}
	})
	b.Run("relay", func(b *testing.B) {
		stream := bytes.Repeat(raw, 64)
		b.ReportAllocs()
		b.SetBytes(int64(len(stream)))
		for b.Loop() {
			r := NewRelay(llmscope.OpChat, bytes.NewReader(stream), time.Now(), true, 1<<20)
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				}
			}
		}
	})
}

// FuzzReadBodyFast checks that ReadBody's own scan reads any body exactly as
// gjson does.
func FuzzReadBodyFast(f *testing.F) {
	seedFiles(f, "*.response.json")
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"choices":"x","model":"m","usage":{"prompt_tokens":1}}`))
	f.Add([]byte(`{"choices":{"a":{"finish_reason":"stop","message":{"content":"hi"}}}}`))
	f.Add([]byte(`{"choices":[{"message":{"content":"a"},"finish_reason":"stop"},{"message":{"content":"b"}}],"choices":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range []string{llmscope.OpChat, llmscope.OpTextCompletion, llmscope.OpEmbeddings, llmscope.OpResponses} {
			var fast, ref Response
			fast.SetTextLimit(64)
			ref.SetTextLimit(64)
			fast.ReadBody(op, body)
			ref.readBodyGJSON(op, body)
			if got, want := factsOf(&fast), factsOf(&ref); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q: %+v, gjson says %+v", op, body, got, want)
			}
		}
	})
}

func BenchmarkReadBody(b *testing.B) {
	body, err := os.ReadFile("testdata/chat.response.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    func(*Response, string, []byte)
	}{{"scan", (*Response).ReadBody}, {"gjson", (*Response).readBodyGJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r Response
				r.SetTextLimit(1 << 20)
				c.f(&r, llmscope.OpChat, body)
			}
		})
	}
}
