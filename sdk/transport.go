package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"llmscope"
	"llmscope/openai"
)

// transport records the calls it carries; see Recorder.Transport.
type transport struct {
	base http.RoundTripper
	r    *Recorder
}

// apiPath returns the part of path from its "/v1/" on ("/v1/chat/completions"
// for ".../openai/v1/chat/completions"), or path itself.
func apiPath(path string) string {
	if i := strings.LastIndex(path, "/v1/"); i >= 0 {
		return path[i:]
	}
	return path
}

// RoundTrip sends req through the base transport and records the call. The
// response body is wrapped so that usage, finish reason and time to first
// token are read as the caller reads; the call is recorded when the body
// ends or is closed.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t0 := time.Now()
	cfg := &t.r.cfg
	path := apiPath(req.URL.Path)
	op, _ := openai.OperationOf(req.Method, path)
	l := from(req.Context())
	c := &llmscope.Call{
		ID: llmscope.NewID(), Start: t0, Operation: op, Provider: cfg.Provider, Endpoint: path,
		Experiment: cfg.Experiment, Run: l.run, User: l.user, Session: l.session,
	}
	// Labels come from the context, and from X-Llmscope-* request headers
	// as the gateway reads them (the context wins).
	ctxLabels := *c
	openai.ReadLabels(req.Header, c)
	for _, v := range [...]struct {
		dst *string
		ctx string
	}{{&c.Run, ctxLabels.Run}, {&c.User, ctxLabels.User}, {&c.Session, ctxLabels.Session}} {
		if v.ctx != "" {
			*v.dst = v.ctx
		}
	}
	if l.experiment != "" {
		c.Experiment = l.experiment
	}
	for k, v := range l.tags {
		c.Tags[k] = v
	}
	c.TraceID = llmscope.TraceIDFor(c.ID)

	var body []byte
	var readTime time.Duration
	// Only generation requests are read (to parse and maybe inject); other
	// bodies (file uploads) pass through untouched and unbuffered.
	if openai.Estimable(op) && req.Body != nil && req.Body != http.NoBody {
		rt := time.Now()
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		readTime = time.Since(rt)
		if err != nil {
			return nil, err
		}
		body = b
	}
	var pr openai.Request
	injected := false
	if openai.Estimable(op) {
		pr = openai.ParseRequest(body)
		c.RequestModel, c.Stream, c.Params = pr.Model, pr.Stream, pr.Params
		if cfg.Capture && pr.Valid {
			c.Input, c.Tools = openai.Capture(body, cfg.CaptureMaxBytes)
		}
		if pr.Stream && !pr.IncludeUsage && !cfg.DisableUsageInjection && (op == llmscope.OpChat || op == llmscope.OpTextCompletion) {
			if b, err := pr.InjectUsage(body); err == nil {
				body, injected = b, true
			}
		}
	}
	out := req.Clone(req.Context())
	for k := range out.Header {
		if strings.HasPrefix(k, "X-Llmscope-") {
			out.Header.Del(k)
		}
	}
	if openai.Estimable(op) && body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		sent := body
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(sent)), nil }
	}
	x := &exchange{t: t, c: c, req: pr, body: body, t0: t0, overhead: time.Since(t0) - readTime}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		switch {
		case req.Context().Err() != nil:
			c.ErrorType, c.Status = llmscope.ErrTypeCancelled, 499
		case errors.Is(err, context.DeadlineExceeded):
			c.ErrorType = llmscope.ErrTypeTimeout
		default:
			c.ErrorType = llmscope.ErrTypeUnreachable
		}
		x.finish(&openai.Response{}, 0)
		return nil, err
	}
	c.Status = resp.StatusCode
	resp.Header.Set("X-Llmscope-Call-Id", c.ID) // as the gateway does
	if resp.StatusCode >= 400 {
		c.ErrorType = strconv.Itoa(resp.StatusCode)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.Stream = true
		if injected {
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		}
		resp.Body = &sseBody{x: x, src: resp.Body, relay: openai.NewRelay(op, resp.Body, t0, injected, t.r.fin.TextLimit())}
		return resp, nil
	}
	resp.Body = &jsonBody{x: x, src: resp.Body, keep: openai.Keeper{Buf: new(bytes.Buffer)}, encoded: resp.Header.Get("Content-Encoding") != ""}
	return resp, nil
}

