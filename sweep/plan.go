package sweep

import (
	"fmt"
	"io"
	"text/tabwriter"

	"llmscope"
	oai "llmscope/openai"
)

// DefaultOutputTokens is the answer length a plan assumes for an item with
// no expected answer under a configuration with no max_tokens.
const DefaultOutputTokens = 256

// PlanRow is one configuration's share of a plan.
type PlanRow struct {
	Run          string
	Config       string
	Requests     int
	InputTokens  int64
	OutputTokens int64
	Cost         *float64 // nil when the model has no known price
}

// Plan estimates what the sweep will send: per configuration the requests,
// the input tokens (counted with the model's tokenizer) and the output
// tokens (the expected answer's length, else max_tokens, else
// DefaultOutputTokens; never more than max_tokens), priced by pricer.
func Plan(s *Spec, items []Item, pricer llmscope.Pricer) []PlanRow {
	var rows []PlanRow
	for _, c := range s.Configs() {
		row := PlanRow{Run: s.RunName(c), Config: c.Short(s.Varying()), Requests: len(items) * s.Repeats}
		for _, it := range items {
			in := oai.EstimateInputTokens(llmscope.OpChat, c.Model, c.Body(it, false))
			out := int64(DefaultOutputTokens)
			switch {
			case it.Expected != nil:
				out = oai.EstimateOutputTokens(c.Model, *it.Expected)
			case c.MaxTokens != nil:
				out = *c.MaxTokens
			}
			if c.MaxTokens != nil {
				out = min(out, *c.MaxTokens)
			}
			row.InputTokens += in * int64(s.Repeats)
			row.OutputTokens += out * int64(s.Repeats)
		}
		call := &llmscope.Call{RequestModel: c.Model, ResponseModel: c.Model, Operation: llmscope.OpChat,
			Usage: llmscope.Usage{InputTokens: row.InputTokens, OutputTokens: row.OutputTokens, TotalTokens: row.InputTokens + row.OutputTokens}}
		if cost := pricer.Price(call); cost != nil {
			v := cost.TotalUSD
			row.Cost = &v
		}
		rows = append(rows, row)
	}
	return rows
}

// WritePlan prints a plan with its totals.
func WritePlan(w io.Writer, s *Spec, items []Item, rows []PlanRow) error {
	fmt.Fprintf(w, "sweep %s: %d configurations × %d items × %d repeats = %d requests (experiment %s, concurrency %d)\n\n",
		s.Name, len(rows), len(items), s.Repeats, len(rows)*len(items)*s.Repeats, s.ExperimentName(), s.Concurrency)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "config\trequests\tinput tokens\toutput tokens (est.)\tcost USD (est.)\t\n")
	var req int
	var in, out int64
	var cost float64
	unknown := 0
	for _, r := range rows {
		c := "unknown price"
		if r.Cost != nil {
			c = llmscope.FormatUSD(*r.Cost)
			cost += *r.Cost
		} else {
			unknown++
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", r.Config, r.Requests, r.InputTokens, r.OutputTokens, c)
		req += r.Requests
		in += r.InputTokens
		out += r.OutputTokens
	}
	total := llmscope.FormatUSD(cost)
	if unknown > 0 {
		total += fmt.Sprintf(" + %d unpriced", unknown)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%s\t\n", req, in, out, total)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nOutput tokens are estimated from each item's expected answer, else max_tokens, else %d.\n", DefaultOutputTokens)
	return err
}
