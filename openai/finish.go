package openai

import (
	"bytes"
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"llmscope"
)

// Finisher completes calls and hands them on; the gateway and the SDK
// transport share it. It fills the fields a response decides (model, finish
// reason, usage, captured output), estimates usage the upstream did not
// report — on its own goroutine, so no response waits for the tokenizer,
// unless 1,024 estimates or 64 MiB of requests and answers wait already:
// then on the caller's, so memory stays bounded — redacts the call
// (Redactor.Call), sanitizes it (Call.Sanitize), prices it and gives it to
// the sink.
type Finisher struct {
	Sink          llmscope.Sink
	Pricer        llmscope.Pricer    // nil: cost stays null
	OnCostUnknown func(model string) // called for each call Pricer could not price
	Capture       bool
	CaptureMax    int
	Redactor      *llmscope.Redactor // nil: no redaction

	once         sync.Once
	estimators   chan struct{}
	pending      sync.WaitGroup
	pendingCalls atomic.Int64 // estimates waiting off the request path
	pendingBytes atomic.Int64 // the request and answer bytes they hold
}

// TextLimit returns how much response text to keep: enough to estimate
// usage, and the capture size when capture is on.
func (f *Finisher) TextLimit() int {
	const estimateText = 1 << 20
	if f.Capture {
		return max(f.CaptureMax, estimateText)
	}
	return estimateText
}

// Finish completes c from res and records it. req and body are the parsed
// and raw request (body is copied when it is needed later). A nil body
// with a valid req means the body was released before the answer ended:
// missing usage then stays unknown (Usage.Source "none").
func (f *Finisher) Finish(c *llmscope.Call, req Request, body []byte, res *Response) {
	f.once.Do(func() { f.estimators = make(chan struct{}, max(2, runtime.GOMAXPROCS(0))) })
	c.ResponseModel = res.Model
	c.FinishReason = res.FinishReason
	c.ResponseID, c.ResponseCreated, c.SystemFingerprint = res.ID, res.Created, res.SystemFingerprint
	if res.ServiceTier != "" {
		c.ServiceTier = res.ServiceTier
	}
	if c.Stream {
		c.Chunks = res.Chunks
	}
	c.ErrorCode, c.ErrorMessage = res.ErrorCode, res.ErrorMessage
	if c.ErrorCode == "" {
		c.ErrorCode = res.ErrorType
	}
	if len(req.Invalid) > 0 {
		// Recorded as sent by the client; Sanitize makes them storable.
		if c.Tags == nil {
			c.Tags = make(map[string]string, len(req.Invalid))
		}
		for _, p := range req.Invalid {
			c.Tags[llmscope.TagInvalidPrefix+p.Name] = p.Raw
		}
	}
	if res.ErrorType != "" && c.ErrorType == "" {
		// An error reported inside a successful response (a stream's error
		// event, a failed Responses API object).
		c.ErrorType = llmscope.ErrTypeUpstream
	}
	if f.Capture {
		c.Output = Truncate(res.Text(), f.CaptureMax)
		if calls := res.ToolCalls(); len(calls) <= f.CaptureMax || f.CaptureMax <= 0 {
			c.ToolCalls = calls
		}
	}
	switch {
	case res.HasUsage:
		c.Usage = res.Usage
	case c.Status < 400 && c.Status != 0 && req.Valid && body != nil && Estimable(c.Operation):
		text := res.Text()
		size := int64(len(body) + len(text))
		if !f.hold(size) {
			// Too much waits for the tokenizer already: count on this
			// goroutine, from the caller's own memory, rather than hold more.
			c.Usage = Estimate(c, body, text)
			break
		}
		body = bytes.Clone(body)
		f.pending.Add(1)
		go func() {
			defer f.pending.Done()
			f.estimators <- struct{}{}
			c.Usage = Estimate(c, body, text)
			<-f.estimators
			f.release(size)
			f.record(c)
		}()
		return
	default:
		c.Usage.Source = llmscope.UsageNone
	}
	f.record(c)
}

// Bounds on what waits for the tokenizer off the request path.
const (
	maxPendingEstimates     = 1024
	maxPendingEstimateBytes = 64 << 20
)

// hold reserves room for one more estimate of size bytes off the request
// path; false when the bounds are reached.
func (f *Finisher) hold(size int64) bool {
	if n := f.pendingCalls.Add(1); n > maxPendingEstimates {
		f.pendingCalls.Add(-1)
		return false
	}
	if n := f.pendingBytes.Add(size); n > maxPendingEstimateBytes {
		f.release(size)
		return false
	}
	return true
}

func (f *Finisher) release(size int64) {
	f.pendingCalls.Add(-1)
	f.pendingBytes.Add(-size)
}

// Estimate counts the tokens of a call whose upstream reported none.
func Estimate(c *llmscope.Call, body []byte, text string) llmscope.Usage {
	u := llmscope.Usage{Source: llmscope.UsageEstimated}
	u.InputTokens = EstimateInputTokens(c.Operation, c.RequestModel, body)
	u.OutputTokens = EstimateOutputTokens(c.RequestModel, text)
	u.TotalTokens = u.InputTokens + u.OutputTokens
	return u
}

// Estimable reports whether calls of operation op carry token usage.
func Estimable(op string) bool {
	switch op {
	case llmscope.OpChat, llmscope.OpTextCompletion, llmscope.OpEmbeddings, llmscope.OpResponses:
		return true
	}
	return false
}

// record redacts c (so no sink sees a secret it captured), sanitizes it (so
// no sink sees a value it cannot store or export), prices it and hands it to
// the sink. A price that is not a finite number counts as unknown.
func (f *Finisher) record(c *llmscope.Call) {
	f.Redactor.Call(c)
	c.Sanitize()
	if f.Pricer != nil && Estimable(c.Operation) {
		c.Cost = f.Pricer.Price(c)
		if c.Cost != nil && !finiteCost(c.Cost) {
			c.Cost = nil
		}
		// Unknown only for lack of a price: a call without a model or
		// without usage (a refused request) has nothing to price.
		if c.Cost == nil && f.OnCostUnknown != nil && c.Model() != "" && c.Usage.Source != llmscope.UsageNone {
			f.OnCostUnknown(c.Model())
		}
	}
	f.Sink.Record(c)
}

func finiteCost(c *llmscope.Cost) bool {
	for _, v := range [...]float64{c.InputUSD, c.OutputUSD, c.TotalUSD} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// Wait blocks until every call being estimated has been recorded, or ctx
// ends.
func (f *Finisher) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { f.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
