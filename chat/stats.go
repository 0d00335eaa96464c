package chat

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"llmscope"
)

// Totals sums the recorded calls of a session.
type Totals struct {
	Turns, InputTokens, OutputTokens int64
	CostUSD                          float64
	CostKnown                        bool
}

// Totals returns the session's totals so far.
func (s *Session) Totals() Totals {
	t := Totals{CostKnown: true}
	for _, turn := range s.Turns {
		t.Turns++
		if c := turn.Call; c != nil {
			t.InputTokens += c.Usage.InputTokens
			t.OutputTokens += c.Usage.OutputTokens
			if c.Cost != nil {
				t.CostUSD += c.Cost.TotalUSD
			} else {
				t.CostKnown = false
			}
		}
	}
	return t
}

// StatsLine is the one line shown after a reply: the turn's tokens, TTFT,
// latency, speed and cost, then the session's totals.
func StatsLine(c *llmscope.Call, total Totals) string {
	if c == nil {
		return "[no record of this call]"
	}
	speed := 0.0
	if gen := c.DurationMS - c.TTFTMS; gen > 0 {
		speed = float64(c.Usage.OutputTokens) / (gen / 1e3)
	}
	return fmt.Sprintf("[in %d · out %d tokens · ttft %.0f ms · %.0f ms · %.0f tok/s · %s | session: %d turns · %d tokens · %s]",
		c.Usage.InputTokens, c.Usage.OutputTokens, c.TTFTMS, c.DurationMS, speed, usd(c.Cost),
		total.Turns, total.InputTokens+total.OutputTokens, totalUSD(total))
}

func usd(c *llmscope.Cost) string {
	if c == nil {
		return "cost unknown"
	}
	return "$" + strconv.FormatFloat(c.TotalUSD, 'f', 6, 64)
}

func totalUSD(t Totals) string {
	s := "$" + strconv.FormatFloat(t.CostUSD, 'f', 6, 64)
	if !t.CostKnown {
		s += "+unknown"
	}
	return s
}

// WriteStats writes the session table: one row per turn and the totals.
func (s *Session) WriteStats(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TURN\tMODEL\tIN\tOUT\tTTFT_MS\tLATENCY_MS\tCOST_USD\tERROR\t")
	for i, t := range s.Turns {
		c := t.Call
		if c == nil {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t-\t-\t%s\t\n", i+1, t.Error)
			continue
		}
		cost := "unknown"
		if c.Cost != nil {
			cost = strconv.FormatFloat(c.Cost.TotalUSD, 'f', 6, 64)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t\n", i+1, c.RequestModel, c.Usage.InputTokens, c.Usage.OutputTokens, c.TTFTMS, c.DurationMS, cost, t.Error)
	}
	tot := s.Totals()
	fmt.Fprintf(tw, "total\t\t%d\t%d\t\t\t%s\t\t\n", tot.InputTokens, tot.OutputTokens, strings.TrimPrefix(totalUSD(tot), "$"))
	_ = tw.Flush()
}
