package loadtest

import (
	"slices"
)

// Median folds the results of repeated runs into one Result per scenario,
// kind and load, in first-seen order: every figure is the median of the
// runs' figures (the lower median for an even count), except the counts
// (requests, errors, unsent, exported spans), which are summed, the peak
// RSS, which is the largest, and the error samples, which are joined. A
// figure a run lacks is taken over the runs that have it. Runs is the
// number of results folded into each.
func Median(results []Result) []Result {
	type key struct {
		mode      Mode
		rate      float64
		conc      int
		kind, scn string
	}
	groups := map[key][]Result{}
	var order []key
	for _, r := range results {
		k := key{r.Mode, r.Rate, r.Concurrency, r.Kind, r.Scenario}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		out = append(out, median(groups[k]))
	}
	return out
}

func median(rs []Result) Result {
	m := rs[0]
	m.Runs = len(rs)
	if len(rs) == 1 {
		return m
	}
	m.Seconds = med(rs, func(r *Result) (float64, bool) { return r.Seconds, true })
	m.Throughput = med(rs, func(r *Result) (float64, bool) { return r.Throughput, true })
	m.OtherCPU = med(rs, func(r *Result) (float64, bool) { return r.OtherCPU, true })
	m.SimCPUPer1k = med(rs, func(r *Result) (float64, bool) { return r.SimCPUPer1k, true })
	m.ClientCPUPer1k = med(rs, func(r *Result) (float64, bool) { return r.ClientCPUPer1k, true })
	m.Latency = medSummary(rs, func(r *Result) *Summary { return &r.Latency })
	m.TTFT = medSummaryPtr(rs, func(r *Result) *Summary { return r.TTFT })
	m.SendLag = medSummaryPtr(rs, func(r *Result) *Summary { return r.SendLag })
	if m.FrontCPUPer1k != nil {
		v := med(rs, func(r *Result) (float64, bool) {
			if r.FrontCPUPer1k == nil {
				return 0, false
			}
			return *r.FrontCPUPer1k, true
		})
		m.FrontCPUPer1k = &v
	}
	m.Requests, m.Errors, m.Unsent, m.ErrorSamples = 0, 0, 0, nil
	var spans uint64
	for i := range rs {
		r := &rs[i]
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.Unsent += r.Unsent
		for _, e := range r.ErrorSamples {
			if len(m.ErrorSamples) < 5 && !slices.Contains(m.ErrorSamples, e) {
				m.ErrorSamples = append(m.ErrorSamples, e)
			}
		}
		if r.ExportedSpans != nil {
			spans += *r.ExportedSpans
		}
		if r.FrontMemory != nil && m.FrontMemory != nil {
			mem := *m.FrontMemory
			mem.Peak = max(mem.Peak, r.FrontMemory.Peak)
			m.FrontMemory = &mem
		}
		m.PeakSinceStart = m.PeakSinceStart || r.PeakSinceStart
	}
	if m.ExportedSpans != nil {
		m.ExportedSpans = &spans
	}
	return m
}

// med returns the lower median of the values get reports present, or 0.
func med(rs []Result, get func(*Result) (float64, bool)) float64 {
	var vs []float64
	for i := range rs {
		if v, ok := get(&rs[i]); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

func medSummary(rs []Result, get func(*Result) *Summary) Summary {
	field := func(f func(*Summary) float64) float64 {
		return med(rs, func(r *Result) (float64, bool) {
			s := get(r)
			if s == nil || s.Count == 0 {
				return 0, false
			}
			return f(s), true
		})
	}
	var count uint64
	for i := range rs {
		if s := get(&rs[i]); s != nil {
			count += s.Count
		}
	}
	return Summary{
		Count: count,
		Mean:  field(func(s *Summary) float64 { return s.Mean }),
		Min:   field(func(s *Summary) float64 { return s.Min }),
		P50:   field(func(s *Summary) float64 { return s.P50 }),
		P90:   field(func(s *Summary) float64 { return s.P90 }),
		P99:   field(func(s *Summary) float64 { return s.P99 }),
		P999:  field(func(s *Summary) float64 { return s.P999 }),
		Max:   field(func(s *Summary) float64 { return s.Max }),
	}
}

func medSummaryPtr(rs []Result, get func(*Result) *Summary) *Summary {
	for i := range rs {
		if get(&rs[i]) != nil {
			s := medSummary(rs, get)
			return &s
		}
	}
	return nil
}
