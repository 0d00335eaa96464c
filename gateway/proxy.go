package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"llmscope"
	"llmscope/openai"
)

// exchange is the state of one proxied request.
type exchange struct {
	call     *llmscope.Call
	t0       time.Time
	overhead time.Duration // time llmscope itself spent
	body     reqBody       // holds the request body (pooled, charged to the budget)
	upBody   *sentBody     // the body as handed to the transport
	sent     []byte        // the body as sent upstream: in body's memory, or (rarely) its own
	extra    int64         // bytes charged for sent when it has memory of its own
	up       *upstream     // where the request goes, and its API
	req      openai.Request
	hasBody  bool  // the request came with a body (possibly empty)
	injected bool  // llmscope added stream_options.include_usage
	released bool  // the transport frees body once sent (releaseOnSend)
	probing  int64 // bytes of body counted in Gateway.probing
	resp     openai.Response
	rt       *routing // the route's plan, when Config.Router routes the request
	ticket   Ticket   // Config.Admit's, when it admitted the request with one
}

var (
	bufPool   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	chunkPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}
)

// maxBatch bounds the bytes of stream events relayed in one write.
const maxBatch = 32 << 10

// maxPooled keeps huge buffers out of the pool so one large request does not
// pin its memory for the life of the process.
const maxPooled = 1 << 20

// sentBody is a request body that tells when the transport is done with it:
// the transport closes a request body once it has sent it or given up.
type sentBody struct {
	*bytes.Reader
	closed  atomic.Bool
	onClose func() // run once, by the first Close
}

// Close implements io.Closer.
func (b *sentBody) Close() error {
	if !b.closed.Swap(true) && b.onClose != nil {
		b.onClose()
	}
	return nil
}

func putBuf(b *bytes.Buffer) {
	if b != nil && b.Cap() <= maxPooled {
		b.Reset()
		bufPool.Put(b)
	}
}

// ServeHTTP proxies one /v1/* request and records it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.inflight.Add(1)
	defer g.inflight.Done()
	if trace.IsEnabled() {
		// One task per request, so an execution trace (serve --pprof,
		// /debug/pprof/trace) shows each request's latency and what ran
		// meanwhile.
		ctx, task := trace.NewTask(r.Context(), "llmscope.request")
		defer task.End()
		r = r.WithContext(ctx)
	}
	x := &exchange{t0: time.Now(), up: g.upstreamFor(r.URL.Path)}
	api := x.up.api
	op, allowed := api.Operation(r.Method, r.URL.Path)
	c := &llmscope.Call{
		ID:         llmscope.NewID(),
		Start:      x.t0,
		Operation:  op,
		Provider:   x.up.provider,
		Endpoint:   r.URL.Path,
		Experiment: g.cfg.Experiment,
	}
	c.TraceID = llmscope.TraceIDFor(c.ID)
	x.call = c
	openai.ReadLabels(r.Header, c)
	openai.ApplyClient(r.Context(), c) // the key's user, name and team: no header can forge them
	api.Describe(r, c)
	w.Header().Set(HeaderCallID, c.ID)
	defer g.freeBody(x)

	if bad := badPath(r); bad != "" {
		g.fail(w, x, http.StatusBadRequest, "invalid_request_error", "invalid_path", bad)
		return
	}
	if passedThrough(r.Header.Get(HeaderVia), g.id) {
		g.fail(w, x, http.StatusLoopDetected, "invalid_request_error", "loop_detected",
			"this request already passed through this gateway: its upstream points back at it")
		return
	}
	if allowed != "" {
		w.Header().Set("Allow", allowed)
		g.fail(w, x, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
			"method "+r.Method+" is not allowed on "+r.URL.Path)
		return
	}
	if err := g.readBody(w, r, x); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			g.fail(w, x, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				"request body exceeds the limit of "+strconv.FormatInt(g.cfg.MaxBodyBytes, 10)+" bytes")
		case errors.Is(err, errOverloaded):
			w.Header().Set("Connection", "close") // the rest of the body is not waited for
			w.Header().Set("Retry-After", "1")
			g.fail(w, x, http.StatusServiceUnavailable, "server_error", "overloaded",
				"llmscope is holding too many request bodies; retry shortly")
		case isTimeout(err):
			w.Header().Set("Connection", "close")
			g.fail(w, x, http.StatusRequestTimeout, "invalid_request_error", "body_timeout",
				"the request body did not arrive within "+g.cfg.BodyTimeout.String())
		case r.Context().Err() != nil:
			c.ErrorType, c.Status = llmscope.ErrTypeCancelled, 499
			g.finish(x)
		default:
			g.fail(w, x, http.StatusBadRequest, "invalid_request_error", "bad_request_body", "read request body: "+err.Error())
		}
		return
	}
	if g.cfg.Admit != nil && !g.admit(w, r, x) {
		return // refused, answered and recorded
	}

	var resp *http.Response
	if g.cfg.Router != nil {
		var routed bool
		if resp, routed = g.routeRequest(w, r, x); routed {
			if resp == nil {
				return // answered with an error, and recorded
			}
			defer resp.Body.Close()
			g.respond(w, r, x, resp)
			return
		}
	}
	up, err := g.upstreamRequest(r, x)
	if err != nil {
		g.log.Warn("build upstream request", "call_id", c.ID, "err", redact(err))
		g.fail(w, x, http.StatusInternalServerError, "server_error", "bad_request", "the request could not be forwarded")
		return
	}
	if x.hasBody && !g.needsBody(x) {
		g.releaseOnSend(x)
	}
	x.overhead += time.Since(x.t0)
	resp, err = g.transport.RoundTrip(up)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			c.ErrorType, c.Status = llmscope.ErrTypeCancelled, 499
			g.finish(x)
		case isTimeout(err):
			g.log.Warn("upstream timed out", "call_id", c.ID, "err", redact(err))
			g.fail(w, x, http.StatusGatewayTimeout, "upstream_error", llmscope.ErrTypeTimeout, "upstream timed out")
		default:
			g.log.Warn("upstream unreachable", "call_id", c.ID, "err", redact(err))
			g.fail(w, x, http.StatusBadGateway, "upstream_error", llmscope.ErrTypeUnreachable, "upstream unreachable")
		}
		return
	}
	defer resp.Body.Close()
	g.respond(w, r, x, resp)
}

