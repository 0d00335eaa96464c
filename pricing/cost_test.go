package pricing

import (
	"strings"
	"testing"

	"llmscope"
)

// TestCostByHand checks costs against figures computed by hand from the
// published per-1M-token rates (LiteLLM 1.110.2, which the embedded table
// copies):
//
//	input_usd  = (input − cached − cache_write) × input + cached × cached_input + cache_write × cache_write
//	output_usd = output × output
//
// at the rates of the tier the call reports and, past the model's threshold,
// its long-context rates.
func TestCostByHand(t *testing.T) {
	tab := Default()
	type u = llmscope.Usage
	cases := []struct {
		name            string
		call            llmscope.Call
		wantIn, wantOut float64
	}{
		// gpt-5.5: $5 / $0.50 cached / $30; priority $12.50 / $1.25 / $75; flex $2.50 / $0.25 / $15;
		// above 272k: $10 / $1 / $45, flex above 272k $5 / $0.50 / $22.50.
		{"gpt-5.5 standard", call("gpt-5.5", "", u{InputTokens: 10000, CachedInputTokens: 2000, OutputTokens: 500}),
			(8000*5 + 2000*0.5) / 1e6, 500 * 30.0 / 1e6},
		{"gpt-5.5 default tier is base", call("gpt-5.5", "default", u{InputTokens: 10000, CachedInputTokens: 2000, OutputTokens: 500}),
			(8000*5 + 2000*0.5) / 1e6, 500 * 30.0 / 1e6},
		{"gpt-5.5 auto tier is base", call("gpt-5.5", "auto", u{InputTokens: 10000, OutputTokens: 500}), 10000 * 5.0 / 1e6, 500 * 30.0 / 1e6},
		{"gpt-5.5 scale tier is base", call("gpt-5.5", "scale", u{InputTokens: 10000, OutputTokens: 500}), 10000 * 5.0 / 1e6, 500 * 30.0 / 1e6},
		{"gpt-5.5 priority", call("gpt-5.5", "priority", u{InputTokens: 10000, CachedInputTokens: 2000, OutputTokens: 500}),
			(8000*12.5 + 2000*1.25) / 1e6, 500 * 75.0 / 1e6},
		{"gpt-5.5 PRIORITY spelled loudly", call("gpt-5.5", " Priority ", u{InputTokens: 10000, OutputTokens: 500}), 10000 * 12.5 / 1e6, 500 * 75.0 / 1e6},
		{"gpt-5.5 flex", call("gpt-5.5", "flex", u{InputTokens: 10000, CachedInputTokens: 2000, OutputTokens: 500}),
			(8000*2.5 + 2000*0.25) / 1e6, 500 * 15.0 / 1e6},
		{"gpt-5.5 at 272000 is not long", call("gpt-5.5", "", u{InputTokens: 272000}), 272000 * 5.0 / 1e6, 0},
		{"gpt-5.5 at 272001 is long", call("gpt-5.5", "", u{InputTokens: 272001, OutputTokens: 10}), 272001 * 10.0 / 1e6, 10 * 45.0 / 1e6},
		{"gpt-5.5 long", call("gpt-5.5", "", u{InputTokens: 300000, CachedInputTokens: 100000, OutputTokens: 1000}),
			(200000*10 + 100000*1.0) / 1e6, 1000 * 45.0 / 1e6},
		{"gpt-5.5 long flex", call("gpt-5.5", "flex", u{InputTokens: 300000, CachedInputTokens: 100000, OutputTokens: 1000}),
			(200000*5 + 100000*0.5) / 1e6, 1000 * 22.5 / 1e6},
		// no priority rates above 272k: the standard long rates apply (as LiteLLM does)
		{"gpt-5.5 long priority", call("gpt-5.5", "priority", u{InputTokens: 300000, CachedInputTokens: 100000, OutputTokens: 1000}),
			(200000*10 + 100000*1.0) / 1e6, 1000 * 45.0 / 1e6},
		// gpt-5.4: $2.50 / $0.25 / $15; flex $1.25 / $0.13 / $7.50; long $5 / $0.50 / $22.50; long flex $2.50 / $0.25 / $11.25
		{"gpt-5.4 flex cached", call("gpt-5.4", "flex", u{InputTokens: 1000, CachedInputTokens: 1000, OutputTokens: 100}), 1000 * 0.13 / 1e6, 100 * 7.5 / 1e6},
		{"gpt-5.4 long", call("gpt-5.4-2026-03-05", "", u{InputTokens: 400000, CachedInputTokens: 300000, OutputTokens: 100}),
			(100000*5 + 300000*0.5) / 1e6, 100 * 22.5 / 1e6},
		{"gpt-5.4 long flex", call("gpt-5.4", "flex", u{InputTokens: 300000, OutputTokens: 100}), 300000 * 2.5 / 1e6, 100 * 11.25 / 1e6},
		// gpt-5.4-pro: $30 / $180, no cached price; long $60 / $270; long flex $30 / $135
		{"gpt-5.4-pro long flex", call("gpt-5.4-pro", "flex", u{InputTokens: 300000, CachedInputTokens: 1000, OutputTokens: 1000}),
			300000 * 30.0 / 1e6, 1000 * 135.0 / 1e6},
		// gpt-5.5-pro: flex $15 / $90; long $60 / $270 and no long flex: the long rates apply
		{"gpt-5.5-pro flex, cached at the flex input rate", call("gpt-5.5-pro", "flex", u{InputTokens: 10000, CachedInputTokens: 1000, OutputTokens: 100}),
			10000 * 15.0 / 1e6, 100 * 90.0 / 1e6},
		{"gpt-5.5-pro long flex", call("gpt-5.5-pro", "flex", u{InputTokens: 300000, OutputTokens: 1000}), 300000 * 60.0 / 1e6, 1000 * 270.0 / 1e6},
		// gpt-5-nano has flex but no priority rates: priority bills the base $0.05 / $0.40
		{"gpt-5-nano priority falls back", call("gpt-5-nano", "priority", u{InputTokens: 1000, OutputTokens: 1000}), 1000 * 0.05 / 1e6, 1000 * 0.40 / 1e6},
		{"gpt-5-nano flex", call("gpt-5-nano", "flex", u{InputTokens: 1000, CachedInputTokens: 200, OutputTokens: 1000}),
			(800*0.025 + 200*0.0025) / 1e6, 1000 * 0.2 / 1e6},
		// gpt-4o priority $4.25 / $2.125 / $17; a snapshot resolves to it
		{"gpt-4o priority", call("gpt-4o-2024-08-06", "priority", u{InputTokens: 1000, CachedInputTokens: 500, OutputTokens: 100}),
			(500*4.25 + 500*2.125) / 1e6, 100 * 17.0 / 1e6},
		{"gpt-5.2", call("gpt-5.2", "", u{InputTokens: 1000, CachedInputTokens: 100, OutputTokens: 100}), (900*1.75 + 100*0.175) / 1e6, 100 * 14.0 / 1e6},
		{"gpt-5.1-codex", call("gpt-5.1-codex", "", u{InputTokens: 1000, OutputTokens: 100}), 1000 * 1.25 / 1e6, 100 * 10.0 / 1e6},
		{"o3-deep-research snapshot", call("o3-deep-research-2025-06-26", "", u{InputTokens: 1000, CachedInputTokens: 1000, OutputTokens: 100}),
			1000 * 2.5 / 1e6, 100 * 40.0 / 1e6},
		// claude-sonnet-4-5: $3 / $0.30 cache read / $3.75 5-minute cache write / $15
		{"claude-sonnet-4-5 cache read and write", anthropic("claude-sonnet-4-5", "standard", u{InputTokens: 10000, CachedInputTokens: 6000, CacheCreationInputTokens: 3000, OutputTokens: 800}),
			(1000*3 + 6000*0.3 + 3000*3.75) / 1e6, 800 * 15.0 / 1e6},
		{"claude-sonnet-4-5 dated id", anthropic("claude-sonnet-4-5-20250929", "", u{InputTokens: 10000, CachedInputTokens: 6000, CacheCreationInputTokens: 3000, OutputTokens: 800}),
			(1000*3 + 6000*0.3 + 3000*3.75) / 1e6, 800 * 15.0 / 1e6},
		{"claude batch tier is base per call", anthropic("claude-sonnet-4-5", "batch", u{InputTokens: 1000, OutputTokens: 100}), 1000 * 3.0 / 1e6, 100 * 15.0 / 1e6},
		{"claude priority without rates is base", anthropic("claude-opus-4-5", "priority", u{InputTokens: 1000, OutputTokens: 100}), 1000 * 5.0 / 1e6, 100 * 25.0 / 1e6},
		// cache reads + writes beyond the input are clamped: 80 read, then only 20 left to write
		{"clamped cache write", anthropic("claude-sonnet-4-5", "", u{InputTokens: 100, CachedInputTokens: 80, CacheCreationInputTokens: 50}),
			(80*0.3 + 20*3.75) / 1e6, 0},
		// claude-haiku-4-5 through a provider prefix: $1 / $0.10 / $1.25 / $5
		{"anthropic/claude-haiku-4-5 write only", anthropic("anthropic/claude-haiku-4-5", "", u{InputTokens: 2000, CacheCreationInputTokens: 2000, OutputTokens: 100}),
			2000 * 1.25 / 1e6, 100 * 5.0 / 1e6},
		// claude-sonnet-4 (kept from LiteLLM's Bedrock entry): above 200k $6 / $0.60 read / $7.50 write / $22.50
		{"claude-sonnet-4 long", anthropic("claude-sonnet-4-20250514", "", u{InputTokens: 300000, CachedInputTokens: 100000, CacheCreationInputTokens: 50000, OutputTokens: 1000}),
			(150000*6 + 100000*0.6 + 50000*7.5) / 1e6, 1000 * 22.5 / 1e6},
		{"claude-sonnet-4 at 200000 is not long", anthropic("claude-sonnet-4", "", u{InputTokens: 200000, OutputTokens: 1000}), 200000 * 3.0 / 1e6, 1000 * 15.0 / 1e6},
		// LiteLLM lists no long-context rates for claude-sonnet-4-5 on Anthropic's API: the base rates apply
		{"claude-sonnet-4-5 300k", anthropic("claude-sonnet-4-5", "", u{InputTokens: 300000, OutputTokens: 1000}), 300000 * 3.0 / 1e6, 1000 * 15.0 / 1e6},
		// claude-3-5-haiku: $0.80 / $0.08 / $1 / $4
		{"claude-3-5-haiku dated", anthropic("claude-3-5-haiku-20241022", "", u{InputTokens: 1000, CachedInputTokens: 500, CacheCreationInputTokens: 100, OutputTokens: 100}),
			(400*0.8 + 500*0.08 + 100*1.0) / 1e6, 100 * 4.0 / 1e6},
		// claude-haiku-5-5 above 100k: $0.50 / $0.05 read / $0.625 write / $2.50
		{"claude-haiku-5-5 long", anthropic("claude-haiku-5-5", "", u{InputTokens: 150000, CachedInputTokens: 50000, CacheCreationInputTokens: 20000, OutputTokens: 1000}),
			(80000*0.5 + 50000*0.05 + 20000*0.625) / 1e6, 1000 * 2.5 / 1e6},
		{"claude-haiku-5-5 short", anthropic("claude-haiku-5-5", "", u{InputTokens: 100000, CachedInputTokens: 50000, CacheCreationInputTokens: 20000, OutputTokens: 1000}),
			(30000*0.1 + 50000*0.01 + 20000*0.125) / 1e6, 1000 * 0.5 / 1e6},
		// gemini-2.5-pro: $1.25 / $0.125 / $10; above 200k $2.50 / $0.25 / $15;
		// priority $2.25 / $0.225 / $18, above 200k $4.50 / $0.45 / $27; flex $0.625 / $0.125 / $5
		{"gemini-2.5-pro long", gemini("gemini-2.5-pro", "", u{InputTokens: 250000, CachedInputTokens: 50000, OutputTokens: 2000}),
			(200000*2.5 + 50000*0.25) / 1e6, 2000 * 15.0 / 1e6},
		{"gemini-2.5-pro long priority", gemini("gemini-2.5-pro", "priority", u{InputTokens: 250000, CachedInputTokens: 50000, OutputTokens: 2000}),
			(200000*4.5 + 50000*0.45) / 1e6, 2000 * 27.0 / 1e6},
		{"gemini-2.5-pro flex", gemini("models/gemini-2.5-pro", "flex", u{InputTokens: 1000, CachedInputTokens: 100, OutputTokens: 1000}),
			(900*0.625 + 100*0.125) / 1e6, 1000 * 5.0 / 1e6},
		// gemini-2.5-flash: $0.30 / $0.03 / $2.50; priority $0.54 / $0.054 / $4.50
		{"models/gemini-2.5-flash", gemini("models/gemini-2.5-flash", "", u{InputTokens: 1000, CachedInputTokens: 400, OutputTokens: 100}),
			(600*0.3 + 400*0.03) / 1e6, 100 * 2.5 / 1e6},
		{"gemini-2.5-flash-001", gemini("gemini-2.5-flash-001", "", u{InputTokens: 1000, CachedInputTokens: 400, OutputTokens: 100}),
			(600*0.3 + 400*0.03) / 1e6, 100 * 2.5 / 1e6},
		{"gemini-2.5-flash priority", gemini("gemini/gemini-2.5-flash", "priority", u{InputTokens: 1000, CachedInputTokens: 400, OutputTokens: 100}),
			(600*0.54 + 400*0.054) / 1e6, 100 * 4.5 / 1e6},
		// ft:gpt-4o-2024-11-20 lists a cache-write but no cache-read price: reads cost the input $3.75
		{"cache read without a price", call("ft:gpt-4o-2024-11-20:acme::x1", "", u{InputTokens: 1000, CachedInputTokens: 500, OutputTokens: 10}),
			1000 * 3.75 / 1e6, 10 * 15.0 / 1e6},
		{"embeddings", call("text-embedding-3-large", "", u{InputTokens: 8000, TotalTokens: 8000}), 8000 * 0.13 / 1e6, 0},
		{"gemini embeddings", gemini("gemini-embedding-001", "", u{InputTokens: 8000}), 8000 * 0.15 / 1e6, 0},
		{"reasoning is inside output", call("o3", "flex", u{InputTokens: 1000, OutputTokens: 300, ReasoningTokens: 256}), 1000 * 1.0 / 1e6, 300 * 4.0 / 1e6},
	}
	for _, c := range cases {
		cost := tab.Price(&c.call)
		if cost == nil {
			t.Errorf("%s: no cost", c.name)
			continue
		}
		if !near(cost.InputUSD, c.wantIn) || !near(cost.OutputUSD, c.wantOut) || !near(cost.TotalUSD, c.wantIn+c.wantOut) {
			t.Errorf("%s: cost in %v out %v total %v, want in %v out %v", c.name, cost.InputUSD, cost.OutputUSD, cost.TotalUSD, c.wantIn, c.wantOut)
		}
	}
}

