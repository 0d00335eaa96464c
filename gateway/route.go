package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/sjson"

	"llmscope"
	"llmscope/anthropic"
	"llmscope/route"
)

// Routing (Config.Router): a request whose model a route matches goes to
// that route's deployments instead of its API's one upstream, with retries,
// failover and fallbacks decided by package route. The body is kept until
// the plan ends, so every attempt sends it again. A streamed answer's first
// bytes are read before anything reaches the client, so a stream that
// breaks before them is retried; once bytes reached the client the answer
// is final. The call records the deployment that answered (Upstream), the
// number of attempts and each attempt (Tries).

// routeAPI names a gateway API the way route's config does.
func routeAPI(api API) string {
	switch api.Provider() {
	case anthropic.Provider:
		return route.APIAnthropic
	case GeminiProvider:
		return route.APIGemini
	case AzureProvider:
		return route.APIAzure
	}
	return route.APIOpenAI
}

// apiOf returns the gateway API of a deployment's route API name.
func apiOf(name string) API {
	switch name {
	case route.APIAnthropic:
		return Anthropic()
	case route.APIGemini:
		return Gemini()
	case route.APIAzure:
		return Azure(false)
	}
	return OpenAI()
}

// errNoFirstByte is the Outcome.Err of a streamed answer that ended before
// its first byte.
var errNoFirstByte = errors.New("stream ended before its first byte")

// routeRequest sends x's request along its route when one matches its
// model: routed is false when none does (the caller forwards it as
// usual). With routed true, resp is the answer to relay, or nil when the
// call has already been answered with an error and recorded.
func (g *Gateway) routeRequest(w http.ResponseWriter, r *http.Request, x *exchange) (resp *http.Response, routed bool) {
	model := x.req.Model
	plan, err := g.cfg.Router.Plan(model, routeAPI(x.up.api))
	if err != nil {
		return nil, false // route.ErrNoRoute: no route for this model and API
	}
	x.rt = &routing{plan: plan}
	var lastErr error
	var timedOut bool
	for {
		d, err := plan.Next(r.Context())
		if err != nil {
			if r.Context().Err() == nil && lastErr == nil {
				lastErr = err
			}
			break
		}
		p0 := time.Now()
		up, err := g.attemptRequest(r, x, d)
		if err != nil {
			// The gateway's own failure, not the deployment's: answered
			// at once, never counted against the deployment.
			plan.Close()
			if errors.Is(err, errOverloaded) {
				w.Header().Set("Retry-After", "1")
				g.fail(w, x, http.StatusServiceUnavailable, "server_error", "overloaded",
					"llmscope is holding too many request bodies; retry shortly")
				return nil, true
			}
			g.log.Warn("build upstream request", "call_id", x.call.ID, "upstream", d.Name, "err", redact(err))
			g.fail(w, x, http.StatusInternalServerError, "server_error", "bad_request", "the request could not be forwarded")
			return nil, true
		}
		x.overhead += time.Since(p0)
		if x.upBody != nil {
			x.rt.bodies = append(x.rt.bodies, x.upBody)
		}
		var attempt context.CancelFunc
		up, attempt, timedOut, resp, err = g.send(up, d.Timeout)
		if attempt != nil {
			x.rt.cancels = append(x.rt.cancels, attempt)
		}
		o := route.Outcome{Err: err, Timeout: timedOut}
		if err == nil {
			o.Status, o.Header = resp.StatusCode, resp.Header
			if resp.StatusCode < 400 && isEventStream(resp) {
				if perr := peekFirstByte(resp); perr != nil {
					o.Err = perr
				} else {
					// Reported once relayed (finishPlan): whether it broke.
					x.rt.pending = true
					break
				}
			}
		}
		if !plan.Report(o) {
			if o.Err != nil {
				if resp != nil {
					resp.Body.Close()
					resp = nil
				}
				lastErr = o.Err
			}
			break
		}
		if resp != nil {
			resp.Body.Close()
			resp = nil
		}
		lastErr = o.Err
		if lastErr == nil {
			lastErr = errors.New("upstream answered " + strconv.Itoa(o.Status))
		}
	}
	if resp != nil {
		return resp, true
	}
	switch {
	case r.Context().Err() != nil:
		x.call.ErrorType, x.call.Status = llmscope.ErrTypeCancelled, 499
		g.finish(x)
	case timedOut || isTimeout(lastErr): // the last attempt's
		g.log.Warn("every upstream of the route timed out", "call_id", x.call.ID, "route", plan.Route(), "err", redact(lastErr))
		g.fail(w, x, http.StatusGatewayTimeout, "upstream_error", llmscope.ErrTypeTimeout, "upstream timed out")
	default:
		g.log.Warn("no upstream of the route answered", "call_id", x.call.ID, "route", plan.Route(), "err", redact(lastErr))
		g.fail(w, x, http.StatusBadGateway, "upstream_error", llmscope.ErrTypeUnreachable, "upstream unreachable")
	}
	return nil, true
}

