package loadtest

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Baseline is the scenario every other is compared against, and Floor the
// one whose added latency is the least any extra hop costs.
const (
	Baseline = "direct"
	Floor    = "reverseproxy"
)

// Report is the outcome of one harness run.
type Report struct {
	Started     time.Time      `json:"started"`
	WallSeconds float64        `json:"wall_seconds"`
	Machine     Machine        `json:"machine"`
	Settings    map[string]any `json:"settings"`
	Results     []Result       `json:"results,omitempty"`
	// Runs holds every run's own results when Results are their medians.
	Runs        []Result     `json:"runs,omitempty"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	OTLP        *SinkStats   `json:"otlp_sink,omitempty"`
	Soak        *SoakReport  `json:"soak,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OSArch    string `json:"os_arch"`
	LoadStart string `json:"loadavg_start,omitempty"` // /proc/loadavg when the run started
	LoadEnd   string `json:"loadavg_end,omitempty"`
}

// Percentiles holds one value per reported percentile, in microseconds (or
// a plain ratio).
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
}

// Ratios holds one optional ratio per percentile; a ratio is absent when
// its denominator is not positive (the floor added nothing measurable).
type Ratios struct {
	P50  *float64 `json:"p50,omitempty"`
	P90  *float64 `json:"p90,omitempty"`
	P99  *float64 `json:"p99,omitempty"`
	P999 *float64 `json:"p99_9,omitempty"`
}

// Comparison is what one scenario adds to the direct path for one load and
// kind: the difference of the percentiles (not the percentile of the
// differences), and for llmscope's scenarios the ratio of that to what the
// bare reverse proxy adds.
type Comparison struct {
	Scenario     string       `json:"scenario"`
	Kind         string       `json:"kind"`
	Mode         Mode         `json:"mode"`
	Rate         float64      `json:"rate,omitempty"`
	Concurrency  int          `json:"concurrency,omitempty"`
	AddedLatency Percentiles  `json:"added_latency_us"`
	AddedTTFT    *Percentiles `json:"added_ttft_us,omitempty"`
	// RatioToProxy is AddedLatency over the reverse proxy's added latency.
	RatioToProxy *Ratios `json:"ratio_to_proxy,omitempty"`
	// ThroughputRatio is this scenario's throughput over direct's.
	ThroughputRatio float64 `json:"throughput_ratio"`
	// ThroughputToProxy is this scenario's throughput over the reverse
	// proxy's (0 when there is no proxy result to compare with).
	ThroughputToProxy float64 `json:"throughput_to_proxy,omitempty"`
}

func percentiles(s Summary) Percentiles {
	return Percentiles{P50: s.P50, P90: s.P90, P99: s.P99, P999: s.P999}
}

func (p Percentiles) minus(o Percentiles) Percentiles {
	r := func(v float64) float64 { return math.Round(v*100) / 100 }
	return Percentiles{P50: r(p.P50 - o.P50), P90: r(p.P90 - o.P90), P99: r(p.P99 - o.P99), P999: r(p.P999 - o.P999)}
}

func ratios(num, den Percentiles) *Ratios {
	q := func(n, d float64) *float64 {
		if d <= 0 {
			return nil
		}
		v := math.Round(n/d*100) / 100
		return &v
	}
	return &Ratios{P50: q(num.P50, den.P50), P90: q(num.P90, den.P90), P99: q(num.P99, den.P99), P999: q(num.P999, den.P999)}
}

// Compare returns, for every result that is not Baseline and has a
// Baseline result of the same mode, load and kind, what it adds.
func Compare(results []Result) []Comparison {
	type key struct {
		mode      Mode
		rate      float64
		conc      int
		kind, scn string
	}
	index := map[key]*Result{}
	for i := range results {
		r := &results[i]
		index[key{r.Mode, r.Rate, r.Concurrency, r.Kind, r.Scenario}] = r
	}
	var out []Comparison
	for i := range results {
		r := &results[i]
		if r.Scenario == Baseline {
			continue
		}
		base := index[key{r.Mode, r.Rate, r.Concurrency, r.Kind, Baseline}]
		if base == nil {
			continue
		}
		c := Comparison{Scenario: r.Scenario, Kind: r.Kind, Mode: r.Mode, Rate: r.Rate, Concurrency: r.Concurrency,
			AddedLatency: percentiles(r.Latency).minus(percentiles(base.Latency))}
		if base.Throughput > 0 {
			c.ThroughputRatio = round3(r.Throughput / base.Throughput)
		}
		if r.TTFT != nil && base.TTFT != nil {
			d := percentiles(*r.TTFT).minus(percentiles(*base.TTFT))
			c.AddedTTFT = &d
		}
		if floor := index[key{r.Mode, r.Rate, r.Concurrency, r.Kind, Floor}]; floor != nil && r.Scenario != Floor {
			c.RatioToProxy = ratios(c.AddedLatency, percentiles(floor.Latency).minus(percentiles(base.Latency)))
			if floor.Throughput > 0 {
				c.ThroughputToProxy = round3(r.Throughput / floor.Throughput)
			}
		}
		out = append(out, c)
	}
	return out
}

