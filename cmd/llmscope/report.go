package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"llmscope"
	"llmscope/report"
)

// runReport writes charts (PNG and SVG) and summary.md for the matching calls.
func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("report", stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	out := s.str("out", "", "", "directory to write the charts and summary.md into (required)")
	compare := s.str("compare", "", "", "comma-separated runs (or experiments, see --compare-by) to overlay on the same charts, with a comparison table")
	compareBy := s.str("compare-by", "", "run", "what --compare names: run or experiment")
	fo := addFilters(s)
	if err := s.parse(args); err != nil {
		return err
	}
	if out.val == "" {
		return errors.New("--out is required")
	}
	f, err := fo.filter()
	if err != nil {
		return err
	}
	var names []string
	for _, n := range strings.Split(compare.val, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if compare.val != "" && len(names) == 0 {
		return errors.New("--compare needs at least one run name")
	}
	if compareBy.val != "run" && compareBy.val != "experiment" {
		return fmt.Errorf("--compare-by %q: want run or experiment", compareBy.val)
	}
	store, err := openExistingStore(ctx, db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	if len(names) > 0 {
		return compareReport(ctx, store, f, fo, names, compareBy.val, out.val, stdout)
	}
	var calls []*llmscope.Call
	if err := eachCall(ctx, store, f, func(c *llmscope.Call) error { calls = append(calls, c); return nil }); err != nil {
		return err
	}
	stats, err := store.Stats(ctx, f)
	if err != nil {
		return err
	}
	if err := report.Write(out.val, calls, stats, reportTitle(fo)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report of %d calls written to %s (summary.md and %d charts as PNG and SVG)\n", len(calls), out.val, len(report.Files))
	return nil
}

// reportTitle names the filters in use, for the charts' titles.
func reportTitle(fo filterOptions) string {
	var title []string
	for _, o := range []*option{fo.experiment, fo.run, fo.model, fo.since} {
		if o.val != "" {
			title = append(title, o.name+" "+o.val)
		}
	}
	return strings.Join(title, ", ")
}

// compareReport draws the charts of several runs (or experiments) overlaid
// and prints their comparison table. Each group is the calls that pass f
// and whose run (experiment) is the group's name.
func compareReport(ctx context.Context, store llmscope.Store, f llmscope.Filter, fo filterOptions, names []string, by, out string, stdout io.Writer) error {
	groups := make([]report.Group, len(names))
	index := map[string]int{}
	for i, n := range names {
		groups[i].Name = n
		index[n] = i
	}
	if by == "run" {
		f.Run = ""
	} else {
		f.Experiment = ""
	}
	n := 0
	err := eachCall(ctx, store, f, func(c *llmscope.Call) error {
		key := c.Run
		if by == "experiment" {
			key = c.Experiment
		}
		if i, ok := index[key]; ok {
			groups[i].Calls = append(groups[i].Calls, c)
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	table, err := report.Compare(out, groups, by, reportTitle(fo))
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, table)
	fmt.Fprintf(stdout, "comparison of %d %ss (%d calls) written to %s (summary.md and %d charts as PNG and SVG)\n", len(groups), by, n, out, len(report.Files))
	return nil
}