// respond relays resp, the upstream's answer, to the client and records
// the call.
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, x *exchange, resp *http.Response) {
	c := x.call
	p0 := time.Now()
	c.Status = resp.StatusCode
	if resp.StatusCode >= 400 {
		c.ErrorType = strconv.Itoa(resp.StatusCode)
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	c.Stream = stream || x.req.Stream
	h := w.Header()
	copyHeader(h, resp.Header)
	h.Set(HeaderCallID, c.ID) // an upstream gateway's id must not replace ours
	if x.ticket != nil {
		x.ticket.Header(h) // our x-ratelimit-* figures win over the upstream's
	}
	if stream && x.injected {
		h.Del("Content-Length")
	}
	x.overhead += time.Since(p0)
	w.WriteHeader(resp.StatusCode)
	if stream {
		g.relayStream(w, r, resp, x)
	} else {
		g.relayBody(w, r, resp, x)
	}
}

// passedThrough reports whether id is one of the comma-separated items of
// via.
func passedThrough(via, id string) bool {
	for via != "" {
		var item string
		item, via, _ = strings.Cut(via, ",")
		if item == id {
			return true
		}
	}
	return false
}

// readBody reads the request body into x.body under the size limit, the
// budget of buffered bytes and the body deadline, and parses it. A body
// that is not JSON is kept as it is, with empty params.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, x *exchange) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		return &http.MaxBytesError{Limit: g.cfg.MaxBodyBytes}
	}
	x.hasBody = true
	t := time.Now()
	// A deadline on this body alone: the server's ReadTimeout would also
	// end long streams. It is lifted once the body is read, and left to
	// expire when reading failed, so the server never waits for the rest.
	// Writers that cannot set one (tests, adapters) read without.
	deadline := setReadDeadline(w, t.Add(g.cfg.BodyTimeout))
	err := x.body.read(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes), g.budget)
	if deadline && err == nil {
		setReadDeadline(w, time.Time{})
	}
	x.overhead -= time.Since(t) // receiving the body is the client's time, not ours
	x.sent = x.body.buf
	if err != nil {
		return err
	}
	if x.call.Operation == llmscope.OpModels || x.call.Operation == llmscope.OpOther && len(x.sent) == 0 {
		return nil
	}
	api := x.up.api
	x.req = api.ParseRequest(r, x.sent)
	c := x.call
	c.RequestModel = x.req.Model
	c.Stream = x.req.Stream
	c.Params = x.req.Params
	if g.cfg.Capture && x.req.Valid {
		c.Input, c.Tools = api.Capture(x.sent, g.cfg.CaptureMaxBytes)
	}
	if x.req.Stream && !x.req.IncludeUsage && !g.cfg.DisableUsageInjection && api.InjectsUsage() &&
		(c.Operation == llmscope.OpChat || c.Operation == llmscope.OpTextCompletion) {
		g.injectUsage(x)
	}
	return nil
}

