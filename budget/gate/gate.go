// Package gate is the gateway's admission (gateway.Admitter) built from
// package budget: a client key's models, the rate limits of the key, user
// and model, and the budgets of the key, user, team and experiment, each
// request's worst case priced with package pricing and counted with
// package tokenizer. It is kept apart from budget so that the stores,
// which implement budget's Ledger and Counter, do not depend on the
// gateway.
package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"llmscope"
	"llmscope/budget"
	"llmscope/gateway"
	"llmscope/openai"
	"llmscope/pricing"
	"llmscope/tokenizer"
)

// DefaultMaxOutput is the output tokens a call's worst case counts when
// the request sets no max_tokens / max_completion_tokens /
// max_output_tokens (Options.DefaultMaxOutput 0).
const DefaultMaxOutput = 4096

// settleTimeout bounds a ticket's settling round trip to a shared Counter.
const settleTimeout = 2 * time.Second

// Options configure a Gate. Every field is optional.
type Options struct {
	// Enforcer checks budgets (nil: none).
	Enforcer *budget.Enforcer
	// Limiter checks rate limits (nil: none).
	Limiter *budget.Limiter
	// Prices prices a call's worst case (nil: pricing.Default()). A model
	// it does not know is admitted without a budget reservation (its rate
	// limits still count) and reported to OnUnpriced.
	Prices *pricing.Table
	// DefaultMaxOutput is the output tokens of a request that sets no
	// maximum (0: DefaultMaxOutput). The price table lists no output
	// limits, so this is the figure for every such model.
	DefaultMaxOutput int64
	// KeyOf returns the client key that authenticated a request, when one
	// did: its revocation, expiry and models are checked (Allowed). nil:
	// keys are not checked here (package auth refuses unknown ones).
	KeyOf func(ctx context.Context) (*budget.Key, bool)
	Clock budget.Clock // nil: SystemClock
	// OnRefused is called with the budget of each budget refusal.
	OnRefused func(budget string)
	// OnRateLimited is called with the subject kind and unit of each rate
	// limit refusal.
	OnRateLimited func(kind budget.Kind, unit budget.Unit)
	// OnUnpriced is called with the model of each call admitted without a
	// budget reservation for lack of a price.
	OnUnpriced func(model string)
	// OnError receives the ledger's and counter's errors; the Gate fails
	// open (admits) when they fail, so that a store outage never stops
	// the traffic.
	OnError func(error)
}

// Gate is the gateway's Admitter built from an Enforcer and a Limiter: per
// request it checks the client key (Options.KeyOf), takes the rate
// limits of the key, user and model (x-ratelimit-* headers on every answer)
// and reserves the worst-case cost against the budgets of the key, user,
// team and experiment; the ticket settles both with the recorded call.
//
// The worst case is the input tokens, counted with the tokenizer (OpenAI
// bodies exactly as openai.EstimateInputTokens counts them; Anthropic's
// system prompt and Gemini's contents and systemInstruction as plain text
// with 3 tokens per message; any other body as a third of its bytes), plus
// the request's maximum output (max_completion_tokens, max_output_tokens,
// max_tokens; Anthropic's max_tokens, Gemini's maxOutputTokens) times its
// n, else DefaultMaxOutput, at the highest input and output rates the
// model's price lists (base, long-context, service tiers, cache writes).
// Only chat, text completion, embeddings and responses calls are checked;
// other operations (models, other paths) are admitted as they are.
type Gate struct {
	o       Options
	running atomic.Bool // Run flushes pending

	mu      sync.Mutex
	pending map[budget.CounterKey]int64 // token corrections not yet added to a shared Counter
}

// flushInterval is how often Run adds the token corrections to a shared
// Counter.
const flushInterval = 100 * time.Millisecond

// maxPending bounds the counts with corrections waiting for Run; beyond
// it Done corrects at once.
const maxPending = 16384

// New returns a Gate.
func New(o Options) *Gate {
	if o.Prices == nil {
		o.Prices = pricing.Default()
	}
	if o.DefaultMaxOutput <= 0 {
		o.DefaultMaxOutput = DefaultMaxOutput
	}
	if o.Clock == nil {
		o.Clock = budget.SystemClock{}
	}
	return &Gate{o: o, pending: make(map[budget.CounterKey]int64)}
}

