package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"llmscope"
	"llmscope/web"
)

// filterOptions are the filter flags shared by stats and export.
type filterOptions struct{ since, experiment, run, model *option }

func addFilters(s *settings) filterOptions {
	return filterOptions{
		since:      s.str("since", "", "", "only calls since this RFC 3339 time or this long ago (e.g. 24h)"),
		experiment: s.str("experiment", "", "", "only calls of this experiment"),
		run:        s.str("run", "", "", "only calls of this run"),
		model:      s.str("model", "", "", "only calls of this model"),
	}
}

func (f filterOptions) filter() (llmscope.Filter, error) {
	return web.ParseFilter(map[string][]string{"since": {f.since.val}, "experiment": {f.experiment.val}, "run": {f.run.val}, "model": {f.model.val}}, time.Now())
}

// maxStatsGroups is the largest --limit stats accepts.
const maxStatsGroups = 1_000_000

// runStats prints a table with one row per group (per model by default, or
// per value of --group-by's keys): calls, errors, tokens, cost, latency
// percentiles and TTFT; with --json, the JSON /api/stats answers.
func runStats(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("stats", stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	groupBy := s.str("group-by", "", "model", "group by these comma-separated keys: "+strings.Join(llmscope.GroupKeys, ", "))
	asJSON := s.boolean("json", "", false, "print the JSON /api/stats answers instead of a table")
	limit := s.str("limit", "", strconv.Itoa(llmscope.DefaultMaxGroups), "show at most this many groups, the largest (0: all)")
	fo := addFilters(s)
	if err := s.parse(args); err != nil {
		return err
	}
	keys, err := llmscope.ParseGroupBy(groupBy.val)
	if err != nil {
		return fmt.Errorf("--group-by: %w", err)
	}
	maxGroups, err := parseGroupLimit(limit.val)
	if err != nil {
		return err
	}
	f, err := fo.filter()
	if err != nil {
		return err
	}
	f.GroupBy, f.MaxGroups = strings.Join(keys, ","), maxGroups
	if f.GroupBy == llmscope.GroupModel {
		f.GroupBy = "" // the default grouping, as /api/stats?group_by=model
	}
	store, err := openExistingStore(ctx, db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Stats(ctx, f)
	if err != nil {
		return err
	}
	if st.Groups == nil {
		st.Groups = []llmscope.Summary{}
	}
	if asJSON.val == "true" {
		return json.NewEncoder(stdout).Encode(st) // as web's writeJSON
	}
	if err := statsTable(stdout, st); err != nil {
		return err
	}
	if st.Truncated {
		fmt.Fprintf(stderr, "stats: showing the %d largest of %d groups; --limit N (0: all) shows more\n", len(st.Groups), st.GroupsTotal)
	}
	return nil
}

// parseGroupLimit reads stats' --limit: a whole number from 0 (every group)
// to maxStatsGroups.
func parseGroupLimit(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > maxStatsGroups {
		return 0, fmt.Errorf("--limit: %q is not a whole number from 0 (all groups) to %d", v, maxStatsGroups)
	}
	if n == 0 {
		return maxStatsGroups, nil
	}
	return n, nil
}

// statsTable writes st as an aligned table: the group's key values (an
// empty one as "(none)"), then its figures in significant digits, then a
// total row; a TTFT no call counted for shows as "–".
func statsTable(w io.Writer, st *llmscope.Stats) error {
	keys := st.GroupBy
	if len(keys) == 0 {
		keys = []string{llmscope.GroupModel}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, k := range keys {
		fmt.Fprint(tw, strings.ToUpper(k), "\t")
	}
	fmt.Fprintln(tw, "CALLS\tERRORS\tIN_TOKENS\tOUT_TOKENS\tCOST_USD\tP50_MS\tP95_MS\tP99_MS\tTTFT_P50_MS\t")
	row := func(names []string, g llmscope.Summary) {
		for _, n := range names {
			fmt.Fprint(tw, termSafe(n), "\t")
		}
		cost := humanNumber(g.CostUSD, 4)
		if g.CostUnknown > 0 {
			cost += fmt.Sprintf(" (+%d unpriced)", g.CostUnknown)
		}
		ttft := "–"
		if g.TTFTP50MS > 0 {
			ttft = humanNumber(g.TTFTP50MS, 3)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", g.Calls, g.Errors, g.InputTokens, g.OutputTokens, cost,
			humanNumber(g.LatencyP50MS, 3), humanNumber(g.LatencyP95MS, 3), humanNumber(g.LatencyP99MS, 3), ttft)
	}
	for _, g := range st.Groups {
		vals := st.KeyValues(g)
		for i, v := range vals {
			if v == "" {
				vals[i] = "(none)"
			}
		}
		row(vals, g)
	}
	total := make([]string, len(keys))
	total[0] = "total"
	row(total, st.Totals)
	return tw.Flush()
}

// humanNumber formats v for people: sig significant digits (more when the
// integer part has more), never a fixed number of decimals that would show
// a small cost as 0.000000: 2.4e-7 prints as 0.00000024, 1234.56 as 1235,
// 0.012345 as 0.01235 (sig 4); below 1e-12 it switches to an exponent.
func humanNumber(v float64, sig int) string {
	switch {
	case v == 0:
		return "0"
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'g', -1, 64)
	case math.Abs(v) < 1e-12:
		return strconv.FormatFloat(v, 'g', sig, 64)
	}
	decimals := max(0, sig-1-int(math.Floor(math.Log10(math.Abs(v)))))
	out := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out
}

// csvHeader is the column list of `export --format csv`.
var csvHeader = []string{
	"id", "trace_id", "start", "duration_ms", "ttft_ms", "operation", "provider", "endpoint", "request_model", "response_model",
	"stream", "status", "error_type", "finish_reason",
	"temperature", "top_p", "max_tokens", "max_completion_tokens", "max_output_tokens", "n", "seed", "presence_penalty", "frequency_penalty",
	"response_format", "tools", "tool_choice", "reasoning_effort", "params_json",
	"input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens", "usage_source",
	"cost_input_usd", "cost_output_usd", "cost_total_usd", "price_source",
	"experiment", "run", "user", "session", "tags_json", "overhead_ms", "input", "output",
}

func csvRow(c *llmscope.Call) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	pf := func(v *float64) string {
		if v == nil {
			return ""
		}
		return f(*v)
	}
	pi := func(v *int64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatInt(*v, 10)
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	params, _ := json.Marshal(c.Params)
	tags, _ := json.Marshal(c.Tags)
	var cin, cout, ctot, csrc string
	if c.Cost != nil {
		cin, cout, ctot, csrc = f(c.Cost.InputUSD), f(c.Cost.OutputUSD), f(c.Cost.TotalUSD), c.Cost.PriceSource
	}
	// ttft_ms is empty (NaN in pandas) for a call that did not stream or saw
	// no chunk, as it is null in the Call's JSON.
	ttft := ""
	if c.Stream && c.TTFTMS != 0 {
		ttft = f(c.TTFTMS)
	}
	p := c.Params
	return []string{
		c.ID, c.TraceID, c.Start.UTC().Format(time.RFC3339Nano), f(c.DurationMS), ttft, c.Operation, c.Provider, c.Endpoint,
		c.RequestModel, c.ResponseModel, strconv.FormatBool(c.Stream), strconv.Itoa(c.Status), c.ErrorType, c.FinishReason,
		pf(p.Temperature), pf(p.TopP), pi(p.MaxTokens), pi(p.MaxCompletionTokens), pi(p.MaxOutputTokens), pi(p.N), pi(p.Seed),
		pf(p.PresencePenalty), pf(p.FrequencyPenalty), p.ResponseFormat, pi(p.Tools), p.ToolChoice, p.ReasoningEffort, string(params),
		i(c.Usage.InputTokens), i(c.Usage.OutputTokens), i(c.Usage.TotalTokens), i(c.Usage.CachedInputTokens), i(c.Usage.ReasoningTokens), c.Usage.Source,
		cin, cout, ctot, csrc, c.Experiment, c.Run, c.User, c.Session, string(tags), f(c.OverheadMS), c.Input, c.Output,
	}
}

// runExport writes every matching call, one row or line each, oldest first.
func runExport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("export", stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	format := s.str("format", "", "csv", "csv or jsonl")
	outPath := s.str("out", "", "", "write to this file instead of stdout")
	fo := addFilters(s)
	if err := s.parse(args); err != nil {
		return err
	}
	if format.val != "csv" && format.val != "jsonl" {
		return fmt.Errorf("--format: %q is not csv or jsonl", format.val)
	}
	f, err := fo.filter()
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	w := stdout
	if outPath.val != "" {
		file, err := os.Create(outPath.val)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer file.Close()
		w = file
	}
	cw := csv.NewWriter(w)
	var buf []byte
	if format.val == "csv" {
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
	}
	err = eachCall(ctx, store, f, func(c *llmscope.Call) error {
		if format.val == "csv" {
			return cw.Write(csvRow(c))
		}
		// AppendJSON: the bytes of enc.Encode(c) without its second pass.
		line, err := c.AppendJSON(buf[:0])
		if err != nil {
			return err
		}
		buf = append(line, '\n')
		_, err = w.Write(buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

// eachCall calls fn for every stored call f matches, oldest first, paging
// through the store in commit order so memory stays bounded.
func eachCall(ctx context.Context, store llmscope.Store, f llmscope.Filter, fn func(*llmscope.Call) error) error {
	for seq := int64(0); ; {
		page, err := store.After(ctx, seq, 1000)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, c := range page {
			seq = c.Seq
			if matches(f, c) {
				if err := fn(c); err != nil {
					return err
				}
			}
		}
	}
}

// matches reports whether c passes f (Limit aside).
func matches(f llmscope.Filter, c *llmscope.Call) bool {
	switch {
	case !f.Since.IsZero() && c.Start.Before(f.Since),
		!f.Until.IsZero() && !c.Start.Before(f.Until),
		f.Model != "" && c.RequestModel != f.Model && c.ResponseModel != f.Model,
		f.Run != "" && c.Run != f.Run,
		f.Experiment != "" && c.Experiment != f.Experiment:
		return false
	}
	return true
}
