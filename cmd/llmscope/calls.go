package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"llmscope"
)

func runCalls(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("calls", stderr)
	db := s.str("db", "LLMSCOPE_DB", "llmscope.db", "store: a SQLite file path, or a postgres:// URL")
	limit := s.str("limit", "", "20", "how many calls, newest first")
	asJSON := s.boolean("json", "", false, "print a JSON array of calls")
	model := s.str("model", "", "", "only calls of this model")
	run := s.str("run", "", "", "only calls of this run")
	experiment := s.str("experiment", "", "", "only calls of this experiment")
	if err := s.parse(args); err != nil {
		return err
	}
	n, err := limit.Count()
	if err != nil {
		return err
	}
	jsonOut, err := asJSON.Bool()
	if err != nil {
		return err
	}
	store, err := openExistingStore(ctx, db.val)
	if err != nil {
		return err
	}
	defer store.Close()
	// The table shows no captured text; --json prints whole calls.
	calls, err := store.List(ctx, llmscope.Filter{Limit: int(n), Model: model.val, Run: run.val, Experiment: experiment.val, OmitText: !jsonOut})
	if err != nil {
		return err
	}
	if jsonOut {
		if calls == nil {
			calls = []*llmscope.Call{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(calls)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "START\tID\tOPERATION\tMODEL\tSTATUS\tSTREAM\tIN\tOUT\tLATENCY_MS\tTTFT_MS\tERROR\t")
	for _, c := range calls {
		ttft := "–" // not streamed, or no chunk came
		if c.Stream && c.TTFTMS > 0 {
			ttft = strconv.FormatFloat(c.TTFTMS, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%t\t%d\t%d\t%.1f\t%s\t%s\t\n",
			c.Start.Local().Format(time.DateTime), termSafe(c.ID), termSafe(c.Operation), termSafe(c.Model()), c.Status, c.Stream,
			c.Usage.InputTokens, c.Usage.OutputTokens, c.DurationMS, ttft, termSafe(c.ErrorType))
	}
	return tw.Flush()
}
