package openai

import (
	"io"
	"sync"
	"time"
)

// Relay reads a streamed (SSE) answer event by event and says, for each,
// what the client must receive: the event's bytes unchanged, or, when
// llmscope injected include_usage, the event without its usage member, or
// nothing for the extra usage-only chunk. On the way it gathers the call's
// facts (Events: an OpenAI Stream, or another provider's reader) and its
// time to first token. The gateway and the SDK transport both relay
// through it.
type Relay struct {
	Stream   *Stream // the OpenAI reader; nil when relaying another provider's stream
	facts    Events  // Stream, or another provider's reader
	events   *EventReader
	start    time.Time
	injected bool
	first    time.Duration // first event of any kind
	content  time.Duration // first content event
	work     time.Duration // time spent in Next on llmscope's own work
	out      []byte        // an event with its usage member cut out
	ms       []member      // scratch for usageCut
}

// NewRelay returns a Relay over body for operation op. start is when the
// request was received; injected says whether llmscope added include_usage.
func NewRelay(op string, body io.Reader, start time.Time, injected bool, textLimit int) *Relay {
	s := NewStream(op)
	s.SetTextLimit(textLimit)
	r := relayPool.Get().(*Relay)
	r.events.reset(body)
	r.Stream, r.facts, r.start, r.injected = s, s, start, injected
	return r
}

// NewEventsRelay returns a Relay over body that reads its events with ev,
// another provider's reader (its text limit already set); nothing is
// injected, so every event passes on unchanged.
func NewEventsRelay(ev Events, body io.Reader, start time.Time) *Relay {
	r := relayPool.Get().(*Relay)
	r.events.reset(body)
	r.facts, r.start = ev, start
	return r
}

// Finished reports whether the stream's end marker arrived (Events.Finished).
func (r *Relay) Finished() bool { return r.facts.Finished() }

// Response returns the facts gathered so far (Events.Result). The
// *Response stays valid after Release; r does not.
func (r *Relay) Response() *Response { return r.facts.Result() }

var relayPool = sync.Pool{New: func() any { return &Relay{events: NewEventReader(nil)} }}

// maxPooledEvent keeps the buffers of huge events out of the pool.
const maxPooledEvent = 64 << 10

// Release gives the relay's buffers back for another relay. Neither r nor
// r.Stream may be used afterwards; the Response may, when copied out of
// r.Stream before.
func (r *Relay) Release() {
	e := r.events
	e.reset(nil)
	if cap(e.raw) > maxPooledEvent || cap(e.data) > maxPooledEvent || cap(r.out) > maxPooledEvent {
		e.raw, e.data, r.out = nil, nil, nil
	}
	*r = Relay{events: e, out: r.out[:0], ms: r.ms[:0]}
	relayPool.Put(r)
}

// Next reads one event and returns the bytes to pass on (possibly none) and
// the read error: io.EOF at the end of the stream, anything else when it
// broke. Bytes and an error can come together. out is valid until the next
// call.
func (r *Relay) Next() (out []byte, err error) {
	raw, data, err := r.events.Next()
	if len(raw) == 0 {
		return nil, err
	}
	now := time.Now()
	kind := r.facts.Event(data)
	if r.first == 0 {
		r.first = now.Sub(r.start)
	}
	if kind == ChunkContent && r.content == 0 {
		r.content = now.Sub(r.start)
	}
	out = raw
	if r.injected {
		if kind == ChunkUsageOnly {
			out = nil
		} else {
			var from, to int
			if from, to, r.ms = usageCut(raw, r.Stream, r.ms); from >= 0 {
				r.out = append(append(r.out[:0], raw[:from]...), raw[to:]...)
				out = r.out
			}
		}
	}
	r.work += time.Since(now)
	return out, err
}

// Buffered reports how many bytes of the next events have already arrived;
// when it is 0, a relay should flush what it wrote.
func (r *Relay) Buffered() int { return r.events.Buffered() }

// TTFT returns the time from the request to the first content event, or to
// the first event when none carried content; 0 when nothing arrived.
func (r *Relay) TTFT() time.Duration {
	if r.content > 0 {
		return r.content
	}
	return r.first
}

// Work returns the time Next spent on llmscope's own parsing.
func (r *Relay) Work() time.Duration { return r.work }
