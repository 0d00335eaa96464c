package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Kind is one shape of request: a chat completion, streamed or not, with a
// one-line prompt or a large one.
type Kind struct {
	Name        string
	Stream      bool
	PromptBytes int // size of the user message; 0 means a one-line prompt
}

// Kinds are the request kinds the harness knows, in report order.
var Kinds = []Kind{
	{Name: "nonstream-small"},
	{Name: "nonstream-50k", PromptBytes: 50 << 10},
	{Name: "stream-small", Stream: true},
	{Name: "stream-50k", Stream: true, PromptBytes: 50 << 10},
}

// KindByName returns the Kind called name.
func KindByName(name string) (Kind, error) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Name
	}
	return Kind{}, fmt.Errorf("unknown request kind %q (known: %s)", name, strings.Join(names, ", "))
}

// Body returns the JSON body of a chat completion request of kind k. The
// same kind always gives the same bytes, so every target sees identical
// requests.
func (k Kind) Body() []byte {
	prompt := "Say something short."
	if k.PromptBytes > 0 {
		prompt = filler(k.PromptBytes)
	}
	req := map[string]any{
		"model":       "gpt-4o-mini",
		"temperature": 0.7,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a helpful assistant."},
			{"role": "user", "content": prompt},
		},
	}
	if k.Stream {
		req["stream"] = true
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(fmt.Sprintf("loadtest: marshal request: %v", err)) // only strings and numbers: cannot fail
	}
	return b
}

// filler returns n bytes of deterministic English-like text.
func filler(n int) string {
	words := strings.Fields(`the quick brown fox jumps over a lazy dog while seven
	engineers measure latency of every request through an observability
	gateway and count tokens cost errors time to first token in a table`)
	var b strings.Builder
	b.Grow(n + 16)
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[x%uint32(len(words))])
	}
	return b.String()[:n]
}

// errTruncated is returned for a stream that ended without "data: [DONE]".
var errTruncated = errors.New("stream ended without [DONE]")

// StatusError is returned for a response whose status is not 200.
type StatusError struct {
	Status int
	Body   string // the first bytes of the body
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Status, e.Body) }

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// do POSTs body to url and reads the whole response. For a stream it
// returns the time the first event with non-empty content arrived (zero
// for a non-stream), and an error when the stream does not end with
// "data: [DONE]". Any status but 200 is a *StatusError.
func do(ctx context.Context, hc *http.Client, url string, body []byte, stream bool) (first time.Time, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return first, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-llmscope-bench")
	resp, err := hc.Do(req)
	if err != nil {
		return first, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		_, _ = io.Copy(io.Discard, resp.Body)
		return first, &StatusError{Status: resp.StatusCode, Body: string(b)}
	}
	if !stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return first, fmt.Errorf("read body: %w", err)
		}
		return first, nil
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(resp.Body)
	defer func() { br.Reset(nil); readers.Put(br) }()
	done := false
	for {
		line, err := br.ReadSlice('\n')
		if first.IsZero() && hasContent(line) {
			first = time.Now()
		}
		if bytes.HasPrefix(line, []byte("data: [DONE]")) {
			done = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return first, fmt.Errorf("read stream: %w", err)
		}
	}
	if !done {
		return first, errTruncated
	}
	if first.IsZero() {
		return first, errors.New("stream had no content event")
	}
	return first, nil
}

// hasContent reports whether an SSE line is a data event carrying
// non-empty text content (a chat delta or a completion's text).
func hasContent(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("data: {")) {
		return false
	}
	for _, key := range [][]byte{[]byte(`"content":"`), []byte(`"text":"`)} {
		if i := bytes.Index(line, key); i >= 0 && i+len(key) < len(line) && line[i+len(key)] != '"' {
			return true
		}
	}
	return false
}

// NewClient returns an HTTP client for one target: its own connection pool
// holding up to conns idle keep-alive connections, no compression, no
// overall timeout (each request carries its own deadline).
func NewClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	t.DisableCompression = true
	t.IdleConnTimeout = 5 * time.Minute
	return &http.Client{Transport: t}
}