// injectUsage adds stream_options.include_usage to the body sent upstream,
// in the body's own buffer when it has room (made under the budget); a copy
// that cannot be charged to the budget is not sent.
func (g *Gateway) injectUsage(x *exchange) {
	if !x.body.room(len(`,"stream_options":{"include_usage":true}`), g.budget) {
		return // no injection: the usage is estimated instead
	}
	x.sent = x.body.buf
	b, err := x.req.InjectUsage(x.sent)
	if err != nil {
		return
	}
	if len(b) > 0 && len(x.sent) > 0 && &b[0] != &x.sent[0] {
		// A copy of its own (a body that already had stream_options).
		if !g.budget.reserve(int64(cap(b))) {
			return
		}
		x.extra = int64(cap(b))
	}
	x.sent = b // x.body must not be written to any more
	x.injected = true
}

// upstreamRequest builds the request sent upstream: same method, path
// (API.Target under the upstream's base), query and body; headers minus
// hop-by-hop, llmscope's own and Accept-Encoding; the client's credentials
// replaced (API.SetKey) when the upstream has a key and the rule of
// Config.PassAuthorization allows.
func (g *Gateway) upstreamRequest(r *http.Request, x *exchange) (*http.Request, error) {
	up, err := g.newUpstream(r, x, x.up.api.Target(x.up.base, r), x.sent)
	if err != nil {
		return nil, err
	}
	if x.up.key != "" {
		if _, byKey := llmscope.ClientFrom(r.Context()); byKey || !g.cfg.PassAuthorization {
			x.up.api.SetKey(up, x.up.key)
		}
	}
	return up, nil
}

// newUpstream builds a request to target with sent as its body (when the
// client's request had one) and the client's headers minus hop-by-hop ones,
// Accept-Encoding, cookies and llmscope's own; credentials stay as the
// client sent them.
func (g *Gateway) newUpstream(r *http.Request, x *exchange, target string, sent []byte) (*http.Request, error) {
	var body io.Reader = http.NoBody
	if x.hasBody {
		x.upBody = &sentBody{Reader: bytes.NewReader(sent)}
		body = x.upBody
	}
	up, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		return nil, err
	}
	if x.hasBody {
		up.ContentLength = int64(len(sent))
	}
	for k, vs := range r.Header {
		// Cookies belong to llmscope's own pages (its session), never to
		// the upstream.
		if hopByHop(k) || k == "Accept-Encoding" || k == "Cookie" || strings.HasPrefix(k, "X-Llmscope-") {
			continue
		}
		up.Header[k] = vs
	}
	via := g.id
	if prev := r.Header.Get(HeaderVia); prev != "" {
		via = prev + "," + g.id
	}
	up.Header.Set(HeaderVia, via)
	return up, nil
}

