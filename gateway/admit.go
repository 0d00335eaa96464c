package gateway

import (
	"context"
	"net/http"
	"sync"

	"llmscope"
)

// Admitter decides whether a request may go upstream (budgets, rate limits,
// a key's models: package budget's Gate implements it). The gateway asks it
// once per request, after the body is parsed and before anything is routed
// or forwarded; a nil Config.Admit costs nothing.
type Admitter interface {
	// Admit decides on the request a, whose Call carries what the request
	// decides (operation, provider, model, params, stream, experiment,
	// user, key, team). It may set headers on h, the answer's headers
	// (x-ratelimit-*): they stay on every answer to the request, the
	// upstream's included. It returns a Ticket to admit (nil admits
	// without one) or a Refusal, never both.
	Admit(ctx context.Context, a *Admission, h http.Header) (Ticket, *Refusal)
}

// Admission is what an Admitter sees of a request. Body and Call are the
// gateway's: read them during Admit only, never write them.
type Admission struct {
	Call *llmscope.Call
	Body []byte // the request body as the client sent it (nil: none)
}

// Ticket is an admitted request's hold on its budgets and rate limits.
type Ticket interface {
	// Header sets the ticket's headers on h again (the gateway calls it
	// after copying the upstream's headers, so that its x-ratelimit-*
	// figures win).
	Header(h http.Header)
	// Done settles the ticket with the call as recorded: after usage and
	// cost are known (c.Cost nil: unknown), or after the gateway answered
	// with an error of its own. The gateway calls it exactly once, from
	// the sink path, never on the request path.
	Done(c *llmscope.Call)
}

// Refusal is an Admitter's no. The gateway answers Status with the error
// Type, Code and Message in the request's API error shape, with Header
// added, records the call (status Status, error type Code) and forwards
// nothing.
type Refusal struct {
	Status     int
	Type, Code string
	Message    string
	Header     http.Header
}

// admit asks Config.Admit about x's request; false means it was refused,
// answered and recorded.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	t, ref := g.cfg.Admit.Admit(r.Context(), &Admission{Call: x.call, Body: x.sent}, w.Header())
	if ref != nil {
		h := w.Header()
		for k, vs := range ref.Header {
			h[k] = vs
		}
		g.fail(w, x, ref.Status, ref.Type, ref.Code, ref.Message)
		return false
	}
	if t != nil {
		x.ticket = t
		g.tickets.Store(x.call, t)
	}
	return true
}

// settleSink hands each recorded call on to next, after settling the
// ticket of its request (the Finisher records a call once usage and cost
// are known, possibly off the request path).
type settleSink struct {
	next    llmscope.Sink
	tickets *sync.Map // *llmscope.Call → Ticket
}

// Record implements llmscope.Sink.
func (s settleSink) Record(c *llmscope.Call) {
	if t, ok := s.tickets.LoadAndDelete(c); ok {
		t.(Ticket).Done(c)
	}
	s.next.Record(c)
}