// Run adds the rate limit token corrections of settled calls to a shared
// Counter every 100 ms, one round trip per count corrected, until ctx
// ends, then adds what waits and returns: the corrections of a busy
// subject cost a round trip per interval, not per call, and none is made
// on the request path. Without Run, Done corrects at once; an in-memory
// Counter is always corrected at once.
func (g *Gate) Run(ctx context.Context) {
	g.running.Store(true)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			g.flush(ctx)
		case <-ctx.Done():
			g.running.Store(false)
			g.flush(context.WithoutCancel(ctx))
			return
		}
	}
}

// flush adds the pending corrections. At the first failure it keeps that
// one and the rest for the next flush (up to maxPending counts), so a
// store outage costs one timeout per interval.
func (g *Gate) flush(ctx context.Context) {
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.mu.Unlock()
		return
	}
	batch := g.pending
	g.pending = make(map[budget.CounterKey]int64, len(batch))
	g.mu.Unlock()
	var failed error
	for k, d := range batch {
		if d == 0 {
			continue
		}
		if failed == nil {
			actx, cancel := context.WithTimeout(ctx, settleTimeout)
			failed = g.o.Limiter.AddTokens(actx, []budget.CounterKey{k}, d)
			cancel()
			if failed == nil {
				continue
			}
			g.fail(fmt.Errorf("rate limit: settle: %w", failed))
		}
		g.mu.Lock()
		if _, ok := g.pending[k]; ok || len(g.pending) < maxPending {
			g.pending[k] += d
		}
		g.mu.Unlock()
	}
}

// Admit implements gateway.Admitter.
func (g *Gate) Admit(ctx context.Context, a *gateway.Admission, h http.Header) (gateway.Ticket, *gateway.Refusal) {
	c := a.Call
	keyName := c.Key
	if name, ok := llmscope.ClientFrom(ctx); ok && name != "" {
		keyName = name
	}
	if g.o.KeyOf != nil {
		if k, ok := g.o.KeyOf(ctx); ok {
			if ref := checkKey(k, c, g.o.Clock.Now()); ref != nil {
				return nil, ref
			}
		}
	}
	if !openai.Estimable(c.Operation) {
		return nil, nil // no tokens nor cost to count
	}
	if g.o.Limiter == nil && g.o.Enforcer == nil {
		return nil, nil
	}
	input := InputTokens(c.Operation, c.RequestModel, a.Body)
	out := g.maxOutput(c)
	t := &gateTicket{g: g}
	if g.o.Limiter != nil {
		rt, st, ref, err := g.o.Limiter.Take(ctx, budget.RateSubjects{Key: keyName, User: c.User, Model: c.RequestModel}, input+out)
		switch {
		case err != nil:
			g.fail(err)
		case ref != nil:
			if g.o.OnRateLimited != nil {
				g.o.OnRateLimited(ref.Subject.Kind, ref.Unit)
			}
			return nil, rateRefusal(ref, st)
		default:
			t.rate, t.status, t.limited = rt, st, true
			st.Set(h)
		}
	}
	if g.o.Enforcer != nil {
		if p, ok := g.o.Prices.LookupProvider(c.Provider, c.RequestModel); ok {
			worst := budget.WorstCase(input, out, highest(p))
			res, ref, err := g.o.Enforcer.Reserve(ctx, budget.Subjects{Key: keyName, User: c.User, Team: c.Team, Experiment: c.Experiment}, worst)
			switch {
			case err != nil:
				g.fail(err)
			case ref != nil:
				if t.limited {
					g.settleLater(t.rate, 0) // the request stays counted; its tokens do not
				}
				if g.o.OnRefused != nil {
					g.o.OnRefused(ref.Budget)
				}
				return nil, budgetRefusal(ref, g.o.Clock.Now(), h)
			default:
				t.res = res
			}
		} else if g.o.OnUnpriced != nil && c.RequestModel != "" {
			g.o.OnUnpriced(c.RequestModel)
		}
	}
	if t.res == nil && !t.limited {
		return nil, nil
	}
	return t, nil
}