func call(model, tier string, u llmscope.Usage) llmscope.Call {
	return llmscope.Call{Provider: "openai", RequestModel: model, ServiceTier: tier, Usage: u}
}

func anthropic(model, tier string, u llmscope.Usage) llmscope.Call {
	c := call(model, tier, u)
	c.Provider = "anthropic"
	return c
}

func gemini(model, tier string, u llmscope.Usage) llmscope.Call {
	c := call(model, tier, u)
	c.Provider = "gcp.gemini"
	return c
}

func TestPriceSourceNamesTierAndLongContext(t *testing.T) {
	tab := Default()
	c := call("gpt-5.5", "flex", llmscope.Usage{InputTokens: 300000})
	src := tab.Price(&c).PriceSource
	if !strings.Contains(src, "gpt-5.5") || !strings.Contains(src, "flex") || !strings.Contains(src, ">272000") {
		t.Errorf("price source %q", src)
	}
	c = call("gpt-5-nano", "priority", llmscope.Usage{InputTokens: 1})
	if src := tab.Price(&c).PriceSource; strings.Contains(src, "priority") {
		t.Errorf("price source %q names a tier whose rates were not used", src)
	}
}

func TestAzureDeploymentIsNotAModel(t *testing.T) {
	tab := Default()
	c := llmscope.Call{Provider: "azure.ai.openai", Deployment: "gpt-5.5", RequestModel: "gpt-4o-mini", Usage: llmscope.Usage{InputTokens: 1e6}}
	if cost := tab.Price(&c); cost == nil || !near(cost.InputUSD, 0.15) {
		t.Errorf("azure call priced %+v, want gpt-4o-mini's $0.15", cost)
	}
	c.RequestModel = ""
	if cost := tab.Price(&c); cost != nil {
		t.Errorf("azure call with only a deployment priced %+v", cost)
	}
}

