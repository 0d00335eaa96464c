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
	count := map[string]int{}
	for _, p := range tab.All() {
		if p.Source == "" || len(p.AsOf) != len("2006-01-02") {
			t.Errorf("%s: source %q as_of %q", p.Model, p.Source, p.AsOf)
		}
		count[p.Provider]++
	}
	if count["openai"] < 90 || count["anthropic"] < 20 || count["gcp.gemini"] < 30 || len(count) != 3 {
		t.Errorf("models per provider: %v", count)
	}
	if info := tab.Info(); info.AsOf != "2026-11-30" || !strings.HasPrefix(info.Source, "litellm") {
		t.Errorf("table info %+v", info)
	}
}

func TestLookupPrefersTheExactDatedID(t *testing.T) {
	tab, err := NewTable([]Price{
		{Model: "claude-3-5-haiku", Input: 0.8, Output: 4},
		{Model: "claude-3-5-haiku-20241022", Input: 1, Output: 5},
		{Model: "claude-3-7-sonnet", Input: 3, Output: 15},
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for model, want := range map[string]string{
		"claude-3-5-haiku-20241022":           "claude-3-5-haiku-20241022",
		"anthropic/claude-3-5-haiku-20241022": "claude-3-5-haiku-20241022",
		"claude-3-5-haiku-20250101":           "claude-3-5-haiku",
		"claude-3-7-sonnet-20250219":          "claude-3-7-sonnet",
		"claude-3-7-sonnet@20250219":          "claude-3-7-sonnet",
	} {
		if p, ok := tab.Lookup(model); !ok || p.Model != want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", model, p, ok, want)
		}
	}
}

func TestStripVersion(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o-2024-08-06":                "gpt-4o",
		"claude-3-5-haiku-20241022":        "claude-3-5-haiku",
		"gpt-4-0613":                       "gpt-4",
		"gemini-2.5-flash-001":             "gemini-2.5-flash",
		"gemini-2.5-flash-preview-09-2025": "gemini-2.5-flash-preview",
		"claude-opus-4-5@20251101":         "claude-opus-4-5",
		"gpt-4o":                           "",
		"gpt-4-1106-preview":               "",
		"o3":                               "",
		"claude-sonnet-4-5":                "",
		"2024-08-06":                       "",
		"-0613":                            "",
		"x-99":                             "",
		"gemini-exp-1206":                  "gemini-exp",
	} {
		got, ok := stripVersion(in)
		if want == "" && ok || want != "" && got != want {
			t.Errorf("stripVersion(%q) = %q, %v; want %q", in, got, ok, want)
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
		"gpt-5.2":                           "gpt-5.2",
		"gpt-5.2-2025-12-11":                "gpt-5.2",
		"gpt-5.1-codex":                     "gpt-5.1-codex",
		"o3-deep-research":                  "o3-deep-research",
		"o3-deep-research-2025-06-26":       "o3-deep-research",
		"anthropic/claude-sonnet-4-5":       "claude-sonnet-4-5",
		"claude-sonnet-4-5-20250929":        "claude-sonnet-4-5",
		"claude-opus-4-5@20251101":          "claude-opus-4-5",
		"claude-haiku-4-5-20251001":         "claude-haiku-4-5",
		"models/gemini-2.5-flash":           "gemini-2.5-flash",
		"gemini/gemini-2.5-pro":             "gemini-2.5-pro",
		"gemini-2.5-flash-001":              "gemini-2.5-flash",
		"models/gemini-2.5-flash-lite-002":  "gemini-2.5-flash-lite",
		"gemini-embedding-001":              "gemini-embedding-001",
		"ft:gpt-4o-2024-11-20:acme::x":      "ft:gpt-4o-2024-11-20",
		"ft:o4-mini-2025-04-16:acme:a:b":    "ft:o4-mini-2025-04-16",
	} {
		p, ok := tab.Lookup(model)
		if !ok || p.Model != want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", model, p, ok, want)
		}
	}
	for _, model := range []string{"", "llama-3-70b", "ft:llama:x::y", "claude-3-5-sonnet-20241022", "models/", "gemini-9-flash-001", "ft:", "@2024"} {
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
		"models:\n  - {model: a, input: 1, output: 2, tiers: {priority: {inptu: 1}}}\n":       ":2: tiers: priority: unknown field \"inptu\"",
		"models:\n  - {model: a, input: 1, output: 2, tiers: {priority: 3}}\n":                ":2: tiers: priority: want a mapping",
		"models:\n  - {model: a, input: 1, output: 2, long_context: {input: 2}}\n":            ":2: model \"a\": long_context needs a positive",
		"models:\n  - {model: a, input: 1, output: 2, long_context: {above: 9, outptu: 2}}\n": ":2: long_context: unknown field \"outptu\"",
		"models:\n  - {model: a, input: 1, output: 2, tiers: {flex: {output: -2}}}\n":         ":2: model \"a\": negative price",
		"models:\n  - {model: a, input: 1, output: 2, cache_write: -1}\n":                     ":2: model \"a\": negative price",
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
