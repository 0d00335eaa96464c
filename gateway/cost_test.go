package gateway_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"llmscope"
	"llmscope/gateway"
	"llmscope/pricing"
	"llmscope/sim"
)

// longPrompt is over 1024 tokens, so the simulator reports cached tokens
// when it sees it a second time, as OpenAI's prompt cache does.
var longPrompt = strings.Repeat("Every call through the gateway is recorded with its tokens and cost. ", 90)

// TestCostThroughGateway checks the recorded cost of calls with cached and
// reasoning tokens, streamed and not, on Chat Completions and Responses,
// against figures computed by hand from the price table:
// cost = (input − cached) × input + cached × cached_input + output × output,
// per 1M tokens, with reasoning tokens inside output and never added again.
func TestCostThroughGateway(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 11}, func(c *gateway.Config) { c.Pricer = pricing.Default() })
	cl := client(e.gw.URL)
	ctx := context.Background()
	chat := func(model string, stream bool) {
		p := openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(longPrompt)}}
		if !stream {
			if _, err := cl.Chat.Completions.New(ctx, p); err != nil {
				t.Fatal(err)
			}
			return
		}
		s := cl.Chat.Completions.NewStreaming(ctx, p)
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	resp := func(model string, stream bool) {
		p := responses.ResponseNewParams{Model: model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(longPrompt)}}
		if !stream {
			if _, err := cl.Responses.New(ctx, p); err != nil {
				t.Fatal(err)
			}
			return
		}
		s := cl.Responses.NewStreaming(ctx, p)
		for s.Next() {
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Hand-computed, in millionths of a dollar (per-1M prices × tokens):
	// o4-mini $1.10 / $0.275 cached / $4.40; gpt-4o-mini $0.15 / $0.075 / $0.60;
	// o3 $2.00 / $0.50 / $8.00. The prompt is 1178 tokens; 1152 of them
	// cached on a repeat. Reasoning tokens are inside the output count.
	cases := []struct {
		name                       string
		call                       func()
		in, cached, out, reasoning int64
		inUSD, outUSD              float64
	}{
		// 1178 × 1.10 = 1295.8; 90 × 4.40 = 396
		{"chat o4-mini, first (no cache)", func() { chat("o4-mini", false) }, 1178, 0, 90, 60, 0.0012958, 0.000396},
		// 26 × 1.10 + 1152 × 0.275 = 28.6 + 316.8 = 345.4
		{"chat o4-mini, cached + reasoning", func() { chat("o4-mini", false) }, 1178, 1152, 90, 60, 0.0003454, 0.000396},
		{"chat o4-mini stream, cached + reasoning", func() { chat("o4-mini", true) }, 1178, 1152, 90, 60, 0.0003454, 0.000396},
		// 1178 × 0.15 = 176.7; 39 × 0.60 = 23.4
		{"chat gpt-4o-mini stream, first", func() { chat("gpt-4o-mini", true) }, 1178, 0, 39, 0, 0.0001767, 0.0000234},
		// 26 × 0.15 + 1152 × 0.075 = 3.9 + 86.4 = 90.3
		{"chat gpt-4o-mini stream, cached", func() { chat("gpt-4o-mini", true) }, 1178, 1152, 39, 0, 0.0000903, 0.0000234},
		// 1178 × 2.00 = 2356; 120 × 8.00 = 960
		{"responses o3, first", func() { resp("o3", false) }, 1178, 0, 120, 80, 0.002356, 0.00096},
		// 26 × 2.00 + 1152 × 0.50 = 52 + 576 = 628
		{"responses o3, cached + reasoning", func() { resp("o3", false) }, 1178, 1152, 120, 80, 0.000628, 0.00096},
		{"responses o3 stream, cached + reasoning", func() { resp("o3", true) }, 1178, 1152, 120, 80, 0.000628, 0.00096},
	}
	for _, c := range cases {
		c.call()
		got := e.sink.one(t)
		u := got.Usage
		if u.Source != llmscope.UsageReported || u.InputTokens != c.in || u.CachedInputTokens != c.cached ||
			u.OutputTokens != c.out || u.ReasoningTokens != c.reasoning || u.TotalTokens != c.in+c.out {
			t.Errorf("%s: usage %+v, want in %d cached %d out %d reasoning %d", c.name, u, c.in, c.cached, c.out, c.reasoning)
		}
		if got.Cost == nil {
			t.Errorf("%s: no cost", c.name)
			continue
		}
		if !near(got.Cost.InputUSD, c.inUSD) || !near(got.Cost.OutputUSD, c.outUSD) || !near(got.Cost.TotalUSD, c.inUSD+c.outUSD) {
			t.Errorf("%s: cost %+v, want input $%v output $%v total $%v", c.name, got.Cost, c.inUSD, c.outUSD, c.inUSD+c.outUSD)
		}
	}
}