// send runs one attempt: the wait for response headers is bounded by
// timeout when it is set (else by the transport's). The attempt's context
// lives until cancel is called, after its answer has been relayed (cancel
// is nil without a timeout: the attempt ends with the request).
func (g *Gateway) send(up *http.Request, timeout time.Duration) (_ *http.Request, cancel context.CancelFunc, timedOut bool, resp *http.Response, err error) {
	if timeout <= 0 {
		// The transport's own header timeout applies; the attempt ends
		// with the request.
		resp, err = g.transport.RoundTrip(up)
		return up, nil, false, resp, err
	}
	ctx, cancel := context.WithCancel(up.Context())
	up = up.WithContext(ctx)
	timer := time.AfterFunc(timeout, cancel)
	resp, err = g.transport.RoundTrip(up)
	if !timer.Stop() {
		// Our timer, not the client, ended the attempt.
		timedOut = true
		if resp != nil {
			resp.Body.Close()
		}
		resp, err = nil, fmt.Errorf("no response headers within %v: %w", timeout, context.DeadlineExceeded)
	}
	return up, cancel, timedOut, resp, err
}

// isEventStream reports whether resp is a server-sent event stream.
func isEventStream(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
}

// peekFirstByte waits for the first bytes of resp's body and puts them
// back in front of it; the error says the body ended or broke first.
func peekFirstByte(resp *http.Response) error {
	var buf [512]byte
	n, err := resp.Body.Read(buf[:])
	for n == 0 && err == nil {
		n, err = resp.Body.Read(buf[:])
	}
	if n == 0 {
		if err == io.EOF {
			err = errNoFirstByte
		}
		resp.Body.Close()
		return err
	}
	first := bytes.Clone(buf[:n])
	if err != nil {
		resp.Body = &prefixed{first: first, rest: io.NopCloser(errReader{err}), orig: resp.Body}
	} else {
		resp.Body = &prefixed{first: first, rest: resp.Body, orig: resp.Body}
	}
	return nil
}

// prefixed is a body whose first bytes were read ahead.
type prefixed struct {
	first []byte
	rest  io.ReadCloser
	orig  io.Closer
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.rest.Read(b)
}

