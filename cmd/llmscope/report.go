package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"llmscope"
	"llmscope/report"
)

// runReport writes charts (PNG and SVG) and summary.md for the matching calls.
func runReport(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("report", stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path")
	out := s.str("out", "", "", "directory to write the charts and summary.md into (required)")
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
	store, err := openStore(ctx, db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	var calls []*llmscope.Call
	if err := eachCall(ctx, store, f, func(c *llmscope.Call) error { calls = append(calls, c); return nil }); err != nil {
		return err
	}
	stats, err := store.Stats(ctx, f)
	if err != nil {
		return err
	}
	var title []string
	for _, o := range []*option{fo.experiment, fo.run, fo.model, fo.since} {
		if o.val != "" {
			title = append(title, o.name+" "+o.val)
		}
	}
	if err := report.Write(out.val, calls, stats, strings.Join(title, ", ")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report of %d calls written to %s (summary.md and %d charts as PNG and SVG)\n", len(calls), out.val, len(report.Files))
	return nil
}