func TestUnknownModelHasNullCost(t *testing.T) {
	var unknown []string
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) {
		c.Pricer = pricing.Default()
		c.OnCostUnknown = func(m string) { unknown = append(unknown, m) }
	})
	p := chatParams()
	p.Model = "acme-llm-7b"
	if _, err := client(e.gw.URL).Chat.Completions.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	c := e.sink.one(t)
	if c.Cost != nil || len(unknown) != 1 || unknown[0] != "acme-llm-7b" {
		t.Errorf("unknown model: cost %+v, reported %v", c.Cost, unknown)
	}
}

func TestEstimatedUsageIsPriced(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.Pricer = pricing.Default() })
	status, _, _ := post(t, e.gw.URL+"/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hello world"}]}`,
		map[string]string{"X-Sim-Fault": "no_usage"})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	c := e.sink.one(t)
	// 9 prompt tokens by OpenAI's chat formula (3 + 3 + "user" 1 + "hello world" 2).
	if c.Usage.Source != llmscope.UsageEstimated || c.Usage.InputTokens != 9 || c.Usage.OutputTokens == 0 {
		t.Fatalf("usage %+v", c.Usage)
	}
	want := (9*2.50 + float64(c.Usage.OutputTokens)*10.00) / 1e6
	if c.Cost == nil || !near(c.Cost.TotalUSD, want) {
		t.Errorf("estimated usage priced %+v, want $%v", c.Cost, want)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// TestCostOfServiceTier: the tier an answer reports (service_tier) picks the
// price, streamed or not: gpt-4.1 is $2.00 / $8.00 per 1M tokens on the
// default tier and $3.50 / $14.00 on priority.
func TestCostOfServiceTier(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 3}, func(c *gateway.Config) { c.Pricer = pricing.Default() })
	for _, tc := range []struct {
		tier, stream string
		in, out      float64
	}{
		{"", "false", 2.00, 8.00},
		{`,"service_tier":"priority"`, "false", 3.50, 14.00},
		{`,"service_tier":"priority"`, "true", 3.50, 14.00},
	} {
		body := `{"model":"gpt-4.1","stream":` + tc.stream + tc.tier + `,"messages":[{"role":"user","content":"hello world"}]}`
		if status, _, _ := post(t, e.gw.URL+"/v1/chat/completions", body, nil); status != 200 {
			t.Fatalf("%s: status %d", body, status)
		}
		c := e.sink.one(t)
		wantTier := "default"
		if tc.tier != "" {
			wantTier = "priority"
		}
		want := (float64(c.Usage.InputTokens)*tc.in + float64(c.Usage.OutputTokens)*tc.out) / 1e6
		if c.ServiceTier != wantTier || c.Usage.Source != llmscope.UsageReported || c.Cost == nil || !near(c.Cost.TotalUSD, want) {
			t.Errorf("%s: tier %q usage %+v cost %+v, want tier %s and $%v", body, c.ServiceTier, c.Usage, c.Cost, wantTier, want)
		}
	}
}

// TestCostOfProviders prices Anthropic's cache writes and reads, Gemini's
// thinking tokens and OpenAI's long-context rates, each against a hand
// computation from the published per-1M prices:
//   - claude-sonnet-4-5: $3 input, $3.75 cache write, $0.30 cache read, $15 output;
//   - gemini-2.5-flash: $0.30 input, $0.03 cached, $2.50 output (thinking included);
//   - gpt-5.4 above 272,000 prompt tokens: $5 input, $22.50 output (else $2.50 / $15).
func TestCostOfProviders(t *testing.T) {
	e := newEnv(t, sim.Config{Seed: 5}, func(c *gateway.Config) {
		c.Pricer = pricing.Default()
		root := strings.TrimSuffix(c.Upstream, "/v1")
		c.Upstreams = []gateway.ProviderUpstream{{API: gateway.Anthropic(), URL: root}, {API: gateway.Gemini(), URL: root}}
	})
	anth := map[string]string{"Anthropic-Version": "2023-06-01"}
	system := strings.Repeat("You answer questions about the weather, briefly and politely. ", 40)
	claude := `{"model":"claude-sonnet-4-5","max_tokens":200,"system":[{"type":"text","text":"` + system +
		`","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Is it sunny?"}]}`
	for i, stream := range []bool{false, true} {
		body := claude
		if stream {
			body = strings.Replace(body, `"max_tokens":200`, `"max_tokens":200,"stream":true`, 1)
		}
		if status, _, b := post(t, e.gw.URL+"/v1/messages", body, anth); status != 200 {
			t.Fatalf("claude: %d %s", status, b)
		}
		c := e.sink.one(t)
		u := c.Usage
		if i == 0 && (u.CacheCreationInputTokens == 0 || u.CachedInputTokens != 0) || i == 1 && (u.CachedInputTokens == 0 || u.CacheCreationInputTokens != 0) {
			t.Fatalf("claude call %d: usage %+v, want a cache write first, then a read", i, u)
		}
		uncached := u.InputTokens - u.CachedInputTokens - u.CacheCreationInputTokens
		in := (float64(uncached)*3 + float64(u.CacheCreationInputTokens)*3.75 + float64(u.CachedInputTokens)*0.30) / 1e6
		out := float64(u.OutputTokens) * 15 / 1e6
		if c.Cost == nil || !near(c.Cost.InputUSD, in) || !near(c.Cost.OutputUSD, out) || c.Provider != "anthropic" {
			t.Errorf("claude call %d (usage %+v): cost %+v, want input $%v output $%v", i, u, c.Cost, in, out)
		}
	}

	gem := `{"contents":[{"role":"user","parts":[{"text":"Is it sunny?"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":64}}}`
	if status, _, b := post(t, e.gw.URL+"/v1beta/models/gemini-2.5-flash:generateContent", gem, nil); status != 200 {
		t.Fatalf("gemini: %d %s", status, b)
	}
	c := e.sink.one(t)
	u := c.Usage
	in := (float64(u.InputTokens-u.CachedInputTokens)*0.30 + float64(u.CachedInputTokens)*0.03) / 1e6
	out := float64(u.OutputTokens) * 2.50 / 1e6
	if u.ReasoningTokens == 0 || c.Cost == nil || !near(c.Cost.InputUSD, in) || !near(c.Cost.OutputUSD, out) {
		t.Errorf("gemini (usage %+v): cost %+v, want input $%v output $%v", u, c.Cost, in, out)
	}

	for _, words := range []int{1000, 280_000} {
		body := `{"model":"gpt-5.4","max_completion_tokens":50,"messages":[{"role":"user","content":"` + strings.Repeat("hi ", words) + `"}]}`
		if status, _, b := post(t, e.gw.URL+"/v1/chat/completions", body, nil); status != 200 {
			t.Fatalf("gpt-5.4: %d %.200s", status, b)
		}
		c := e.sink.one(t)
		u := c.Usage
		inRate, outRate := 2.50, 15.0
		if u.InputTokens > 272_000 {
			inRate, outRate = 5, 22.50
		}
		if words > 1000 && u.InputTokens <= 272_000 {
			t.Fatalf("the long prompt is only %d tokens", u.InputTokens)
		}
		in := float64(u.InputTokens) * inRate / 1e6
		out := float64(u.OutputTokens) * outRate / 1e6
		if c.Cost == nil || !near(c.Cost.InputUSD, in) || !near(c.Cost.OutputUSD, out) {
			t.Errorf("gpt-5.4 with %d prompt tokens: cost %+v, want input $%v output $%v", u.InputTokens, c.Cost, in, out)
		}
	}
}
