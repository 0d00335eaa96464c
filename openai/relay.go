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
	work     time.Duration // time spent in Next and Digest on llmscope's own work
	out      []byte        // an event with its usage member cut out
	ms       []member      // scratch for usageCut
	// Events passed on but not read yet (Digest): their data payloads one
	// after the other in pend, each one's end and arrival in pends.
	pend     []byte
	pends    []pending
	last     Chunk // what the last event read was
	firstNow bool  // the last Next's event was the first content event
}

// pending is an event passed on before it was read.
type pending struct {
	end int           // where its data ends in Relay.pend
	at  time.Duration // when it arrived, from the request
}

// maxPending and maxPendingEvents bound the data and the number of the
// events a relay holds unread; beyond either, Next reads them at once.
const (
	maxPending       = 64 << 10
	maxPendingEvents = 1024
)

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
func (r *Relay) Finished() bool {
	r.Digest()
	return r.facts.Finished()
}

// Response returns the facts gathered so far (Events.Result). The
// *Response stays valid after Release; r does not.
func (r *Relay) Response() *Response {
	r.Digest()
	return r.facts.Result()
}

var relayPool = sync.Pool{New: func() any { return &Relay{events: NewEventReader(nil)} }}

// maxPooledEvent keeps the buffers of huge events out of the pool.
const maxPooledEvent = 64 << 10

// Release gives the relay's buffers back for another relay. Neither r nor
// r.Stream may be used afterwards; the Response may, when copied out of
// r.Stream before.
func (r *Relay) Release() {
	e := r.events
	e.reset(nil)
	if cap(e.raw) > maxPooledEvent || cap(e.data) > maxPooledEvent || cap(r.out) > maxPooledEvent || cap(r.pend) > maxPooledEvent ||
		cap(r.pends) > maxPendingEvents {
		e.raw, e.data, r.out, r.pend, r.pends = nil, nil, nil, nil, nil
	}
	*r = Relay{events: e, out: r.out[:0], ms: r.ms[:0], pend: r.pend[:0], pends: r.pends[:0]}
	relayPool.Put(r)
}

// Next reads one event and returns the bytes to pass on (possibly none) and
// the read error: io.EOF at the end of the stream, anything else when it
// broke. Bytes and an error can come together. out is valid until the next
// call.
//
// Next decides what to pass on without reading the event when it can (the
// event needs no edit, or its only edit is the usual "usage":null of an
// injected include_usage) and keeps it for Digest: a caller that flushes
// what it wrote and then calls Digest sends each event before llmscope
// reads it. Events are always read in order, and each content event's time
// is its arrival.
func (r *Relay) Next() (out []byte, err error) {
	raw, data, err := r.events.Next()
	if len(raw) == 0 {
		r.digest()
		return nil, err
	}
	now := time.Now()
	at := now.Sub(r.start)
	if r.first == 0 {
		r.first = at
	}
	out = raw
	r.firstNow = false
	switch {
	case r.content == 0:
		// Until the first content event, each is read as it arrives, so
		// the caller knows when the first token is out (FirstContent).
		r.digest()
		r.firstNow = r.read(data, at) == ChunkContent
		if r.injected {
			out = r.cut(raw)
		}
	case !r.injected && len(data) <= maxPending:
		r.keep(data, at)
	case r.injected && len(data) <= maxPending:
		if from, to := nullUsageCut(raw); from >= 0 {
			r.out = append(append(r.out[:0], raw[:from]...), raw[to:]...)
			out = r.out
			r.keep(data, at)
			break
		}
		fallthrough
	default:
		r.digest()
		r.read(data, at)
		if r.injected {
			out = r.cut(raw)
		}
	}
	if len(r.pend) > maxPending || len(r.pends) >= maxPendingEvents {
		r.digest()
	}
	r.work += time.Since(now)
	return out, err
}

// cut returns what to pass on of raw, the event Stream just read, in a
// stream whose include_usage llmscope injected: nothing for the usage-only
// chunk, else the event without its usage member.
func (r *Relay) cut(raw []byte) []byte {
	if r.last == ChunkUsageOnly {
		return nil
	}
	var from, to int
	if from, to, r.ms = usageCut(raw, r.Stream, r.ms); from >= 0 {
		r.out = append(append(r.out[:0], raw[:from]...), raw[to:]...)
		return r.out
	}
	return raw
}

// FirstContent reports whether the event of the last Next was the first
// content event of the stream: the caller should send it at once.
func (r *Relay) FirstContent() bool { return r.firstNow }

// keep holds an event's data for Digest.
func (r *Relay) keep(data []byte, at time.Duration) {
	r.pend = append(r.pend, data...)
	r.pends = append(r.pends, pending{end: len(r.pend), at: at})
}

// Digest reads the events Next passed on without reading them.
func (r *Relay) Digest() {
	if len(r.pends) == 0 {
		return
	}
	t := time.Now()
	r.digest()
	r.work += time.Since(t)
}

func (r *Relay) digest() {
	from := 0
	for _, p := range r.pends {
		r.read(r.pend[from:p.end], p.at)
		from = p.end
	}
	r.pend, r.pends = r.pend[:0], r.pends[:0]
}

// read reads one event's data, which arrived at; its kind.
func (r *Relay) read(data []byte, at time.Duration) Chunk {
	kind := r.facts.Event(data)
	if kind == ChunkContent && r.content == 0 {
		r.content = at
	}
	r.last = kind
	return kind
}

// Buffered reports how many bytes of the next events have already arrived;
// when it is 0, a relay should flush what it wrote.
func (r *Relay) Buffered() int { return r.events.Buffered() }

// TTFT returns the time from the request to the first content event, or to
// the first event when none carried content; 0 when nothing arrived.
func (r *Relay) TTFT() time.Duration {
	r.Digest()
	if r.content > 0 {
		return r.content
	}
	return r.first
}

// Work returns the time Next and Digest spent on llmscope's own parsing.
func (r *Relay) Work() time.Duration {
	r.Digest()
	return r.work
}
