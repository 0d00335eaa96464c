package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"llmscope/pricing"
)

// updatedPricesPath is where `llmscope prices update` keeps the fetched
// price table, which every command merges over the embedded one:
// LLMSCOPE_PRICES_CACHE, else llmscope/prices.json in the user's
// configuration directory ($XDG_CONFIG_HOME or ~/.config).
func updatedPricesPath() string {
	if p := os.Getenv("LLMSCOPE_PRICES_CACHE"); p != "" {
		return p
	}
	return pricing.DefaultUpdatedPath()
}

// runPrices lists the price table in use (`llmscope prices`), or fetches a
// newer one (`llmscope prices update`).
func runPrices(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "update" {
		return runPricesUpdate(ctx, args[1:], stdin, stdout, stderr)
	}
	s := newSettings("prices", stderr)
	prices := s.str("prices", "LLMSCOPE_PRICES", "", "YAML price overrides merged over the built-in table")
	asJSON := s.boolean("json", "", false, "print JSON")
	if err := s.parse(args); err != nil {
		return err
	}
	table, err := pricing.LoadAll(updatedPricesPath(), prices.val)
	if err != nil {
		return err
	}
	jsonOut, err := asJSON.Bool()
	if err != nil {
		return err
	}
	if jsonOut {
		fmt.Fprintln(stderr, table.Describe())
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(table.All())
	}
	fmt.Fprintln(stdout, "# "+table.Describe())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tPROVIDER\tINPUT/1M\tCACHED/1M\tCACHE WRITE/1M\tOUTPUT/1M\tTIERS\tLONG CONTEXT\tAS OF\tSOURCE")
	for _, p := range table.All() {
		src := p.Source
		if p.Origin != "builtin" {
			src += " (" + p.Origin + ")"
		}
		long := ""
		if lc := p.LongContext; lc != nil {
			long = ">" + strconv.FormatInt(lc.Above, 10)
			if lc.Input != nil {
				long += " in " + usd(*lc.Input)
			}
			if lc.Output != nil {
				long += " out " + usd(*lc.Output)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Model, dash(p.Provider), usd(p.Input), rateOrSame(p.CachedInput),
			rateOrSame(p.CacheWrite), usd(p.Output), dash(tierNames(p.Tiers)), dash(long), p.AsOf, src)
	}
	return tw.Flush()
}

// rateOrSame prints a rate, or "=" for one that is the input rate.
func rateOrSame(v *float64) string {
	if v == nil {
		return "="
	}
	return usd(*v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func tierNames(m map[string]pricing.Rates) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// runPricesUpdate fetches LiteLLM's price file, converts it and writes it
// atomically where every command will find it (a running gateway reads it
// when it starts); a failure leaves the previous file as it was.
func runPricesUpdate(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("prices update", stderr)
	url := s.str("url", "LLMSCOPE_PRICES_URL", pricing.LiteLLMURL, "LiteLLM's model_prices_and_context_window.json")
	out := s.str("out", "LLMSCOPE_PRICES_CACHE", pricing.DefaultUpdatedPath(), "the updated price file to write")
	timeout := s.str("timeout", "", "60s", "give up on the fetch after this long")
	if err := s.parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", s.fs.Arg(0))
	}
	if out.val == "" {
		return pricing.ErrNoPath
	}
	d, err := time.ParseDuration(timeout.val)
	if err != nil || d <= 0 {
		return fmt.Errorf("--timeout: %q is not a positive duration", timeout.val)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	u, err := pricing.Update(ctx, out.val, pricing.UpdateOptions{URL: url.val, Client: &http.Client{}})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (after --timeout %s)", err, d)
		}
		if _, statErr := os.Stat(out.val); statErr == nil {
			err = fmt.Errorf("%w; %s is unchanged", err, out.val)
		}
		return err
	}
	count := map[string]int{}
	for _, p := range u.Models {
		count[p.Provider]++
	}
	fmt.Fprintf(stdout, "updated file %s fetched %s, %d models (openai %d, anthropic %d, gcp.gemini %d) from %s\n",
		out.val, u.FetchedDate(), len(u.Models), count["openai"], count["anthropic"], count["gcp.gemini"], u.URL)
	return nil
}
