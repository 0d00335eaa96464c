package pricing

import (
	"strconv"
	"strings"

	"llmscope"
)

// Resolved are the per-1M-token rates one call is billed at, once its
// service tier and prompt length are known.
type Resolved struct {
	Input, CachedInput, CacheWrite, Output float64
	Tier                                   string // the tier whose rates apply, "" for the base rates
	Long                                   bool   // the long-context rates apply
}

// Tier normalizes a service tier to the key of its rates: "priority",
// "flex", "ultrafast", "balanced" as they are ("fast" is "priority"), and
// "" for the base rates (OpenAI's "default", "auto", "scale"; Anthropic's
// "standard"; unknown tiers; and "batch", which LiteLLM too prices at the
// base rates per call).
func Tier(tier string) string {
	switch t := strings.ToLower(strings.TrimSpace(tier)); t {
	case "priority", "flex", "ultrafast", "balanced":
		return t
	case "fast":
		return "priority"
	}
	return ""
}

// Rates returns the rates of a call served on tier with a prompt of
// promptTokens (all input tokens, cached reads and cache writes included).
//
//   - The tier's rate is used where the price lists one, else the base rate.
//   - When promptTokens > LongContext.Above, the long-context rate of the
//     tier is used where listed, else the long-context rate, else the rate
//     above.
//   - A cached-input or cache-write rate listed nowhere is the input rate
//     resolved above.
func (p *Price) Rates(tier string, promptTokens int64) Resolved {
	tier = Tier(tier)
	r := Resolved{Input: p.Input, Output: p.Output}
	cached, write := p.CachedInput, p.CacheWrite
	if tr, ok := p.Tiers[tier]; ok && tier != "" {
		r.Tier = tier
		set(&r.Input, tr.Input)
		set(&r.Output, tr.Output)
		setp(&cached, tr.CachedInput)
		setp(&write, tr.CacheWrite)
	}
	if lc := p.LongContext; lc != nil && promptTokens > lc.Above {
		r.Long = true
		tr := lc.Tiers[tier]
		if tier == "" {
			tr = Rates{}
		}
		for _, lr := range [...]Rates{lc.Rates, tr} { // the tier's long rates last, so they win
			set(&r.Input, lr.Input)
			set(&r.Output, lr.Output)
			setp(&cached, lr.CachedInput)
			setp(&write, lr.CacheWrite)
		}
	}
	r.CachedInput, r.CacheWrite = r.Input, r.Input
	set(&r.CachedInput, cached)
	set(&r.CacheWrite, write)
	return r
}

func set(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func setp(dst **float64, v *float64) {
	if v != nil {
		*dst = v
	}
}

// Cost prices usage u at p's base (standard-tier) rates; see CostAt.
func (p *Price) Cost(u llmscope.Usage) *llmscope.Cost { return p.CostAt(u, "") }

// CostAt prices usage u of a call served on service tier tier, at the rates
// Rates(tier, u.InputTokens) returns, per 1M tokens:
//
//	input_usd  = (input − cached − cache_write) × input rate
//	           + cached × cached-input rate + cache_write × cache-write rate
//	output_usd = output × output rate
//
// where input is u.InputTokens (every prompt token), cached is
// u.CachedInputTokens (cache reads) and cache_write is
// u.CacheCreationInputTokens, each clamped to what is left of the input.
// Reasoning tokens are part of the output tokens and are not added again.
func (p *Price) CostAt(u llmscope.Usage, tier string) *llmscope.Cost {
	r := p.Rates(tier, u.InputTokens)
	input := max(u.InputTokens, 0)
	cached := min(max(u.CachedInputTokens, 0), input)
	write := min(max(u.CacheCreationInputTokens, 0), input-cached)
	in := (float64(input-cached-write)*r.Input + float64(cached)*r.CachedInput + float64(write)*r.CacheWrite) / 1e6
	out := float64(u.OutputTokens) * r.Output / 1e6
	return &llmscope.Cost{InputUSD: in, OutputUSD: out, TotalUSD: in + out, PriceSource: p.source(r)}
}

func (p *Price) source(r Resolved) string {
	s := p.Model + " " + p.AsOf
	if p.Source != "" {
		s += " " + p.Source
	}
	if r.Tier != "" {
		s += " " + r.Tier
	}
	if r.Long {
		s += " >" + strconv.FormatInt(p.LongContext.Above, 10) + " tokens"
	}
	if p.Origin != "builtin" {
		s += " (" + p.Origin + ")"
	}
	return s
}

// Price returns the cost of call c, priced by its response model when the
// table knows it (a dated snapshot may differ from its alias), else by its
// request model, at the service tier c reports (c.ServiceTier) and with the
// long-context rates when its prompt crosses the model's threshold. Provider
// prefixes and Gemini's "models/" are ignored; an Azure deployment name is
// not a model and is not used. It returns nil when neither model is known.
func (t *Table) Price(c *llmscope.Call) *llmscope.Cost {
	for _, m := range [...]string{c.ResponseModel, c.RequestModel} {
		if p, ok := t.LookupProvider(c.Provider, m); ok {
			return p.CostAt(c.Usage, c.ServiceTier)
		}
	}
	return nil
}
