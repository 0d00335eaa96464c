package sweep

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"llmscope"
)

// Row is one configuration's results, read back from the store.
type Row struct {
	Run    string `json:"run"`
	Config string `json:"config"` // the values that vary in the grid
	Model  string `json:"model"`
	// Units is items × repeats; Done have a successful answer, Failed
	// only errors, and the rest were not sent yet.
	Units  int `json:"units"`
	Done   int `json:"done"`
	Failed int `json:"failed"`
	// Scored answers could be scored; Correct of them passed.
	Scored  int `json:"scored"`
	Correct int `json:"correct"`
	// Accuracy is Correct/Scored, or nil when nothing was scored.
	Accuracy *float64 `json:"accuracy"`
	// Calls are the store's figures over every call of the run, failed
	// attempts included.
	Calls llmscope.Summary `json:"calls"`
}

// ItemResult is the final state of one unit.
type ItemResult struct {
	Run    string `json:"run"`
	Item   string `json:"item"`
	Repeat int    `json:"repeat"`
	// Step is the unit's place in the dataset (repeats after one another),
	// from 1: the same on every run of the sweep.
	Step   int       `json:"step"`
	Start  time.Time `json:"start"`
	CallID string    `json:"call_id"`
	Score  *float64  `json:"score"`
	Answer string    `json:"answer"`
	Error  string    `json:"error,omitempty"`
}

// Results are a sweep's rows, sorted by SortBy.
type Results struct {
	Sweep      string       `json:"sweep"`
	Experiment string       `json:"experiment"`
	SortBy     string       `json:"sort_by"`
	Rows       []Row        `json:"rows"`
	Items      []ItemResult `json:"-"`
}

// Collect reads the sweep's results from the store: per configuration the
// final call of every unit (its latest successful one, else its latest
// failure; a call cancelled by an interruption leaves the unit undone), each
// answer scored again from the call's captured output or from the items
// log (by call id), units that failed before reaching the store from the
// log, and the store's summary of the run.
func Collect(ctx context.Context, rd Reader, s *Spec, items []Item, log *Log) (*Results, error) {
	if log == nil {
		log = &Log{}
	}
	res := &Results{Sweep: s.Name, Experiment: s.ExperimentName(), SortBy: s.SortBy}
	index := map[string]int{}
	for i, it := range items {
		index[it.ID] = i
	}
	hashes := itemHashes(items)
	vary := s.Varying()
	for _, c := range s.Configs() {
		run := s.RunName(c)
		calls, err := runCalls(ctx, rd, s, run)
		if err != nil {
			return nil, err
		}
		final := map[unitKey]*llmscope.Call{}
		for _, call := range calls { // newest first
			k, ok := keyOf(call, hashes)
			if !ok || k.repeat > s.Repeats || call.ErrorType == llmscope.ErrTypeCancelled {
				continue
			}
			if prev, seen := final[k]; !seen || prev.Failed() && !call.Failed() {
				final[k] = call
			}
		}
		row := Row{Run: run, Config: c.Short(vary), Model: c.Model, Units: len(items) * s.Repeats}
		for rep := 1; rep <= s.Repeats; rep++ {
			for i, it := range items {
				k := unitKey{run, it.ID, rep}
				ir := ItemResult{Run: run, Item: it.ID, Repeat: rep, Step: (rep-1)*len(items) + i + 1}
				call, ok := final[k]
				switch {
				case !ok:
					if o, failed := log.Failed[k]; failed && o.ItemHash == it.Hash {
						row.Failed++ // it never reached the store
						ir.Error = o.Error
						res.Items = append(res.Items, ir)
					}
					continue
				case call.Failed():
					row.Failed++
					ir.CallID, ir.Start, ir.Error = call.ID, call.Start, failure(call)
					res.Items = append(res.Items, ir)
					continue
				}
				row.Done++
				ir.CallID, ir.Start, ir.Answer = call.ID, call.Start, call.Output
				logged, inLog := log.Answers[call.ID]
				if inLog {
					ir.Answer = logged
				}
				// Without the text (not captured, and the log lost the
				// line) the answer cannot be scored.
				if inLog || call.Output != "" || call.Usage.OutputTokens == 0 {
					if sc, ok := s.Scorer.score(ir.Answer, it.Expected); ok {
						ir.Score = &sc
						row.Scored++
						row.Correct += int(sc)
					}
				}
				res.Items = append(res.Items, ir)
			}
		}
		if row.Scored > 0 {
			acc := float64(row.Correct) / float64(row.Scored)
			row.Accuracy = &acc
		}
		st, err := rd.Stats(ctx, llmscope.Filter{Experiment: s.ExperimentName(), Run: run})
		if err != nil {
			return nil, fmt.Errorf("summarise run %q: %w", run, err)
		}
		row.Calls = st.Totals
		res.Rows = append(res.Rows, row)
	}
	res.sort()
	return res, nil
}

