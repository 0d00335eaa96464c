package openai

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventSize bounds one SSE event; a larger event is an error, so a broken
// upstream cannot make llmscope buffer without limit.
const MaxEventSize = 16 << 20

// ErrEventTooLarge is returned by EventReader.Next for an event over MaxEventSize.
var ErrEventTooLarge = errors.New("sse event too large")

// EventReader splits a text/event-stream into events, keeping each event's
// raw bytes (to forward unchanged) and its data payload (to parse).
type EventReader struct {
	r    *bufio.Reader
	raw  []byte
	data []byte
}

// NewEventReader returns an EventReader reading from r.
func NewEventReader(r io.Reader) *EventReader {
	return &EventReader{r: bufio.NewReaderSize(r, 4<<10)}
}

// reset makes e read r from its start, keeping e's buffers.
func (e *EventReader) reset(r io.Reader) {
	e.r.Reset(r)
	e.raw, e.data = e.raw[:0], e.data[:0]
}

// Next returns the next event: raw holds its lines including the blank line
// that ends it; data holds its data fields joined by "\n". Both are valid
// until the next call. At the end of the stream Next returns io.EOF, with any
// unterminated last event in raw. Any other error means the stream broke.
func (e *EventReader) Next() (raw, data []byte, err error) {
	e.raw = e.raw[:0]
	e.data = e.data[:0]
	hasData := false
	for {
		line, err := e.readLine()
		if err != nil {
			if err == io.EOF && len(e.raw) > 0 {
				return e.raw, e.data, io.EOF
			}
			return e.raw, e.data, err
		}
		start := len(e.raw)
		e.raw = append(e.raw, line...)
		content := bytes.TrimRight(e.raw[start:], "\r\n")
		if len(content) == 0 {
			if start == 0 {
				continue // stray blank line between events: forward with the next
			}
			return e.raw, e.data, nil
		}
		if v, ok := field(content, "data"); ok {
			if hasData {
				e.data = append(e.data, '\n')
			}
			e.data = append(e.data, v...)
			hasData = true
		}
	}
}

// Buffered reports how many bytes have arrived beyond the last event
// returned. When it is 0, the next event has not arrived yet, so a relay
// should flush what it wrote.
func (e *EventReader) Buffered() int { return e.r.Buffered() }

// readLine reads one line including its terminator, refusing lines that
// would push the event over MaxEventSize.
func (e *EventReader) readLine() ([]byte, error) {
	line, err := e.r.ReadSlice('\n')
	if err == nil || err == io.EOF && len(line) > 0 {
		if len(e.raw)+len(line) > MaxEventSize {
			return nil, ErrEventTooLarge
		}
		return line, nil
	}
	if err != bufio.ErrBufferFull {
		return nil, err
	}
	buf := append([]byte(nil), line...)
	for {
		line, err = e.r.ReadSlice('\n')
		buf = append(buf, line...)
		if len(e.raw)+len(buf) > MaxEventSize {
			return nil, ErrEventTooLarge
		}
		switch {
		case err == nil || err == io.EOF && len(buf) > 0:
			return buf, nil
		case err != bufio.ErrBufferFull:
			return nil, fmt.Errorf("read sse line: %w", err)
		}
	}
}

// field returns the value of an SSE line "name: value" (one optional space).
func field(line []byte, name string) ([]byte, bool) {
	if len(line) < len(name)+1 || string(line[:len(name)]) != name || line[len(name)] != ':' {
		return nil, false
	}
	v := line[len(name)+1:]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return v, true
}
