package report

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"llmscope"
)

// Group is one side of a comparison: a run's (or an experiment's) calls.
type Group struct {
	Name  string
	Calls []*llmscope.Call
}

// RunSummary holds the comparison table's figures of one group.
type RunSummary struct {
	Name                       string
	Calls, Errors              int
	LatencyP50MS, LatencyP95MS float64
	TTFTP50MS                  float64 // 0 when no call streamed
	TokensPerCall              float64 // over calls with usage
	CostPerCall                float64 // over priced calls
	Priced                     int
}

// Summarize computes the comparison figures of g.
func Summarize(g Group) RunSummary {
	s := RunSummary{Name: g.Name, Calls: len(g.Calls)}
	var lat, ttft []float64
	var tokens, cost float64
	withUsage := 0
	for _, c := range g.Calls {
		lat = append(lat, c.DurationMS)
		if c.Failed() {
			s.Errors++
		}
		if c.Stream && c.TTFTMS > 0 {
			ttft = append(ttft, c.TTFTMS)
		}
		if c.Usage.Source != llmscope.UsageNone {
			withUsage++
			tokens += float64(c.Usage.TotalTokens)
		}
		if c.Cost != nil {
			s.Priced++
			cost += c.Cost.TotalUSD
		}
	}
	slices.Sort(lat)
	slices.Sort(ttft)
	s.LatencyP50MS = llmscope.Percentile(lat, 50)
	s.LatencyP95MS = llmscope.Percentile(lat, 95)
	s.TTFTP50MS = llmscope.Percentile(ttft, 50)
	if withUsage > 0 {
		s.TokensPerCall = tokens / float64(withUsage)
	}
	if s.Priced > 0 {
		s.CostPerCall = cost / float64(s.Priced)
	}
	return s
}

// CompareTable is the comparison as a Markdown table, human formats.
func CompareTable(by string, sums []RunSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | calls | errors | latency p50 | latency p95 | TTFT p50 | tokens per call | cost per call |\n", by)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range sums {
		cost := "unknown"
		if s.Priced > 0 {
			cost = llmscope.FormatUSD(s.CostPerCall)
		}
		lat50, lat95 := "–", "–"
		if s.Calls > 0 {
			lat50, lat95 = llmscope.FormatMS(s.LatencyP50MS), llmscope.FormatMS(s.LatencyP95MS)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s |\n", s.Name, s.Calls, s.Errors, lat50, lat95,
			ttftText(s.TTFTP50MS), llmscope.FormatCount(s.TokensPerCall), cost)
	}
	return b.String()
}

// Compare draws every chart (see Files) with the groups overlaid, one
// colour per group, and writes summary.md with the comparison table,
// which it also returns. by names what a group is ("run", "experiment").
func Compare(dir string, groups []Group, by, title string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if err := saveAll(dir, CompareCharts(groups, by), title); err != nil {
		return "", err
	}
	var sums []RunSummary
	for _, g := range groups {
		sums = append(sums, Summarize(g))
	}
	table := CompareTable(by, sums)
	heading := "llmscope report: comparison by " + by
	if title != "" {
		heading += ", " + title
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s\nCharts: ", heading, table)
	for i, f := range Files {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[%s](%s.svg)", f, f)
	}
	b.WriteString("\n")
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return table, nil
}

// CompareCharts builds Compare's figures by name.
func CompareCharts(groups []Group, by string) map[string]*Figure {
	var tok, lat, ttft []series
	var p95 []float64
	for i, g := range groups {
		col := Palette[i%len(Palette)]
		var t, l, f []float64
		for _, c := range g.Calls {
			l = append(l, c.DurationMS)
			if c.Stream && c.TTFTMS > 0 {
				f = append(f, c.TTFTMS)
			}
			if c.Usage.Source != llmscope.UsageNone {
				t = append(t, float64(c.Usage.TotalTokens))
			}
		}
		slices.Sort(l)
		slices.Sort(f)
		tok = append(tok, series{g.Name, t, col})
		lat = append(lat, series{g.Name, l, col})
		ttft = append(ttft, series{g.Name, f, col})
		p95 = append(p95, llmscope.Percentile(l, 95))
	}
	latency := histograms("Latency per call, by "+by, "latency", llmscope.FormatMS, lat, false, EmptyCalls)
	if latency.Empty == "" {
		for i, s := range lat {
			if len(s.values) > 0 {
				latency.Legend = append(latency.Legend, LegendEntry{fmt.Sprintf("%s p95 = %s", s.name, llmscope.FormatMS(p95[i])), addVLine(latency.Plot, p95[i], s.color)})
			}
		}
	}
	charts := map[string]*Figure{
		"tokens":       histograms("Tokens per call, by "+by, "tokens per call (input + output)", llmscope.FormatCount, tok, false, EmptyTokens),
		"latency":      latency,
		"latency_ecdf": ecdf("Latency, cumulative, by "+by, "latency", lat, EmptyCalls),
		"ttft":         histograms("Time to first token (streams), by "+by, "time to first token", llmscope.FormatMS, ttft, false, EmptyTTFT),
	}
	ts := overTime(groups)
	charts["requests_over_time"] = timeLines("Requests over time, by "+by, "requests "+stepName(ts.step), llmscope.FormatCount, ts, 0, Palette)
	charts["tokens_over_time"] = timeLines("Tokens over time, by "+by, "tokens "+stepName(ts.step), llmscope.FormatCount, ts, 1, Palette)
	charts["cost_over_time"] = timeLines("Cost over time, by "+by, "USD "+stepName(ts.step), llmscope.FormatUSD, ts, 2, Palette)

	// Per model, one bar per group.
	var models, names []string
	for _, g := range groups {
		names = append(names, g.Name)
		for _, c := range g.Calls {
			if m := c.Model(); !slices.Contains(models, m) {
				models = append(models, m)
			}
		}
	}
	slices.Sort(models)
	p50 := make([][]float64, len(groups))
	cpc := make([][]float64, len(groups))
	for i, g := range groups {
		for _, m := range models {
			var sub []*llmscope.Call
			for _, c := range g.Calls {
				if c.Model() == m {
					sub = append(sub, c)
				}
			}
			s := Summarize(Group{Calls: sub})
			p50[i] = append(p50[i], s.LatencyP50MS)
			cpc[i] = append(cpc[i], s.CostPerCall)
		}
	}
	charts["models_latency"] = bars("Latency p50 by model and "+by, "model", "latency p50", llmscope.FormatMS, models, names, p50, Palette, EmptyCalls)
	charts["models_cost"] = bars("Cost per call by model and "+by, "model", "cost per call", llmscope.FormatUSD, models, names, cpc, Palette, EmptyCalls)
	return charts
}
