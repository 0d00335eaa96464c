package openai

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"llmscope"
)

// FuzzRelayDeferred checks that a Relay passing events on before reading
// them gathers the same facts as gjson reading each event at once, and
// passes on the same bytes as the eager cut (usageCut after Event) for
// every event whose payload is valid JSON, however Digest calls fall. An
// event that is not JSON may lose a "usage":null it carries; nothing else.
func FuzzRelayDeferred(f *testing.F) {
	seedFiles(f, "*.sse")
	for _, s := range scanSeeds {
		f.Add([]byte("data: " + s + "\n\ndata: " + s + "\n\n"))
	}
	f.Add([]byte("data: " + benchChunk + "\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte(`data: {"choices":[{"delta":{"content":"a"}}],"usage":null,"obfuscation":"x}\"y"}` + "\n\n"))
	f.Add([]byte(`data: {"a":{"b":1,"usage":null}}` + "\n\n" + `data: {"a":1,"usage":null,"usage":{"total_tokens":1}}` + "\n\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		digestEvery := len(stream) % 5 // 0: only when the relay must
		for _, op := range []string{llmscope.OpChat, llmscope.OpTextCompletion, llmscope.OpResponses} {
			for _, injected := range []bool{false, true} {
				r := NewRelay(op, bytes.NewReader(stream), time.Now(), injected, 64)
				ref := NewStream(op)
				ref.SetTextLimit(64)
				events := NewEventReader(bytes.NewReader(stream))
				for n := 1; n < 1000; n++ {
					raw, data, rerr := events.Next()
					want := raw
					if len(raw) > 0 && injected {
						if referenceEvent(ref, data) == ChunkUsageOnly {
							want = nil
						} else if from, to, _ := usageCut(raw, ref, nil); from >= 0 {
							want = append(append([]byte(nil), raw[:from]...), raw[to:]...)
						}
					} else if len(raw) > 0 {
						referenceEvent(ref, data)
					}
					got, err := r.Next()
					if err != rerr && (err == nil || rerr == nil || err.Error() != rerr.Error()) {
						t.Fatalf("event %d: error %v, want %v", n, err, rerr)
					}
					if !bytes.Equal(got, want) {
						start, end := dataLine(raw)
						if start >= 0 && validJSON(raw[start:end]) {
							t.Fatalf("%s injected=%v event %q: passed on %q, want %q", op, injected, raw, got, want)
						}
					}
					if digestEvery > 0 && n%digestEvery == 0 {
						r.Digest()
					}
					if rerr != nil {
						break
					}
				}
				r.Response() // reads what is still held
				if got, want := stateOf(r.Stream), stateOf(ref); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s injected=%v: facts %+v, eager reading says %+v", op, injected, got, want)
				}
				r.Release()
			}
		}
	})
}

// TestRelayPassesOnBeforeReading shows the order Digest allows: up to the
// first content event, each event is read as it arrives (FirstContent says
// when to send it); after it, an event's bytes are out of Next before the
// event is read, and the content time stays the first content's arrival.
func TestRelayPassesOnBeforeReading(t *testing.T) {
	second := strings.Replace(benchChunk, `" harbor"`, `" bay"`, 1)
	stream := "data: " + benchChunk + "\n\ndata: " + second + "\n\ndata: [DONE]\n\n"
	start := time.Now()
	r := NewRelay(llmscope.OpChat, bytes.NewReader([]byte(stream)), start, true, 1<<10)
	defer r.Release()
	out, err := r.Next()
	if err != nil || !bytes.Contains(out, []byte(`" harbor"`)) || bytes.Contains(out, usageKey) {
		t.Fatalf("first event %q, %v: want the chunk without its usage member", out, err)
	}
	arrived := time.Since(start)
	if !r.FirstContent() || r.Stream.Text() != " harbor" {
		t.Fatalf("first content event: FirstContent %v, text %q; want it read at once", r.FirstContent(), r.Stream.Text())
	}
	time.Sleep(20 * time.Millisecond)
	out, err = r.Next()
	if err != nil || !bytes.Contains(out, []byte(`" bay"`)) || bytes.Contains(out, usageKey) {
		t.Fatalf("second event %q, %v: want the chunk without its usage member", out, err)
	}
	if r.FirstContent() || r.Stream.Text() != " harbor" {
		t.Fatalf("second event: FirstContent %v, text %q; want it passed on unread", r.FirstContent(), r.Stream.Text())
	}
	r.Digest()
	if r.Stream.Text() != " harbor bay" {
		t.Fatalf("text after Digest %q", r.Stream.Text())
	}
	if ttft := r.TTFT(); ttft <= 0 || ttft > arrived {
		t.Errorf("TTFT %v: want the first content's arrival, at most %v", ttft, arrived)
	}
	if out, err := r.Next(); string(out) != "data: [DONE]\n\n" || err != nil {
		t.Fatalf("last event %q, %v", out, err)
	}
	if _, err := r.Next(); err != io.EOF || !r.Finished() {
		t.Fatalf("end: %v, finished %v", err, r.Finished())
	}
}

// TestTemplateResumes checks that the chunks after the first content chunk
// of a chat stream are read from their delta on, with the facts a full read
// gives, and that a chunk the template does not settle is read in full.
func TestTemplateResumes(t *testing.T) {
	head := benchChunk[:strings.Index(benchChunk, `"delta":`)+len(`"delta":`)]
	s := NewStream(llmscope.OpChat)
	s.SetTextLimit(1 << 10)
	if s.Event([]byte(benchChunk)) != ChunkContent || !s.tmpl.learned || string(s.tmpl.prefix) != head {
		t.Fatalf("first chunk: template %q (learned %v), want %q", s.tmpl.prefix, s.tmpl.learned, head)
	}
	for _, c := range []struct {
		rest    string
		resumed bool
		kind    Chunk
	}{
		{`{"content":" bay"},"logprobs":null,"finish_reason":null}],"usage":null}`, true, ChunkContent},
		{`{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"q"}`, true, ChunkOther},
		{`{"content":"x"},"finish_reason":null}],"error":{"type":"t"}}`, false, ChunkOther},
		{`{"content":"x"}},{"index":1,"delta":{}}],"usage":null}`, false, ChunkContent},
	} {
		data := []byte(head + c.rest)
		probe := NewStream(llmscope.OpChat)
		probe.tmpl, probe.ID, probe.Model = s.tmpl, s.ID, s.Model
		_, resumed := probe.resume(data)
		if resumed != c.resumed {
			t.Errorf("%s: resumed %v, want %v", c.rest, resumed, c.resumed)
		}
		if kind := s.Event(data); kind != c.kind {
			t.Errorf("%s: kind %v, want %v", c.rest, kind, c.kind)
		}
	}
	if s.Text() != " harbor bayx" || s.FinishReason != "stop" || s.ErrorType != "t" {
		t.Errorf("facts: text %q, finish %q, error %q", s.Text(), s.FinishReason, s.ErrorType)
	}
}

// TestRelayHidesEscapedUsageChunk: after the first token, an injected
// stream's usage-only chunk whose usage key is spelled with an escape is
// still dropped, not passed on with its "usage":null cut.
func TestRelayHidesEscapedUsageChunk(t *testing.T) {
	stream := "data: " + benchChunk + "\n\n" +
		`data: {"id":"a","us\u0061ge":{"prompt_tokens":3,"completion_tokens":2},"choices":[],"usage":null}` + "\n\n"
	r := NewRelay(llmscope.OpChat, strings.NewReader(stream), time.Now(), true, 1<<10)
	defer r.Release()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if out, _ := r.Next(); len(out) != 0 {
		t.Errorf("usage-only chunk passed on: %q", out)
	}
	if u := r.Response().Usage; u.InputTokens != 3 || u.OutputTokens != 2 {
		t.Errorf("usage %+v, want 3 in and 2 out", u)
	}
}

// TestRelayBoundsPendingEvents: events without data (comments, pings) do not
// pile up unread in a relay nobody digests (the SDK transport's), and a
// relay given back to the pool does not keep a large list.
func TestRelayBoundsPendingEvents(t *testing.T) {
	stream := "data: " + benchChunk + "\n\n" + strings.Repeat(":\n\n", 20_000)
	r := NewRelay(llmscope.OpChat, strings.NewReader(stream), time.Now(), false, 1<<10)
	most := 0
	for {
		_, err := r.Next()
		most = max(most, len(r.pends))
		if err != nil {
			break
		}
	}
	if most > maxPendingEvents {
		t.Errorf("%d events held unread, want at most %d", most, maxPendingEvents)
	}
	r.Release()
}
