package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SoakConfig is a long open-loop run against one target that watches its
// memory.
type SoakConfig struct {
	Target   Target // must have a Front process
	Kinds    []Kind // request i is of kind i mod len(Kinds)
	Rate     float64
	Duration time.Duration
	Interval time.Duration // between memory samples (default 5s)
	// MetricsURL, when set, is the front's Prometheus endpoint; each sample
	// reads its store queue depth and dropped calls.
	MetricsURL  string
	MaxInFlight int
	Timeout     time.Duration
	Logger      *slog.Logger // one line per sample; nil: none
}

// SoakSample is one reading taken during a soak; CPU figures cover the
// interval since the previous sample.
type SoakSample struct {
	Seconds   float64 `json:"t_s"`    // since the soak started
	RSSMB     float64 `json:"rss_mb"` // front process VmRSS
	PeakMB    float64 `json:"peak_mb"`
	CPUPct    float64 `json:"cpu_pct"`     // front process, % of one core
	SimCPUPct float64 `json:"sim_cpu_pct"` // the upstream process
	GenCPUPct float64 `json:"gen_cpu_pct"` // this process: the load generator
	// OtherCores is the CPU the rest of the machine used, IOWaitCores the
	// time cores sat idle waiting on disk, StealCores what the hypervisor
	// took, all in cores.
	OtherCores  float64 `json:"other_cores"`
	IOWaitCores float64 `json:"iowait_cores"`
	StealCores  float64 `json:"steal_cores"`
	// QueueDepth and Dropped are the front's llmscope_store_queue_depth and
	// llmscope_dropped_total (all reasons) from its /metrics; absent when
	// it serves no such metrics.
	QueueDepth *float64 `json:"store_queue_depth,omitempty"`
	Dropped    *float64 `json:"dropped_total,omitempty"`
	Requests   uint64   `json:"requests"` // completed during the interval
	Errors     uint64   `json:"errors"`
	P50Micros  float64  `json:"p50_us"`
	P99Micros  float64  `json:"p99_us"`
}

// sampler reads the processes' and the machine's counters and turns their
// changes into SoakSamples.
type sampler struct {
	t          Target
	metricsURL string
	hc         *http.Client
	at         time.Time
	cpu        []time.Duration // self, upstream, front (Target.pids order)
	sys        SystemTimes
}

func newSampler(t Target, metricsURL string) (*sampler, error) {
	s := &sampler{t: t, metricsURL: metricsURL, hc: &http.Client{Timeout: 2 * time.Second}}
	_, err := s.take(time.Now())
	return s, err
}

// take returns a sample of what changed since the previous take (its
// Seconds, Requests, Errors and latencies are the caller's to fill).
func (s *sampler) take(now time.Time) (SoakSample, error) {
	var x SoakSample
	if err := s.t.alive(); err != nil {
		return x, err
	}
	m, err := ReadMemory(s.t.Front.PID)
	if err != nil {
		return x, err
	}
	cpu, err := cpuTimes(s.t.pids())
	if err != nil {
		return x, err
	}
	sys, err := SystemCPU()
	if err != nil {
		return x, err
	}
	x.RSSMB, x.PeakMB = mb(m.RSS), mb(m.Peak)
	if s.cpu != nil {
		wall := now.Sub(s.at).Seconds()
		share := func(d time.Duration) float64 { return math.Round(d.Seconds()/wall*100) / 100 }
		pct := func(d time.Duration) float64 { return math.Round(d.Seconds()/wall*1000) / 10 }
		var ours time.Duration
		for i := range cpu {
			ours += cpu[i] - s.cpu[i]
		}
		x.GenCPUPct, x.SimCPUPct, x.CPUPct = pct(cpu[0]-s.cpu[0]), pct(cpu[1]-s.cpu[1]), pct(cpu[2]-s.cpu[2])
		x.OtherCores = max(share(sys.Busy-s.sys.Busy-ours), 0)
		x.IOWaitCores, x.StealCores = share(sys.IOWait-s.sys.IOWait), share(sys.Steal-s.sys.Steal)
	}
	s.at, s.cpu, s.sys = now, cpu, sys
	if s.metricsURL != "" {
		x.QueueDepth, x.Dropped = s.scrape()
	}
	return x, nil
}