func (g *Gate) fail(err error) {
	if g.o.OnError != nil {
		g.o.OnError(err)
	}
}

// maxOutput returns the most output tokens c's request may produce.
func (g *Gate) maxOutput(c *llmscope.Call) int64 {
	if c.Operation == llmscope.OpEmbeddings {
		return 0
	}
	p := &c.Params
	out := g.o.DefaultMaxOutput
	for _, v := range [...]*int64{p.MaxCompletionTokens, p.MaxOutputTokens, p.MaxTokens} {
		if v != nil && *v > 0 {
			out = *v
			break
		}
	}
	if p.N != nil && *p.N > 1 {
		out *= *p.N
	}
	return out
}

// highest returns p's highest input and output rates, so that a worst
// case at them bounds the call's cost whatever tier, context length or
// cache writes it ends up billed at.
func highest(p *pricing.Price) budget.InputOutputPrice {
	io := budget.InputOutputPrice{Input: p.Input, Output: p.Output}
	up := func(in, out *float64) {
		if in != nil {
			io.Input = max(io.Input, *in)
		}
		if out != nil {
			io.Output = max(io.Output, *out)
		}
	}
	up(p.CacheWrite, nil)
	for _, r := range p.Tiers {
		up(r.Input, r.Output)
		up(r.CacheWrite, nil)
	}
	if lc := p.LongContext; lc != nil {
		up(lc.Input, lc.Output)
		up(lc.CacheWrite, nil)
		for _, r := range lc.Tiers {
			up(r.Input, r.Output)
			up(r.CacheWrite, nil)
		}
	}
	return io
}

// InputTokens counts the input tokens of a request body for model, as the
// Gate's worst case does (see Gate).
func InputTokens(op, model string, body []byte) int64 {
	if len(body) == 0 {
		return 0
	}
	n := openai.EstimateInputTokens(op, model, body)
	anthropicSystem, gemini := bytes.Contains(body, []byte(`"system":`)), bytes.Contains(body, []byte(`"contents":`))
	if (anthropicSystem || gemini) && gjson.ValidBytes(body) { // a second parse only for these shapes
		root := gjson.ParseBytes(body)
		if sys := root.Get("system"); sys.Exists() { // Anthropic
			n += int64(tokenizer.Count(model, plainText(sys))) + 3
		}
		if contents := root.Get("contents"); contents.IsArray() { // Gemini
			contents.ForEach(func(_, m gjson.Result) bool {
				n += 3 + int64(tokenizer.Count(model, plainText(m.Get("parts"))))
				return true
			})
			if si := root.Get("systemInstruction"); si.Exists() {
				n += 3 + int64(tokenizer.Count(model, plainText(si.Get("parts"))))
			}
		}
	}
	if n == 0 {
		return int64(len(body))/3 + 1
	}
	return n
}

// plainText joins the text of a string, or of an array of parts or blocks
// carrying "text".
func plainText(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.Str
	}
	var s string
	v.ForEach(func(_, part gjson.Result) bool {
		if part.Type == gjson.String {
			s += part.Str
		} else {
			s += part.Get("text").Str
		}
		return true
	})
	return s
}

// rateRefusal is the gateway's answer to a RateRefusal: 429 in OpenAI's
// rate limit shape (type "requests" or "tokens", code
// "rate_limit_exceeded") with the x-ratelimit-* headers and Retry-After;
// a request too large to ever pass also says x-should-retry: false.
func rateRefusal(ref *budget.RateRefusal, st budget.RateStatus) *gateway.Refusal {
	h := make(http.Header, 8)
	st.Set(h)
	h.Set("Retry-After", strconv.FormatInt(ref.RetryAfterSeconds(), 10))
	if ref.TooLarge() {
		h.Set("x-should-retry", "false")
	}
	return &gateway.Refusal{Status: http.StatusTooManyRequests, Type: string(ref.Unit), Code: "rate_limit_exceeded", Message: ref.Error(), Header: h}
}