func failure(c *llmscope.Call) string {
	if c.ErrorType != "" {
		return fmt.Sprintf("%d %s", c.Status, c.ErrorType)
	}
	return fmt.Sprintf("status %d", c.Status)
}

// metric returns row's value of a SortKey, and whether it is known.
func (r Row) metric(key string) (float64, bool) {
	switch key {
	case "accuracy":
		if r.Accuracy == nil {
			return 0, false
		}
		return *r.Accuracy, true
	case "cost":
		return r.Calls.CostUSD, r.Calls.CostUnknown == 0 && r.Calls.Calls > 0
	case "latency_p50":
		return r.Calls.LatencyP50MS, r.Calls.Calls > 0
	case "latency_p95":
		return r.Calls.LatencyP95MS, r.Calls.Calls > 0
	case "ttft_p50":
		return r.Calls.TTFTP50MS, r.Calls.TTFTP50MS > 0
	case "tokens":
		return float64(r.Calls.TotalTokens), r.Calls.Calls > 0
	}
	return 0, false
}

// sort orders the rows by SortBy: accuracy highest first, the others
// lowest first; unknown values last; ties keep grid order.
func (res *Results) sort() {
	key := res.SortBy
	slices.SortStableFunc(res.Rows, func(a, b Row) int {
		va, oka := a.metric(key)
		vb, okb := b.metric(key)
		switch {
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		case !oka:
			return 0
		case key == "accuracy":
			return cmp.Compare(vb, va)
		}
		return cmp.Compare(va, vb)
	})
}

// Table writes the comparison table as aligned text.
func (res *Results) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "config\tdone\tfailed\taccuracy\tcost USD\tp50 ms\tp95 ms\tTTFT p50 ms\ttokens\t\n")
	for _, r := range res.Rows {
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\t%s\t%.1f\t%.1f\t%s\t%d\t\n", r.Config, r.Done, r.Units, r.Failed,
			pct(r.Accuracy), humanUSD(r.Calls), r.Calls.LatencyP50MS, r.Calls.LatencyP95MS, ms(r.Calls.TTFTP50MS), r.Calls.TotalTokens)
	}
	return tw.Flush()
}

// Markdown writes the comparison table as Markdown, with the full run name
// of each configuration.
func (res *Results) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Sweep %s\n\nExperiment `%s`, sorted by %s. Cost, latency and tokens cover every call of the run, failed attempts included.\n\n", res.Sweep, res.Experiment, res.SortBy)
	b.WriteString("| config | done | failed | accuracy | scored | cost | latency p50 | latency p95 | TTFT p50 | tokens | calls | run |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Rows {
		fmt.Fprintf(&b, "| %s | %d/%d | %d | %s | %d | %s | %s | %s | %s | %d | %d | `%s` |\n", r.Config, r.Done, r.Units, r.Failed,
			pct(r.Accuracy), r.Scored, humanUSD(r.Calls), humanMS(r.Calls.LatencyP50MS), humanMS(r.Calls.LatencyP95MS), humanMS(r.Calls.TTFTP50MS), r.Calls.TotalTokens, r.Calls.Calls, r.Run)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", *p*100)
}

// humanUSD is usd in a human format with significant digits, so a small
// cost (2.4e-7 for an embedding) never shows as zero: "$0.00000024".
func humanUSD(s llmscope.Summary) string {
	if s.Calls > 0 && s.CostUnknown == s.Calls {
		return "unknown"
	}
	v := llmscope.FormatUSD(s.CostUSD)
	if s.CostUnknown > 0 {
		v += "+"
	}
	return v
}

// humanMS is a latency in a human format ("12.3 ms", "1.25 s"), or a dash
// when there is none.
func humanMS(v float64) string {
	if v == 0 {
		return "–"
	}
	return llmscope.FormatMS(v)
}

func ms(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

// Write writes results.md, results.json and scores.jsonl into the
// sweep's results directory, and the cost-vs-accuracy chart.
func (res *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var md strings.Builder
	_ = res.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	var lines strings.Builder
	for _, ir := range res.Items {
		b, _ := json.Marshal(ir)
		lines.Write(b)
		lines.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "scores.jsonl"), []byte(lines.String()), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return res.Chart(dir)
}

// finite replaces NaN and infinities (never valid JSON) by 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
