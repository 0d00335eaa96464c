package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"

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

// runCost prints the US dollar cost of a number of tokens on a model.
func runCost(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("cost", stderr)
	model := s.str("model", "", "", "model to price (required)")
	input := s.str("input", "", "0", "input (prompt) tokens, cached ones included")
	output := s.str("output", "", "0", "output (completion) tokens, reasoning ones included")
	cached := s.str("cached", "", "0", "input tokens served from the prompt cache")
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
	}{{input, &u.InputTokens}, {output, &u.OutputTokens}, {cached, &u.CachedInputTokens}} {
		n, err := strconv.ParseInt(f.o.val, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("--%s: %q is not a non-negative integer", f.o.name, f.o.val)
		}
		*f.p = n
	}
	if u.CachedInputTokens > u.InputTokens {
		return fmt.Errorf("--cached %d is more than --input %d (cached tokens are part of the input)", u.CachedInputTokens, u.InputTokens)
	}
	table, err := pricing.Load(prices.val)
	if err != nil {
		return err
	}
	p, ok := table.Lookup(model.val)
	if !ok {
		return fmt.Errorf("no price for model %q (see llmscope prices; add one with --prices FILE)", model.val)
	}
	fmt.Fprintln(stdout, usd(p.Cost(u).TotalUSD))
	return nil
}

// usd formats dollars as a bare decimal, rounded to 1e-12 to hide binary
// floating-point noise.
func usd(v float64) string {
	return strconv.FormatFloat(math.Round(v*1e12)/1e12, 'f', -1, 64)
}

// runPrices lists the price table.
func runPrices(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("prices", stderr)
	prices := s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table")
	asJSON := s.boolean("json", "", false, "print JSON")
	if err := s.parse(args); err != nil {
		return err
	}
	table, err := pricing.Load(prices.val)
	if err != nil {
		return err
	}
	jsonOut, err := asJSON.Bool()
	if err != nil {
		return err
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(table.All())
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tINPUT/1M\tCACHED/1M\tOUTPUT/1M\tAS OF\tSOURCE")
	for _, p := range table.All() {
		cached := "="
		if p.CachedInput != nil {
			cached = usd(*p.CachedInput)
		}
		src := p.Source
		if p.Origin != "builtin" {
			src += " (" + p.Origin + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Model, usd(p.Input), cached, usd(p.Output), p.AsOf, src)
	}
	return tw.Flush()
}
