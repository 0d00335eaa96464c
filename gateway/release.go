package gateway

import (
	"sync/atomic"

	"llmscope"
)

// A request body is held after it is sent only while something may still
// need it: the usage estimate of an answer that comes without usage. Once
// the upstream has reported usage for a kind of call (operation, streamed or
// not), the bodies of later calls of that kind are released as soon as the
// transport has sent them, so memory follows the bodies being received and
// sent, not the time the upstream takes to answer. A completed answer
// without usage makes that kind hold its bodies again. Before the first
// answer of a kind, bodies are held too, up to probeBytes together (so a
// sequential start estimates every call, and a burst at start stays
// within bounds); beyond that they are released as if usage were reported.
//
// The price: a call whose body was released and whose answer still ends
// without usage (the client hung up mid-stream, the stream broke) has no
// input tokens to report, so its usage is recorded as unknown
// (Config.KeepRequestBodies keeps every body until its answer ends instead).

// usageKinds is the number of kinds of calls usageSeen tracks.
const usageKinds = 8

// usageSeen remembers, per kind of call, whether the upstream reported usage
// on its last completed answer of that kind: usageUnknown before the first.
type usageSeen [usageKinds]atomic.Int32

// The states of a kind of call in usageSeen.
const (
	usageUnknown = iota
	usageReported
	usageMissing
)

// probeBytes bounds the bodies held together while a kind's usage is
// unknown.
const probeBytes = 8 << 20

// usageKind returns the index of op and stream in usageSeen; -1 for an
// operation without usage.
func usageKind(op string, stream bool) int {
	var i int
	switch op {
	case llmscope.OpChat:
		i = 0
	case llmscope.OpTextCompletion:
		i = 1
	case llmscope.OpEmbeddings:
		i = 2
	case llmscope.OpResponses:
		i = 3
	default:
		return -1
	}
	if stream {
		i += 4
	}
	return i
}

// needsBody reports whether x's request body must be held until its answer
// ends: its call may need a usage estimate, which reads the body.
func (g *Gateway) needsBody(x *exchange) bool {
	if g.cfg.KeepRequestBodies {
		return true
	}
	if !x.req.Valid {
		return false // nothing to estimate from
	}
	k := usageKind(x.call.Operation, x.req.Stream)
	if k < 0 {
		return false
	}
	if x.req.Stream && !x.req.IncludeUsage && !x.injected {
		return true // nobody asked this stream for its usage
	}
	switch x.up.seen[k].Load() {
	case usageReported:
		return false
	case usageMissing:
		return true
	}
	n := x.body.charged + x.extra
	if g.probing.Add(n) > probeBytes {
		g.probing.Add(-n)
		return false
	}
	x.probing = n
	return true
}

// learnUsage records whether x's answer reported usage, when it completed
// normally (an error, a cancelled call or a broken stream says nothing of
// the upstream's habits).
func (g *Gateway) learnUsage(x *exchange) {
	c := x.call
	if c.Status >= 400 || c.Status == 0 || c.ErrorType != "" || !x.req.Valid {
		return
	}
	if x.req.Stream && !x.req.IncludeUsage && !x.injected {
		return
	}
	if k := usageKind(c.Operation, x.req.Stream); k >= 0 {
		state := int32(usageMissing)
		if x.resp.HasUsage {
			state = usageReported
		}
		if x.up.seen[k].Load() != state {
			x.up.seen[k].Store(state)
		}
	}
}

// releaseOnSend makes the transport free x's body as soon as it has sent it
// (or given up): x must not read x.sent or x.body afterwards, and the
// handler's own cleanup leaves them alone.
func (g *Gateway) releaseOnSend(x *exchange) {
	body, extra := &x.body, x.extra
	x.upBody.onClose = func() {
		body.free(g.budget, true)
		if extra > 0 {
			g.budget.release(extra)
		}
	}
	x.sent, x.extra = nil, 0
	x.released = true
}

// freeBody releases what x still holds of its request body when the handler
// ends. Reuse of the buffer waits for the transport to have closed it: an
// upstream may answer before reading the whole body.
func (g *Gateway) freeBody(x *exchange) {
	if x.probing > 0 {
		g.probing.Add(-x.probing)
	}
	if x.released {
		return // the transport frees it
	}
	sent := x.upBody == nil || x.upBody.closed.Load()
	if x.rt != nil {
		sent = sent && x.rt.sent() // a routed call sent its body once per attempt
	}
	x.body.free(g.budget, sent)
	if x.extra > 0 {
		g.budget.release(x.extra)
	}
}