// scrape returns the store queue depth and the dropped calls from the
// front's Prometheus text, nil where it cannot tell.
func (s *sampler) scrape() (depth, dropped *float64) {
	resp, err := s.hc.Get(s.metricsURL)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, nil
	}
	for line := range strings.Lines(string(b)) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		base, _, _ := strings.Cut(name, "{")
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		switch base {
		case "llmscope_store_queue_depth":
			depth = &v
		case "llmscope_dropped_total":
			sum := v
			if dropped != nil {
				sum += *dropped
			}
			dropped = &sum
		}
	}
	if depth != nil && dropped == nil {
		zero := 0.0 // a counter vector shows no series before its first drop
		dropped = &zero
	}
	return depth, dropped
}

// SoakReport is what a soak measured.
type SoakReport struct {
	Scenario   string       `json:"scenario"`
	Kinds      []string     `json:"kinds"`
	Rate       float64      `json:"rate"`
	Seconds    float64      `json:"seconds"`
	Requests   uint64       `json:"requests"`
	Errors     uint64       `json:"errors"`
	Unsent     uint64       `json:"unsent,omitempty"`
	Throughput float64      `json:"throughput_rps"`
	Latency    Summary      `json:"latency"`
	TTFT       *Summary     `json:"ttft,omitempty"`
	CPUPer1k   float64      `json:"front_cpu_s_per_1k"`
	Samples    []SoakSample `json:"samples"`
	// Slopes of the least-squares line through the RSS samples, in MB per
	// minute: over every sample, and over the second half only (after
	// caches and pools have grown to their working size).
	SlopeMBPerMin           float64 `json:"rss_slope_mb_per_min"`
	SecondHalfSlopeMBPerMin float64 `json:"rss_slope_second_half_mb_per_min"`
}

// Soak runs cfg and samples the front process's memory every Interval.
func Soak(ctx context.Context, cfg SoakConfig) (*SoakReport, error) {
	t := cfg.Target
	if t.Front == nil {
		return nil, errors.New("loadtest: soak needs a target with a front process")
	}
	if len(cfg.Kinds) == 0 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("loadtest: soak needs kinds, a positive rate and a positive duration")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reqs := make([]payload, len(cfg.Kinds))
	names := make([]string, len(cfg.Kinds))
	anyStream := false
	for i, k := range cfg.Kinds {
		reqs[i] = payload{body: k.Body(), stream: k.Stream}
		names[i] = k.Name
		anyStream = anyStream || k.Stream
	}
	hc := NewClient(max(cfg.MaxInFlight, 64))
	defer hc.CloseIdleConnections()
	pid := t.Front.PID
	cpu0, err := CPUTime(pid)
	if err != nil {
		return nil, err
	}
	smp, err := newSampler(t, cfg.MetricsURL)
	if err != nil {
		return nil, err
	}
	rep := &SoakReport{Scenario: t.Scenario, Kinds: names, Rate: cfg.Rate}
	first, err := smp.take(time.Now())
	if err != nil {
		return nil, err
	}
	rep.Samples = append(rep.Samples, first)

	r := &recorder{open: true, win: &Histogram{}}
	load := Load{Mode: Open, Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Timeout: cfg.Timeout}
	done := make(chan *PhaseStats, 1)
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- runOpen(rctx, hc, t.URL+"/chat/completions", reqs, load, r) }()

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var st *PhaseStats
	var sampleErr error
	sample := func(now time.Time) {
		x, err := smp.take(now)
		if err != nil {
			sampleErr = err
			cancel() // the target is gone: stop the load
			return
		}
		h, n, e := r.window()
		sum := h.Summarize()
		x.Seconds, x.Requests, x.Errors, x.P50Micros, x.P99Micros = round3(now.Sub(start).Seconds()), n, e, sum.P50, sum.P99
		rep.Samples = append(rep.Samples, x)
		log.Info("soak", "t", now.Sub(start).Round(time.Second), "rss_mb", x.RSSMB, "cpu_pct", x.CPUPct,
			"other_cores", x.OtherCores, "iowait_cores", x.IOWaitCores, "queue", fmtOpt(x.QueueDepth),
			"requests", n, "errors", e, "p99", FormatMicros(x.P99Micros))
	}
	for st == nil {
		select {
		case st = <-done:
		case now := <-tick.C:
			if sampleErr == nil {
				sample(now)
			}
		}
	}
	if sampleErr != nil {
		return rep, sampleErr
	}
	if now := time.Now(); now.Sub(smp.at) >= time.Second {
		sample(now) // the tail since the last tick
		if sampleErr != nil {
			return rep, sampleErr
		}
	}
	cpu1, err := CPUTime(pid)
	if err != nil {
		return nil, err
	}
	rep.Seconds = round3(st.Elapsed.Seconds())
	rep.Requests, rep.Errors, rep.Unsent = st.Requests, st.Errors, st.Unsent
	rep.Throughput = round3(st.Throughput())
	rep.Latency = st.Latency.Summarize()
	if anyStream {
		s := st.TTFT.Summarize()
		rep.TTFT = &s
	}
	if st.Requests > 0 {
		rep.CPUPer1k = round6((cpu1 - cpu0).Seconds() * 1000 / float64(st.Requests))
	}
	xs, ys := make([]float64, len(rep.Samples)), make([]float64, len(rep.Samples))
	for i, s := range rep.Samples {
		xs[i], ys[i] = s.Seconds/60, s.RSSMB
	}
	rep.SlopeMBPerMin = round3(Slope(xs, ys))
	h := len(xs) / 2
	rep.SecondHalfSlopeMBPerMin = round3(Slope(xs[h:], ys[h:]))
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("soak cut short after %v: %w", time.Since(start).Round(time.Second), err)
	}
	return rep, nil
}

