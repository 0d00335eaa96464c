package pricing

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
)

func TestBuiltinTableParses(t *testing.T) {
	tab := Default()
	if len(tab.All()) < 30 {
		t.Fatalf("built-in table has %d entries", len(tab.All()))
	}
	for _, p := range tab.All() {
		if p.Source == "" || len(p.AsOf) != len("2006-01-02") {
			t.Errorf("%s: source %q as_of %q", p.Model, p.Source, p.AsOf)
		}
	}
}

func TestLookup(t *testing.T) {
	tab := Default()
	for model, want := range map[string]string{
		"gpt-4o":                            "gpt-4o",
		"GPT-4o":                            "gpt-4o",
		"gpt-4o-2024-08-06":                 "gpt-4o",
		"gpt-4o-2024-05-13":                 "gpt-4o-2024-05-13", // the snapshot has its own price
		"gpt-4o-mini-2024-07-18":            "gpt-4o-mini",
		"gpt-4-0613":                        "gpt-4",
		"gpt-3.5-turbo-0125":                "gpt-3.5-turbo",
		"o3-mini-2025-01-31":                "o3-mini",
		"ft:gpt-4o-mini-2024-07-18:acme::x": "ft:gpt-4o-mini",
		"ft:gpt-4.1:acme:custom:abc":        "ft:gpt-4.1",
		"openai/gpt-5-mini":                 "gpt-5-mini",
		"text-embedding-3-small":            "text-embedding-3-small",
	} {
		p, ok := tab.Lookup(model)
		if !ok || p.Model != want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", model, p, ok, want)
		}
	}
	for _, model := range []string{"", "llama-3-70b", "ft:llama:x::y", "claude-3-5-sonnet-20241022"} {
		if p, ok := tab.Lookup(model); ok {
			t.Errorf("Lookup(%q) = %s, want unknown", model, p.Model)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestCost(t *testing.T) {
	tab := Default()
	cases := []struct {
		name            string
		model           string
		u               llmscope.Usage
		wantIn, wantOut float64
	}{
		// 1000 input at $2.50/M + 500 output at $10/M
		{"plain", "gpt-4o", llmscope.Usage{InputTokens: 1000, OutputTokens: 500}, 0.0025, 0.005},
		// 2048 input of which 1920 cached: 128 × 1.10 + 1920 × 0.275 per M; 300 output (256 reasoning inside) × 4.40 per M
		{"cached+reasoning", "o4-mini-2025-04-16", llmscope.Usage{InputTokens: 2048, CachedInputTokens: 1920, OutputTokens: 300, ReasoningTokens: 256},
			(128*1.10 + 1920*0.275) / 1e6, 300 * 4.40 / 1e6},
		// no cached price: cached tokens cost the input price
		{"no cached price", "gpt-4", llmscope.Usage{InputTokens: 100, CachedInputTokens: 50, OutputTokens: 10}, 100 * 30.0 / 1e6, 10 * 60.0 / 1e6},
		// cached larger than input (bad upstream data) is clamped
		{"clamped", "gpt-4o-mini", llmscope.Usage{InputTokens: 10, CachedInputTokens: 99}, 10 * 0.075 / 1e6, 0},
		{"embeddings", "text-embedding-3-large", llmscope.Usage{InputTokens: 8000, TotalTokens: 8000}, 8000 * 0.13 / 1e6, 0},
	}
	for _, c := range cases {
		cost := tab.Price(&llmscope.Call{RequestModel: c.model, Usage: c.u})
		if cost == nil {
			t.Fatalf("%s: no cost", c.name)
		}
		if !near(cost.InputUSD, c.wantIn) || !near(cost.OutputUSD, c.wantOut) || !near(cost.TotalUSD, c.wantIn+c.wantOut) {
			t.Errorf("%s: cost %+v, want in %v out %v", c.name, cost, c.wantIn, c.wantOut)
		}
		if cost.PriceSource == "" {
			t.Errorf("%s: no price source", c.name)
		}
	}
	if cost := tab.Price(&llmscope.Call{RequestModel: "mystery-model", Usage: llmscope.Usage{InputTokens: 5}}); cost != nil {
		t.Errorf("unknown model priced: %+v", cost)
	}
	// The response model wins when it is known: the 2024-05-13 snapshot costs more than gpt-4o.
	cost := tab.Price(&llmscope.Call{RequestModel: "gpt-4o", ResponseModel: "gpt-4o-2024-05-13", Usage: llmscope.Usage{InputTokens: 1e6}})
	if cost == nil || !near(cost.InputUSD, 5) {
		t.Errorf("snapshot price not used: %+v", cost)
	}
}

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOverrides(t *testing.T) {
	path := write(t, `models:
  - {model: gpt-4o, input: 2.00, cached_input: 1.00, output: 8.00, source: negotiated, as_of: 2026-01-01}
  - model: llama-3.1-70b
    input: 0.60
    output: 0.80
    source: together.ai
    as_of: 2026-02-01
`)
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tab.Lookup("gpt-4o-2024-08-06")
	if !ok || p.Input != 2.00 || p.Origin != path {
		t.Errorf("override not applied: %+v", p)
	}
	if p, ok := tab.Lookup("llama-3.1-70b"); !ok || p.Output != 0.80 {
		t.Errorf("new model not added: %+v", p)
	}
	if p, ok := tab.Lookup("gpt-4o-mini"); !ok || p.Origin != "builtin" {
		t.Errorf("built-in entry lost: %+v", p)
	}
	cost := tab.Price(&llmscope.Call{RequestModel: "gpt-4o", Usage: llmscope.Usage{InputTokens: 1e6}})
	if !strings.Contains(cost.PriceSource, "negotiated") || !strings.Contains(cost.PriceSource, path) {
		t.Errorf("price source %q does not name the override", cost.PriceSource)
	}
}

func TestMalformedOverridesNameTheLine(t *testing.T) {
	for content, want := range map[string]string{
		"models:\n  - {model: a, input: 1, output: 2}\n  - {model: b, input: x, output: 2}\n": ":3:",
		"models:\n  - {model: a, input: 1, output: 2}\n  - {input: 1, output: 2}\n":           ":3: entry without a model",
		"models:\n  - {model: a, input: -1, output: 2}\n":                                     ":2: model \"a\": negative price",
		"models:\n  - {model: a, inptu: 1, output: 2}\n":                                      ":2: unknown field \"inptu\"",
		"models:\n  - {model: a, input: 1}\n  - {model: A, input: 2}\n":                       ":3: model \"A\" listed twice",
		"prices:\n  - {model: a}\n":                                                           ":1: unknown key \"prices\"",
		"models: [\n":                                                                         "line 1",
		"models: 3\n":                                                                         ":1: want a \"models\" list",
	} {
		_, err := Load(write(t, content))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) error = %v, want it to contain %q", content, err, want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing overrides file accepted")
	}
}