func (p *prefixed) Close() error { return p.orig.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// attemptRequest builds the upstream request of one attempt at deployment
// d: its URL, its key in its API's way, its model when it renames it.
func (g *Gateway) attemptRequest(r *http.Request, x *exchange, d *route.Deployment) (*http.Request, error) {
	reqAPI, dAPI := routeAPI(x.up.api), d.API
	api := apiOf(dAPI)
	base := strings.TrimRight(d.URL, "/")
	path := r.URL.EscapedPath()
	query := r.URL.RawQuery
	body := x.sent
	model := d.UpstreamModel(x.req.Model)
	switch {
	case reqAPI == route.APIOpenAI && dAPI == route.APIAzure:
		// OpenAI's paths on Azure's v1 surface: /openai/v1/…, the model
		// (its deployment) in the body.
		path = "/openai" + path
	case reqAPI == route.APIAzure && dAPI == route.APIOpenAI:
		dep, rest, ok := azureRest(r.URL.Path)
		if !ok {
			return nil, errors.New("not an Azure OpenAI path: " + r.URL.Path)
		}
		path = strings.TrimPrefix(rest, "/v1")
		query = dropQuery(query, "api-version")
		if d.Model == "" && dep != "" && x.req.Model == "" {
			model = dep // an Azure client names its model by the deployment
		}
	case dAPI == route.APIGemini && d.Model != "" && x.req.Model != "":
		// Gemini names the model in the path: /v1beta/models/{model}:method.
		path = strings.Replace(path, "/models/"+x.req.Model+":", "/models/"+d.Model+":", 1)
	case dAPI == route.APIAzure && d.Model != "":
		if dep, _, ok := azureRest(r.URL.Path); ok && dep != "" {
			path = strings.Replace(path, "/deployments/"+dep+"/", "/deployments/"+d.Model+"/", 1)
		}
	}
	if model != x.req.Model && dAPI != route.APIGemini && x.req.Valid && model != "" {
		// The renamed body is a copy, charged to the body budget like the
		// original until the call ends.
		n := int64(len(body) + len(model) + 16)
		if !g.budget.reserve(n) {
			return nil, errOverloaded
		}
		x.rt.held += n
		b, err := sjson.SetBytes(bytes.Clone(body), "model", model)
		if err != nil {
			return nil, err
		}
		body = b
	}
	var target string
	if dAPI == reqAPI && dAPI != route.APIAzure && path == r.URL.EscapedPath() {
		target = api.Target(base, r)
	} else {
		target = base + path
		if query != "" {
			target += "?" + query
		}
	}
	up, err := g.newUpstream(r, x, target, body)
	if err != nil {
		return nil, err
	}
	if key := d.Key(); key != "" {
		if _, byKey := llmscope.ClientFrom(r.Context()); byKey || !g.cfg.PassAuthorization {
			api.SetKey(up, key)
		}
	}
	return up, nil
}

// dropQuery removes the parameter name from a raw query.
func dropQuery(raw, name string) string {
	var out []string
	for _, kv := range strings.Split(raw, "&") {
		if k, _, _ := strings.Cut(kv, "="); k != name && kv != "" {
			out = append(out, kv)
		}
	}
	return strings.Join(out, "&")
}

// finishPlan reports a relayed streamed answer to the plan (broken or
// not) and records the call's upstream and attempts.
func (g *Gateway) finishPlan(x *exchange) {
	p := x.rt.plan
	if x.rt.pending {
		x.rt.pending = false
		o := route.Outcome{Status: x.call.Status, Committed: true}
		switch x.call.ErrorType {
		case llmscope.ErrTypeStream:
			o.Err = errors.New("stream broke")
		case llmscope.ErrTypeCancelled:
			o.Err = context.Canceled
		}
		p.Report(o)
	}
	p.Close()
	c := x.call
	if last := p.Last(); last != nil {
		c.Upstream = last.Name
		c.Provider = apiOf(last.API).Provider()
	}
	attempts := p.Attempts()
	c.Attempts = len(attempts)
	c.Tries = make([]llmscope.Try, len(attempts))
	for i, a := range attempts {
		c.Tries[i] = llmscope.Try{Upstream: a.Deployment, Start: a.Start, DurationMS: ms(a.Duration),
			Status: a.Status, Outcome: string(a.Kind), Retried: a.Retried}
	}
	for _, cancel := range x.rt.cancels {
		cancel()
	}
	x.rt.cancels = nil
	g.budget.release(x.rt.held)
	x.rt.held = 0
}

// routing is the routing state of one request.
type routing struct {
	plan    *route.Plan
	pending bool                 // the last attempt's answer is being relayed, not yet reported
	cancels []context.CancelFunc // the attempts' contexts, ended with the call
	held    int64                // bytes of renamed bodies charged to the body budget
	bodies  []*sentBody          // every attempt's body, as handed to the transport
}

// sent reports whether the transport is done with every attempt's body,
// so that the request body's buffer may be reused.
func (rt *routing) sent() bool {
	for _, b := range rt.bodies {
		if !b.closed.Load() {
			return false
		}
	}
	return true
}
