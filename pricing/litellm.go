package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// LiteLLMURL is where LiteLLM's community price file lives.
const LiteLLMURL = "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"

// providers maps LiteLLM's litellm_provider values that llmscope prices to
// OpenTelemetry's gen_ai.provider.name.
var providers = map[string]string{
	"openai":                 "openai",
	"text-completion-openai": "openai",
	"anthropic":              "anthropic",
	"gemini":                 "gcp.gemini",
}

// pricedModes are LiteLLM's modes whose entries are priced per token.
var pricedModes = map[string]bool{"chat": true, "responses": true, "completion": true, "embedding": true}

// maxRate is the largest per-1M-token rate FromLiteLLM believes; a larger
// one means a broken file (the dearest model lists $600).
const maxRate = 10_000

// LiteLLMOptions tune FromLiteLLM.
type LiteLLMOptions struct {
	Source string // each price's source; "litellm" when empty
	AsOf   string // each price's as_of (YYYY-MM-DD)
	// AllProviders converts every provider's entries, named as LiteLLM names
	// them, instead of only OpenAI's, Anthropic's and Gemini's (tests and
	// benchmarks use it).
	AllProviders bool
}

// FromLiteLLM converts LiteLLM's model_prices_and_context_window.json into
// prices: the chat, responses, completion and embedding models of OpenAI,
// Anthropic and Gemini, with their cached-input, cache-write (5-minute and
// 1-hour), service-tier (priority, flex, …) and long-context
// (…_above_Nk_tokens) rates; per-token costs become per-1M-token rates.
// Gemini's "gemini/" prefix is dropped (the prefixed entry wins over an
// unprefixed one of the same name). Batch, audio, image and per-request
// prices are not kept. It fails on a file that is not a JSON object of
// entries, or that holds a negative, non-numeric or absurd rate for a model
// it converts; entries it does not understand are skipped.
func FromLiteLLM(b []byte, opt LiteLLMOptions) ([]Price, error) {
	if opt.Source == "" {
		opt.Source = "litellm"
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("litellm prices: want a JSON object of models: %w", err)
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic, and "gemini/x" after "gemini-x" so the prefixed one wins
	byModel := map[string]int{}
	var out []Price
	for _, name := range names {
		var e map[string]any
		d := json.NewDecoder(bytes.NewReader(raw[name]))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			continue // sample_spec's siblings may be anything; entries are objects
		}
		p, ok, err := convertLiteLLM(name, e, opt)
		if err != nil {
			return nil, fmt.Errorf("litellm prices: model %q: %w", name, err)
		}
		if !ok {
			continue
		}
		key := strings.ToLower(p.Model)
		if i, dup := byModel[key]; dup {
			if !strings.Contains(name, "/") {
				continue // keep the provider-prefixed entry
			}
			out[i] = p
			continue
		}
		byModel[key] = len(out)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out, nil
}

// convertLiteLLM converts one entry; ok is false for an entry llmscope does
// not price.
func convertLiteLLM(name string, e map[string]any, opt LiteLLMOptions) (p Price, ok bool, err error) {
	lp, _ := e["litellm_provider"].(string)
	mode, _ := e["mode"].(string)
	provider, known := providers[lp]
	if !opt.AllProviders && !known {
		return p, false, nil
	}
	if !known {
		provider = lp
	}
	if !pricedModes[mode] || name == "sample_spec" {
		return p, false, nil
	}
	if _, has := e["input_cost_per_token"]; !has {
		return p, false, nil
	}
	model := name
	if lp != "" && strings.HasPrefix(name, lp+"/") && known {
		model = name[len(lp)+1:]
	}
	p = Price{Model: model, Provider: provider, Source: opt.Source, AsOf: opt.AsOf}
	var long LongContext
	for k, v := range e {
		field, rest, isRate := rateField(k)
		if !isRate {
			continue
		}
		f, err := rate(v)
		if err != nil {
			return p, false, fmt.Errorf("%s: %w", k, err)
		}
		above, tier, ok := parseRest(rest)
		if !ok {
			if field == "cache_write" && rest == "_above_1hr" {
				p.CacheWrite1h = &f
			}
			continue
		}
		switch {
		case above == 0 && tier == "":
			switch field {
			case "input":
				p.Input = f
			case "output":
				p.Output = f
			case "cached_input":
				p.CachedInput = &f
			case "cache_write":
				p.CacheWrite = &f
			}
		case above == 0:
			p.Tiers = setRate(p.Tiers, tier, field, f)
		default:
			if long.Above != 0 && long.Above != above {
				if above > long.Above {
					continue // one threshold per model: keep the lowest
				}
				long = LongContext{}
			}
			long.Above = above
			if tier == "" {
				long.Rates.set(field, f)
			} else {
				long.Tiers = setRate(long.Tiers, tier, field, f)
			}
		}
	}
	if long.Above != 0 {
		p.LongContext = &long
	}
	if p.Input == 0 && p.Output == 0 && hasOtherCosts(e) {
		return p, false, nil // priced per image, second or request, not per token
	}
	return p, true, nil
}

// rateField names the rate a LiteLLM key prices and returns what follows
// its stem ("_priority", "_above_272k_tokens_flex", "_batches", …).
func rateField(k string) (field, rest string, ok bool) {
	for _, s := range [...]struct{ stem, field string }{
		{"input_cost_per_token", "input"},
		{"output_cost_per_token", "output"},
		{"cache_read_input_token_cost", "cached_input"},
		{"cache_creation_input_token_cost", "cache_write"},
	} {
		if strings.HasPrefix(k, s.stem) {
			return s.field, k[len(s.stem):], true
		}
	}
	return "", "", false
}

// parseRest parses "", "_TIER", "_above_Nk_tokens" and
// "_above_Nk_tokens_TIER"; ok is false for anything else (batches, TTLs).
func parseRest(rest string) (above int64, tier string, ok bool) {
	if r, found := strings.CutPrefix(rest, "_above_"); found {
		n, after, found := strings.Cut(r, "_tokens")
		if !found {
			return 0, "", false
		}
		mult := int64(1)
		if s, k := strings.CutSuffix(n, "k"); k {
			n, mult = s, 1000
		}
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v <= 0 {
			return 0, "", false
		}
		above, rest = v*mult, after
	}
	if rest == "" {
		return above, "", true
	}
	t, found := strings.CutPrefix(rest, "_")
	if !found || Tier(t) != t || t == "" {
		return 0, "", false
	}
	return above, t, true
}

func (r *Rates) set(field string, f float64) {
	switch field {
	case "input":
		r.Input = &f
	case "output":
		r.Output = &f
	case "cached_input":
		r.CachedInput = &f
	case "cache_write":
		r.CacheWrite = &f
	}
}

func setRate(m map[string]Rates, tier, field string, f float64) map[string]Rates {
	if m == nil {
		m = map[string]Rates{}
	}
	r := m[tier]
	r.set(field, f)
	m[tier] = r
	return m
}

// rate converts a per-token cost to a per-1M-token rate, rounded to 1e-9
// so that 2.5e-06 prints as 2.5.
func rate(v any) (float64, error) {
	var f float64
	switch v := v.(type) {
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, fmt.Errorf("%q is not a number", v.String())
		}
	case nil:
		return 0, nil
	default:
		return 0, fmt.Errorf("%v is not a number", v)
	}
	f = math.Round(f*1e6*1e9) / 1e9
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, errors.New("not a finite number")
	case f < 0:
		return 0, fmt.Errorf("negative price %v per 1M tokens", f)
	case f > maxRate:
		return 0, fmt.Errorf("price %v per 1M tokens is beyond belief", f)
	}
	return f, nil
}

func hasOtherCosts(e map[string]any) bool {
	for k := range e {
		if strings.Contains(k, "cost_per_") && !strings.Contains(k, "cost_per_token") {
			return true
		}
	}
	return false
}