func fmtOpt(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func mb(b uint64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// Slope returns the slope of the least-squares line through the points
// (xs[i], ys[i]); 0 with fewer than two distinct xs.
func Slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

func (s *SoakReport) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\nSoak: %s, open loop %g/s for %.0f s, kinds %s in turn: %.0f req/s, %d errors", s.Scenario, s.Rate,
		s.Seconds, strings.Join(s.Kinds, ", "), s.Throughput, s.Errors)
	if s.Unsent > 0 {
		fmt.Fprintf(b, " (+%d unsent)", s.Unsent)
	}
	fmt.Fprintf(b, "; latency p50 %s, p99 %s, p99.9 %s", FormatMicros(s.Latency.P50), FormatMicros(s.Latency.P99), FormatMicros(s.Latency.P999))
	if s.TTFT != nil {
		fmt.Fprintf(b, "; TTFT p50 %s, p99 %s", FormatMicros(s.TTFT.P50), FormatMicros(s.TTFT.P99))
	}
	fmt.Fprintf(b, "; front CPU %.3f s/1k req. RSS trend: %+.3f MB/min over the run, %+.3f MB/min over its second half.\n\n",
		s.CPUPer1k, s.SlopeMBPerMin, s.SecondHalfSlopeMBPerMin)
	b.WriteString("CPU % is of one core over the interval before the sample; other is the rest of the machine in cores; queue and dropped are the gateway's store queue depth and dropped calls.\n\n")
	b.WriteString("| t (s) | RSS MB | peak MB | gateway CPU % | sim CPU % | generator CPU % | other cores | iowait cores | steal cores | queue | dropped | requests | errors | p50 | p99 |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range s.Samples {
		fmt.Fprintf(b, "| %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %s | %s | %d | %d | %s | %s |\n",
			x.Seconds, x.RSSMB, x.PeakMB, x.CPUPct, x.SimCPUPct, x.GenCPUPct, x.OtherCores, x.IOWaitCores, x.StealCores,
			fmtOpt(x.QueueDepth), fmtOpt(x.Dropped), x.Requests, x.Errors, FormatMicros(x.P50Micros), FormatMicros(x.P99Micros))
	}
}