// budgetRefusal is the gateway's answer to a budget Refusal: 429 with
// error type and code "budget_exceeded", Retry-After the time to the
// period's end (none for a total budget) and x-should-retry: false, so
// the openai clients do not retry what cannot pass before the period
// ends. The rate limit headers already set on h stay.
func budgetRefusal(ref *budget.Refusal, now time.Time, h http.Header) *gateway.Refusal {
	rh := make(http.Header, 2)
	if d := ref.RetryAfter(now); d > 0 {
		rh.Set("Retry-After", strconv.FormatInt(int64(d/time.Second), 10))
	}
	rh.Set("x-should-retry", "false")
	return &gateway.Refusal{Status: http.StatusTooManyRequests, Type: "budget_exceeded", Code: "budget_exceeded", Message: ref.Error(), Header: rh}
}

// gateTicket is an admitted request's reservation and rate ticket.
type gateTicket struct {
	g       *Gate
	res     *budget.Reservation
	rate    budget.RateTicket
	status  budget.RateStatus
	limited bool // rate and status are set
}

// Header implements gateway.Ticket.
func (t *gateTicket) Header(h http.Header) {
	if t.limited {
		t.status.Set(h)
	}
}

// Done implements gateway.Ticket: it settles the reservation with the
// call's recorded cost (its worst case when the cost is unknown; nothing
// for an error answer without usage, which is not billed) and corrects
// the rate limit tokens with the recorded usage.
func (t *gateTicket) Done(c *llmscope.Call) {
	unbilled := c.Status >= 400 && c.Usage.Source == llmscope.UsageNone && c.Cost == nil
	if t.res != nil {
		switch {
		case unbilled:
			t.g.o.Enforcer.Release(t.res)
		case c.Cost != nil:
			t.g.o.Enforcer.Settle(t.res, c.Cost.TotalUSD)
		default:
			t.g.o.Enforcer.Settle(t.res, budget.UnknownCost)
		}
	}
	if t.limited {
		tokens := int64(-1)
		switch {
		case unbilled:
			tokens = 0
		case c.Usage.Source != llmscope.UsageNone:
			tokens = c.Usage.InputTokens + c.Usage.OutputTokens
		}
		t.g.settleLater(t.rate, tokens)
	}
}

// settleLater queues a token correction for Run when it runs, the
// Counter is shared and the queue has room; else it makes it now.
func (g *Gate) settleLater(rt budget.RateTicket, tokens int64) {
	if keys, d, ok := rt.Correction(tokens); ok && g.running.Load() && g.o.Limiter.Shared() {
		g.mu.Lock()
		if len(g.pending)+len(keys) <= maxPending {
			for _, k := range keys {
				g.pending[k] += d
			}
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
	}
	g.settleRate(rt, tokens)
}

func (g *Gate) settleRate(rt budget.RateTicket, tokens int64) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := g.o.Limiter.Settle(ctx, rt, tokens); err != nil {
		g.fail(err)
	}
}

// checkKey refuses a request its client key may not make: a revoked or
// expired key (401), or a model the key may not use (403), on every
// operation. The models checked are the body's model and, for Azure, the
// deployment the path names (what Azure routes by). A request naming no
// model at all (listing models, a file) needs only a valid key.
func checkKey(k *budget.Key, c *llmscope.Call, now time.Time) *gateway.Refusal {
	models := make([]string, 0, 2)
	if c.Deployment != "" {
		models = append(models, c.Deployment)
	}
	if c.RequestModel != "" || len(models) == 0 {
		models = append(models, c.RequestModel)
	}
	if len(models) == 1 && models[0] == "" {
		kk := *k
		kk.Models = nil // no model asked for: only revocation and expiry apply
		k = &kk
	}
	for _, m := range models {
		if err := budget.Allowed(k, m, now); err != nil {
			if errors.Is(err, budget.ErrModelNotAllowed) {
				return &gateway.Refusal{Status: http.StatusForbidden, Type: "invalid_request_error", Code: "model_not_allowed", Message: err.Error()}
			}
			return &gateway.Refusal{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key", Message: err.Error()}
		}
	}
	return nil
}
