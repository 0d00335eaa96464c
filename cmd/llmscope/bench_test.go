package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"llmscope/loadtest"
)

// runBenchBinary runs `llmscope bench args...` and returns its report and
// its standard output.
func runBenchBinary(t *testing.T, args ...string) (*loadtest.Report, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench", "--json", out}, args...)...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadtest.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return &rep, stdout.String()
}

// TestBenchEndToEnd runs the whole harness with tiny phases: every scenario
// is measured under every load with sane figures, and compared to direct.
func TestBenchEndToEnd(t *testing.T) {
	rep, md := runBenchBinary(t, "--duration", "300ms", "--warmup", "100ms", "--rate", "100", "--concurrency", "2",
		"--kinds", "nonstream-small,stream-50k")
	kinds := []string{"nonstream-small", "stream-50k"}
	modes := []loadtest.Mode{loadtest.Sequential, loadtest.Open, loadtest.Closed}
	seen := map[string]loadtest.Result{}
	for _, r := range rep.Results {
		seen[string(r.Mode)+"/"+r.Kind+"/"+r.Scenario] = r
	}
	if len(rep.Results) != len(benchScenarios)*len(kinds)*len(modes) {
		t.Errorf("%d results, want %d", len(rep.Results), len(benchScenarios)*len(kinds)*len(modes))
	}
	for _, m := range modes {
		for _, k := range kinds {
			for _, s := range benchScenarios {
				name := string(m) + "/" + k + "/" + s
				r, ok := seen[name]
				if !ok {
					t.Errorf("%s: missing", name)
					continue
				}
				if r.Throughput <= 0 || r.Requests == 0 || r.Errors != 0 || r.Latency.Count == 0 {
					t.Errorf("%s: %.1f req/s, %d requests, %d errors %q, %d timed", name, r.Throughput, r.Requests, r.Errors, r.ErrorSamples, r.Latency.Count)
				}
				l := r.Latency
				if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
					t.Errorf("%s: percentiles out of order: %+v", name, l)
				}
				if strings.HasPrefix(k, "stream") != (r.TTFT != nil) {
					t.Errorf("%s: TTFT %+v", name, r.TTFT)
				} else if r.TTFT != nil && (r.TTFT.P50 <= 0 || r.TTFT.P50 > l.P50 || r.TTFT.Max > l.Max) {
					t.Errorf("%s: TTFT %+v beyond latency %+v", name, *r.TTFT, l)
				}
				if (m == loadtest.Open) != (r.SendLag != nil) {
					t.Errorf("%s: send lag %+v", name, r.SendLag)
				}
				front := s != scnDirect
				if front != (r.FrontCPUPer1k != nil) || front != (r.FrontMemory != nil) {
					t.Errorf("%s: front cpu %v memory %v", name, r.FrontCPUPer1k, r.FrontMemory)
				} else if front && (*r.FrontCPUPer1k < 0 || r.FrontMemory.RSS == 0 || r.FrontMemory.Peak == 0) {
					t.Errorf("%s: front cpu %v memory %+v", name, *r.FrontCPUPer1k, *r.FrontMemory)
				}
				if r.SimCPUPer1k < 0 || r.ClientCPUPer1k < 0 {
					t.Errorf("%s: sim cpu %v client cpu %v", name, r.SimCPUPer1k, r.ClientCPUPer1k)
				}
			}
		}
	}
	if want := len(modes) * len(kinds) * (len(benchScenarios) - 1); len(rep.Comparisons) != want {
		t.Errorf("%d comparisons, want %d", len(rep.Comparisons), want)
	}
	for _, c := range rep.Comparisons {
		if c.ThroughputRatio <= 0 || (c.Scenario == scnReverseProxy) != (c.RatioToProxy == nil) {
			t.Errorf("comparison %+v", c)
		}
	}
	if rep.OTLP == nil || rep.OTLP.Spans == 0 || rep.OTLP.Malformed != 0 {
		t.Errorf("the OTLP sink got %+v; gateway+export exported nothing", rep.OTLP)
	}
	if rep.Machine.CPUs == 0 || rep.WallSeconds <= 0 {
		t.Errorf("machine %+v wall %v", rep.Machine, rep.WallSeconds)
	}
	for _, want := range []string{"| sequential | nonstream-small | gateway |", "| closed ×2 | stream-50k | reverseproxy |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// The comparison table: a signed difference (a noisy machine can make
	// either sign).
	if !regexp.MustCompile(`\| open 100/s \| stream-50k \| gateway\+export \| [+-][0-9]`).MatchString(md) {
		t.Errorf("markdown lacks the comparison row of open 100/s stream-50k gateway+export:\n%s", md)
	}
}

// TestBenchSoak runs a short soak against the gateway: RSS is sampled and
// every request is accounted for.
func TestBenchSoak(t *testing.T) {
	rep, md := runBenchBinary(t, "--soak", "1500ms", "--soak-interval", "500ms", "--rate", "100", "--kinds", "nonstream-small,stream-small")
	s := rep.Soak
	if s == nil || len(rep.Results) != 0 {
		t.Fatalf("soak %+v, %d matrix results", s, len(rep.Results))
	}
	if s.Scenario != scnGateway || s.Requests != 150 || s.Errors != 0 || s.Throughput <= 0 || s.TTFT == nil {
		t.Errorf("soak %+v", s)
	}
	if len(s.Samples) < 2 {
		t.Fatalf("%d samples", len(s.Samples))
	}
	for _, x := range s.Samples {
		if x.RSSMB <= 0 || x.QueueDepth == nil || x.Dropped == nil || *x.Dropped != 0 {
			t.Errorf("sample without RSS or the gateway's metrics, or with drops: %+v", x)
		}
	}
	if !strings.Contains(md, "RSS trend") {
		t.Errorf("markdown lacks the soak:\n%s", md)
	}
}

func TestBenchRejectsUnknownNames(t *testing.T) {
	for _, args := range [][]string{{"--kinds", "huge"}, {"--scenarios", "nginx"}, {"--soak", "1s", "--soak-scenario", "direct"}} {
		var stderr bytes.Buffer
		if _, err := parseBenchOptions(args, &stderr); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