// relayBody copies a non-streamed answer to the client as it arrives,
// keeping (openai.Keeper) what is needed to read its usage.
func (g *Gateway) relayBody(w http.ResponseWriter, r *http.Request, resp *http.Response, x *exchange) {
	kept := bufPool.Get().(*bytes.Buffer)
	defer putBuf(kept)
	chunkp := chunkPool.Get().(*[32 << 10]byte)
	defer chunkPool.Put(chunkp)
	chunk := chunkp[:]
	keep := openai.Keeper{Buf: kept}
	for {
		n, err := resp.Body.Read(chunk)
		if n > 0 {
			keep.Write(chunk[:n])
			if _, werr := w.Write(chunk[:n]); werr != nil {
				x.call.ErrorType = llmscope.ErrTypeCancelled
				break
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if r.Context().Err() != nil {
				x.call.ErrorType = llmscope.ErrTypeCancelled
			} else {
				x.call.ErrorType = llmscope.ErrTypeStream
			}
			break
		}
	}
	_ = http.NewResponseController(w).Flush()
	p0 := time.Now()
	x.resp.SetTextLimit(g.fin.TextLimit())
	if resp.Header.Get("Content-Encoding") == "" {
		x.up.api.ReadBody(&x.resp, x.call.Operation, keep.Buf.Bytes(), !keep.Overflowed())
	}
	x.overhead += time.Since(p0)
	g.finish(x)
	if x.call.ErrorType == llmscope.ErrTypeStream {
		panic(http.ErrAbortHandler) // the client must see the break too
	}
}

// relayStream forwards an SSE answer event by event, flushing each one, and
// reads TTFT, usage and finish reason off it on the way.
func (g *Gateway) relayStream(w http.ResponseWriter, r *http.Request, resp *http.Response, x *exchange) {
	c := x.call
	rc := http.NewResponseController(w)
	var relay *openai.Relay
	if ev := x.up.api.NewEvents(c.Operation, g.fin.TextLimit()); ev != nil {
		relay = openai.NewEventsRelay(ev, resp.Body, x.t0)
	} else {
		relay = openai.NewRelay(c.Operation, resp.Body, x.t0, x.injected, g.fin.TextLimit())
	}
	// Events that arrived together leave in one write and one flush, as a
	// byte-copying proxy would send them, except that the first token
	// leaves at once; each is read (Digest) once the client has it.
	batch := bufPool.Get().(*bytes.Buffer)
	defer putBuf(batch)
	for {
		out, err := relay.Next()
		batch.Write(out)
		if batch.Len() > 0 && (relay.Buffered() == 0 || relay.FirstContent() || batch.Len() >= maxBatch || err != nil) {
			_, werr := w.Write(batch.Bytes())
			batch.Reset()
			if werr == nil {
				werr = rc.Flush()
			}
			if werr != nil {
				c.ErrorType = llmscope.ErrTypeCancelled
				break
			}
			relay.Digest()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if relay.Finished() {
				break // the end marker was relayed: a client that hangs up now has the whole answer
			}
			if r.Context().Err() != nil {
				c.ErrorType = llmscope.ErrTypeCancelled
			} else {
				c.ErrorType = llmscope.ErrTypeStream
				g.log.Warn("upstream stream broke", "call_id", c.ID, "err", redact(err))
			}
			break
		}
	}
	c.TTFTMS = ms(relay.TTFT())
	x.overhead += relay.Work()
	x.resp = *relay.Response()
	relay.Release()
	g.finish(x)
	if c.ErrorType == llmscope.ErrTypeStream {
		panic(http.ErrAbortHandler) // the client must see the break too
	}
}

// fail answers with an error raised by llmscope itself, in the shape of
// the request's API (OpenAI's error body for OpenAI), and records the call.
func (g *Gateway) fail(w http.ResponseWriter, x *exchange, status int, typ, code, msg string) {
	x.call.Status = status
	x.call.ErrorType = code
	x.up.api.WriteError(w, status, typ, code, msg)
	g.finish(x)
}

// finish times the call and hands it to the Finisher, which completes it
// from the response, estimates missing usage off the request path, prices
// it and records it.
func (g *Gateway) finish(x *exchange) {
	c := x.call
	c.DurationMS = ms(time.Since(x.t0))
	c.OverheadMS = ms(max(x.overhead, 0))
	if x.rt != nil {
		g.finishPlan(x)
	}
	g.learnUsage(x)
	g.fin.Finish(c, x.req, x.sent, &x.resp)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// isTimeout reports whether err is a deadline or timeout of the upstream.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// redact returns err for a log line without the query of a URL it names: a
// query may hold a provider key (Gemini's ?key=).
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	u.User = nil
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}
