package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"llmscope"
	"llmscope/pricing"
	"llmscope/tokenizer"
)

// runTokens prints the token count of stdin's text under a model's encoding.
func runTokens(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("tokens", stderr)
	model := s.str("model", "", "", "model whose encoding counts the text (required)")
	if err := s.parse(args); err != nil {
		return err
	}
	if model.val == "" {
		return errors.New("--model is required")
	}
	text, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	fmt.Fprintln(stdout, tokenizer.Count(model.val, string(text)))
	return nil
}

// runCost prints the US dollar cost of a number of tokens on a model, at
// the rates of a service tier (--tier) and, past the model's threshold, its
// long-context rates.
func runCost(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("cost", stderr)
	model := s.str("model", "", "", "model to price (required)")
	input := s.str("input", "", "0", "input (prompt) tokens, cached ones and cache writes included")
	output := s.str("output", "", "0", "output (completion) tokens, reasoning ones included")
	cached := s.str("cached", "", "0", "input tokens read from the prompt cache")
	cacheWrite := s.str("cache-write", "", "0", "input tokens written to the prompt cache (Anthropic's cache_creation_input_tokens)")
	tier := s.str("tier", "", "", "service tier the call was served on: priority, flex, … (default: the base rates)")
	provider := s.str("provider", "", "", "provider (gen_ai.provider.name), for provider-specific override prices")
	prices := s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table")
	if err := s.parse(args); err != nil {
		return err
	}
	if model.val == "" {
		return errors.New("--model is required")
	}
	var u llmscope.Usage
	for _, f := range []struct {
		o *option
		p *int64
	}{{input, &u.InputTokens}, {output, &u.OutputTokens}, {cached, &u.CachedInputTokens}, {cacheWrite, &u.CacheCreationInputTokens}} {
		n, err := strconv.ParseInt(f.o.val, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("--%s: %q is not a non-negative integer", f.o.name, f.o.val)
		}
		*f.p = n
	}
	if u.CachedInputTokens > u.InputTokens {
		return fmt.Errorf("--cached %d is more than --input %d (cached tokens are part of the input)", u.CachedInputTokens, u.InputTokens)
	}
	if u.CachedInputTokens+u.CacheCreationInputTokens > u.InputTokens {
		return fmt.Errorf("--cached %d plus --cache-write %d is more than --input %d (both are part of the input)",
			u.CachedInputTokens, u.CacheCreationInputTokens, u.InputTokens)
	}
	table, err := pricing.LoadAll(updatedPricesPath(), prices.val)
	if err != nil {
		return err
	}
	p, ok := table.LookupProvider(provider.val, model.val)
	if !ok {
		return fmt.Errorf("no price for model %q (see llmscope prices; add one with --prices FILE)", model.val)
	}
	fmt.Fprintln(stdout, usd(p.CostAt(u, tier.val).TotalUSD))
	return nil
}

// usd formats dollars as a bare decimal, rounded to 1e-12 to hide binary
// floating-point noise.
func usd(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e12)/1e12, 'f', -1, 64)
}
