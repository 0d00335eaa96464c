package loadtest

import (
	"strings"
	"testing"
)

func result(scn string, p50, p99 float64) Result {
	return Result{Scenario: scn, Kind: "stream-small", Mode: Open, Rate: 1000, Throughput: 1000,
		Latency: Summary{P50: p50, P90: p50, P99: p99, P999: p99},
		TTFT:    &Summary{P50: p50 / 2, P90: p50 / 2, P99: p99 / 2, P999: p99 / 2}}
}

func TestCompare(t *testing.T) {
	res := []Result{
		result("direct", 100, 1000),
		result("gateway", 400, 1600),
		result("reverseproxy", 200, 1000), // the proxy adds nothing at p99
		{Scenario: "gateway", Kind: "stream-small", Mode: Closed, Concurrency: 16}, // no direct to compare with
	}
	res[1].Throughput = 900
	res[1].Latency.P999 = 2500 // adds 1500 where the proxy adds 500 (the helper's P999 is its p99)
	res[2].Latency.P999 = 1500
	cs := Compare(res)
	if len(cs) != 2 {
		t.Fatalf("%d comparisons, want 2: %+v", len(cs), cs)
	}
	gw := cs[0]
	if gw.Scenario != "gateway" || gw.AddedLatency.P50 != 300 || gw.AddedLatency.P99 != 600 {
		t.Errorf("gateway added %+v", gw.AddedLatency)
	}
	if gw.AddedTTFT == nil || gw.AddedTTFT.P50 != 150 {
		t.Errorf("gateway added TTFT %+v", gw.AddedTTFT)
	}
	if gw.RatioToProxy == nil || gw.RatioToProxy.P50 == nil || *gw.RatioToProxy.P50 != 3 {
		t.Errorf("ratio to proxy %+v, want p50 3", gw.RatioToProxy)
	}
	if gw.RatioToProxy.P999 == nil || *gw.RatioToProxy.P999 != 3 {
		t.Errorf("ratio to proxy at p99.9 %+v, want 3", gw.RatioToProxy.P999)
	}
	if gw.ThroughputToProxy != 0.9 || gw.ThroughputRatio != 0.9 {
		t.Errorf("throughput to proxy %v, to direct %v, want 0.9 and 0.9", gw.ThroughputToProxy, gw.ThroughputRatio)
	}
	if gw.RatioToProxy.P99 != nil {
		t.Errorf("ratio at p99 %v, want none: the proxy added nothing there", *gw.RatioToProxy.P99)
	}
	if cs[1].Scenario != "reverseproxy" || cs[1].RatioToProxy != nil || cs[1].ThroughputRatio != 1 {
		t.Errorf("proxy comparison %+v", cs[1])
	}
}

func TestMarkdown(t *testing.T) {
	front := 0.25
	res := []Result{result("direct", 100, 1000), result("gateway", 400, 1600), result("reverseproxy", 200, 1100)}
	res[1].FrontCPUPer1k = &front
	rep := &Report{Results: res, Comparisons: Compare(res), Settings: map[string]any{"rate": 1000.0},
		Soak: &SoakReport{Scenario: "gateway", Kinds: []string{"stream-small"}, Rate: 1000,
			Samples: []SoakSample{{Seconds: 0, RSSMB: 30}, {Seconds: 5, RSSMB: 31}}, SlopeMBPerMin: 12}}
	md := rep.Markdown()
	for _, want := range []string{
		"| open 1000/s | stream-small | gateway | 1000 | 400 µs |",
		"| open 1000/s | stream-small | gateway | +300 µs |",
		"| 3.00× | 6.00× | 6.00× | 1.00 | 1.00 |",
		"Soak: gateway", "+12.000 MB/min", "| 5 | 31.0 |", "rate 1000",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// every table row has as many cells as its header
	cells := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = 0
			continue
		}
		n := strings.Count(line, "|")
		if cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("row with %d cells under a header of %d: %s", n-1, cells-1, line)
		}
	}
}

func TestFormatMicros(t *testing.T) {
	for us, want := range map[float64]string{12.4: "12 µs", 999: "999 µs", 4210: "4.21 ms", 52345: "52.3 ms", 1_234_000: "1.23 s", -300: "-300 µs"} {
		if got := FormatMicros(us); got != want {
			t.Errorf("FormatMicros(%g) = %q, want %q", us, got, want)
		}
	}
}

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	ys := []float64{10, 12, 14, 16, 18}
	if got := Slope(xs, ys); got != 2 {
		t.Errorf("slope %g, want 2", got)
	}
	if Slope(xs[:1], ys[:1]) != 0 || Slope([]float64{1, 1}, []float64{1, 5}) != 0 {
		t.Error("slope of fewer than two distinct xs is not 0")
	}
}

func TestMedian(t *testing.T) {
	cpu := func(v float64) *float64 { return &v }
	spans := func(v uint64) *uint64 { return &v }
	mk := func(p50, thr float64, front float64, peak uint64, errs uint64) Result {
		r := result("gateway", p50, p50*10)
		r.Throughput, r.Requests, r.Errors = thr, 100, errs
		r.Latency.Count, r.TTFT.Count = 100, 100
		r.FrontCPUPer1k = cpu(front)
		r.FrontMemory = &Memory{RSS: peak / 2, Peak: peak}
		r.ExportedSpans = spans(100)
		if errs > 0 {
			r.ErrorSamples = []string{"status 502"}
		}
		return r
	}
	other := result("direct", 1, 10)
	out := Median([]Result{mk(300, 900, 0.3, 50, 0), other, mk(100, 1000, 0.1, 70, 2), mk(200, 800, 0.2, 60, 0)})
	if len(out) != 2 || out[0].Scenario != "gateway" || out[1].Scenario != "direct" || out[1].Runs != 1 {
		t.Fatalf("median groups %+v", out)
	}
	m := out[0]
	if m.Runs != 3 || m.Latency.P50 != 200 || m.Latency.P99 != 2000 || m.Throughput != 900 || *m.FrontCPUPer1k != 0.2 {
		t.Errorf("medians: runs %d p50 %g p99 %g rps %g cpu %g", m.Runs, m.Latency.P50, m.Latency.P99, m.Throughput, *m.FrontCPUPer1k)
	}
	if m.Requests != 300 || m.Errors != 2 || m.Latency.Count != 300 || *m.ExportedSpans != 300 || len(m.ErrorSamples) != 1 {
		t.Errorf("sums: requests %d errors %d timed %d spans %d samples %q", m.Requests, m.Errors, m.Latency.Count, *m.ExportedSpans, m.ErrorSamples)
	}
	if m.FrontMemory.Peak != 70 {
		t.Errorf("peak %d, want the largest, 70", m.FrontMemory.Peak)
	}
	if m.TTFT == nil || m.TTFT.P50 != 100 {
		t.Errorf("ttft %+v", m.TTFT)
	}
}