// FormatMicros renders a duration given in microseconds with a unit that
// keeps it short: "312 µs", "4.21 ms", "1.23 s".
func FormatMicros(us float64) string {
	a := math.Abs(us)
	switch {
	case a < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case a < 10_000:
		return fmt.Sprintf("%.2f ms", us/1000)
	case a < 1_000_000:
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.2f s", us/1e6)
}

func signed(us float64) string {
	if us > 0 {
		return "+" + FormatMicros(us)
	}
	return FormatMicros(us)
}

func ratio(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", *p)
}

// Markdown renders the report as tables to paste into BENCHMARKS.md: the
// measurements of every phase, what each scenario adds to direct, the OTLP
// sink's counts, and the soak.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s: %d CPUs, %s, %s; load average %s at the start, %s at the end; %.0f s wall.\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine.CPUs, r.Machine.GoVersion, r.Machine.OSArch,
		r.Machine.LoadStart, r.Machine.LoadEnd, r.WallSeconds)
	if keys := settingKeys(r.Settings); keys != "" {
		fmt.Fprintf(&b, "Settings: %s.\n", keys)
	}
	if len(r.Results) > 0 && r.Results[0].Runs > 1 {
		fmt.Fprintf(&b, "Each figure is the median of %d runs (requests and errors are summed, peak RSS is the largest).\n", r.Results[0].Runs)
	}
	if len(r.Results) > 0 {
		b.WriteString("\nLatency from the intended send time (open loop) or the send (closed loops), to the last byte; TTFT to the first content event. CPU is seconds per 1,000 requests of the process in front of the simulator (front) and of the simulator; RSS is the front process's peak during the phase. Other load is the CPU the rest of the machine used meanwhile, in cores (the machine is shared).\n\n")
		b.WriteString("| load | kind | scenario | req/s | p50 | p90 | p99 | p99.9 | errors | TTFT p50 | TTFT p99 | front CPU s/1k | sim CPU s/1k | peak RSS MB | other load |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for i := range r.Results {
			x := &r.Results[i]
			ttft50, ttft99 := "", ""
			if x.TTFT != nil {
				ttft50, ttft99 = FormatMicros(x.TTFT.P50), FormatMicros(x.TTFT.P99)
			}
			frontCPU, rss := "", ""
			if x.FrontCPUPer1k != nil {
				frontCPU = fmt.Sprintf("%.3f", *x.FrontCPUPer1k)
			}
			if x.FrontMemory != nil {
				rss = fmt.Sprintf("%.1f", float64(x.FrontMemory.Peak)/(1<<20))
			}
			errs := fmt.Sprint(x.Errors)
			if x.Unsent > 0 {
				errs += fmt.Sprintf(" (+%d unsent)", x.Unsent)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %.3f | %s | %.2f |\n",
				x.Label(), x.Kind, x.Scenario, x.Throughput, FormatMicros(x.Latency.P50), FormatMicros(x.Latency.P90),
				FormatMicros(x.Latency.P99), FormatMicros(x.Latency.P999), errs, ttft50, ttft99, frontCPU, x.SimCPUPer1k, rss, x.OtherCPU)
		}
	}
	if len(r.Comparisons) > 0 {
		b.WriteString("\nAdded to direct (difference of the percentiles), and llmscope's added latency over the bare reverse proxy's (n/a where the proxy added nothing measurable).\n\n")
		b.WriteString("| load | kind | scenario | +p50 | +p90 | +p99 | +p99.9 | +TTFT p50 | +TTFT p99 | ×proxy p50 | ×proxy p99 | ×proxy p99.9 | throughput vs direct | throughput vs proxy |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.Comparisons {
			t50, t99, r50, r99, r999, tp := "", "", "", "", "", ""
			if c.AddedTTFT != nil {
				t50, t99 = signed(c.AddedTTFT.P50), signed(c.AddedTTFT.P99)
			}
			if c.RatioToProxy != nil {
				r50, r99, r999 = ratio(c.RatioToProxy.P50), ratio(c.RatioToProxy.P99), ratio(c.RatioToProxy.P999)
			}
			if c.ThroughputToProxy > 0 {
				tp = fmt.Sprintf("%.2f", c.ThroughputToProxy)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %s |\n",
				loadLabel(c.Mode, c.Rate, c.Concurrency), c.Kind, c.Scenario, signed(c.AddedLatency.P50), signed(c.AddedLatency.P90),
				signed(c.AddedLatency.P99), signed(c.AddedLatency.P999), t50, t99, r50, r99, r999, c.ThroughputRatio, tp)
		}
	}
	if r.OTLP != nil {
		fmt.Fprintf(&b, "\nOTLP sink (gateway+export): %d spans in %d requests, %.1f MB, %d malformed.\n",
			r.OTLP.Spans, r.OTLP.Requests, float64(r.OTLP.Bytes)/(1<<20), r.OTLP.Malformed)
	}
	if r.Soak != nil {
		r.Soak.markdown(&b)
	}
	return b.String()
}

func settingKeys(m map[string]any) string {
	order := []string{"duration", "warmup", "repeat", "rate", "concurrency", "sequential", "kinds", "scenarios", "sim_ttft", "sim_tps", "mlflow", "soak"}
	var parts []string
	for _, k := range order {
		if v, ok := m[k]; ok && v != nil && fmt.Sprint(v) != "" {
			parts = append(parts, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(parts, ", ")
}