// exchange is one call in flight through the transport.
type exchange struct {
	t        *transport
	c        *llmscope.Call
	req      openai.Request
	body     []byte
	t0       time.Time
	overhead time.Duration
	once     sync.Once
}

// finish records the call once, from what was read of the response.
func (x *exchange) finish(res *openai.Response, work time.Duration) {
	x.once.Do(func() {
		x.c.DurationMS = ms(time.Since(x.t0))
		x.c.OverheadMS = ms(max(x.overhead+work, 0))
		x.t.r.fin.Finish(x.c, x.req, x.body, res)
	})
}

// sseBody hands the caller a streamed answer event by event, as the gateway
// would relay it, and records the call when the stream ends or is closed.
type sseBody struct {
	x       *exchange
	src     io.ReadCloser
	relay   *openai.Relay
	pending []byte
	err     error
	mu      sync.Mutex // guards the end of the call against a concurrent Close
}

func (b *sseBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		out, err := b.relay.Next()
		b.pending = append(b.pending[:0], out...)
		if err != nil {
			b.end(err)
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// end records how the stream ended; b.mu is held.
func (b *sseBody) end(err error) {
	if b.err != nil {
		return
	}
	b.err = err
	c := b.x.c
	complete := err == io.EOF || err == errClosed && b.relay.Finished()
	if !complete && c.ErrorType == "" {
		if contextDone(err) {
			c.ErrorType = llmscope.ErrTypeCancelled
		} else {
			c.ErrorType = llmscope.ErrTypeStream
		}
	}
	c.TTFTMS = ms(b.relay.TTFT())
	b.x.finish(b.relay.Response(), b.relay.Work())
	// b.err is set: Read and Close no longer touch the relay.
	b.relay.Release()
	b.relay = nil
}

// Close ends the stream; closed before its end, the call is recorded as
// cancelled.
func (b *sseBody) Close() error {
	err := b.src.Close() // first: it unblocks a Read in progress
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end(errClosed)
	return err
}

var errClosed = errors.New("sdk: body closed before the end of the stream")

func contextDone(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errClosed)
}

// jsonBody passes a non-streamed answer through and keeps what is needed to
// read its usage; the call is recorded at its end or when it is closed.
type jsonBody struct {
	x       *exchange
	src     io.ReadCloser
	keep    openai.Keeper
	encoded bool
	mu      sync.Mutex
	done    bool
}

func (b *jsonBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if n > 0 {
		b.mu.Lock()
		b.keep.Write(p[:n])
		b.mu.Unlock()
	}
	if err != nil {
		b.end(err)
	}
	return n, err
}

func (b *jsonBody) end(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	c := b.x.c
	// A client may decode the answer and close without reading to EOF: a
	// whole JSON document is a complete answer.
	complete := err == io.EOF || err == errClosed && !b.keep.Overflowed() && json.Valid(b.keep.Buf.Bytes())
	if !complete && c.ErrorType == "" {
		if contextDone(err) {
			c.ErrorType = llmscope.ErrTypeCancelled
		} else {
			c.ErrorType = llmscope.ErrTypeStream
		}
	}
	t := time.Now()
	var res openai.Response
	res.SetTextLimit(b.x.t.r.fin.TextLimit())
	if !b.encoded {
		b.keep.ReadInto(&res, c.Operation)
	}
	b.x.finish(&res, time.Since(t))
}

// Close ends the body; closed before its end, the call is recorded as
// cancelled.
func (b *jsonBody) Close() error {
	err := b.src.Close()
	b.end(errClosed)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