func TestProviderSpecificOverride(t *testing.T) {
	tab, err := Load(write(t, "models:\n  - {model: azure.ai.openai/gpt-4o, input: 2, output: 8, source: contract, as_of: 2026-01-01}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := llmscope.Call{Provider: "azure.ai.openai", RequestModel: "gpt-4o", Usage: llmscope.Usage{InputTokens: 1e6}}
	if cost := tab.Price(&c); cost == nil || !near(cost.InputUSD, 2) {
		t.Errorf("azure price not used: %+v", cost)
	}
	c.Provider = "openai"
	if cost := tab.Price(&c); cost == nil || !near(cost.InputUSD, 2.5) {
		t.Errorf("openai call priced at azure's: %+v", cost)
	}
}

func TestRatesInherit(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	p := &Price{Model: "m", Input: 1, Output: 2,
		Tiers:       map[string]Rates{"priority": {Input: f(3)}},
		LongContext: &LongContext{Above: 100, Rates: Rates{Output: f(20)}, Tiers: map[string]Rates{"priority": {CacheWrite: f(9)}}}}
	for _, c := range []struct {
		tier   string
		prompt int64
		want   Resolved
	}{
		{"", 10, Resolved{Input: 1, CachedInput: 1, CacheWrite: 1, Output: 2}},
		{"priority", 10, Resolved{Input: 3, CachedInput: 3, CacheWrite: 3, Output: 2, Tier: "priority"}},
		{"fast", 10, Resolved{Input: 3, CachedInput: 3, CacheWrite: 3, Output: 2, Tier: "priority"}},
		{"flex", 10, Resolved{Input: 1, CachedInput: 1, CacheWrite: 1, Output: 2}},
		{"", 101, Resolved{Input: 1, CachedInput: 1, CacheWrite: 1, Output: 20, Long: true}},
		{"priority", 101, Resolved{Input: 3, CachedInput: 3, CacheWrite: 9, Output: 20, Tier: "priority", Long: true}},
	} {
		if got := p.Rates(c.tier, c.prompt); got != c.want {
			t.Errorf("Rates(%q, %d) = %+v, want %+v", c.tier, c.prompt, got, c.want)
		}
	}
}

func TestOverridesWithTiersAndLongContext(t *testing.T) {
	path := write(t, `models:
  - model: acme-2
    input: 1
    cached_input: 0.1
    cache_write: 1.25
    output: 4
    tiers: {priority: {input: 2, output: 8}}
    long_context: {above: 1000, input: 3, output: 12, tiers: {priority: {input: 6}}}
    source: contract
    as_of: 2026-01-01
`)
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tier    string
		u       llmscope.Usage
		in, out float64
	}{
		{"", llmscope.Usage{InputTokens: 1000, CachedInputTokens: 100, CacheCreationInputTokens: 100, OutputTokens: 10}, (800*1 + 100*0.1 + 100*1.25) / 1e6, 10 * 4.0 / 1e6},
		{"priority", llmscope.Usage{InputTokens: 1000, OutputTokens: 10}, 1000 * 2.0 / 1e6, 10 * 8.0 / 1e6},
		{"", llmscope.Usage{InputTokens: 2000, CachedInputTokens: 1000, OutputTokens: 10}, (1000*3 + 1000*0.1) / 1e6, 10 * 12.0 / 1e6},
		{"priority", llmscope.Usage{InputTokens: 2000, OutputTokens: 10}, 2000 * 6.0 / 1e6, 10 * 12.0 / 1e6},
	} {
		cost := tab.Price(&llmscope.Call{RequestModel: "acme-2", ServiceTier: c.tier, Usage: c.u})
		if cost == nil || !near(cost.InputUSD, c.in) || !near(cost.OutputUSD, c.out) {
			t.Errorf("tier %q usage %+v: cost %+v, want in %v out %v", c.tier, c.u, cost, c.in, c.out)
		}
	}
}
