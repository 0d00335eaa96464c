package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
)

// SoakConfig is a long open-loop run against one target that watches its
// memory.
type SoakConfig struct {
	Target      Target // must have a Front process
	Kinds       []Kind // request i is of kind i mod len(Kinds)
	Rate        float64
	Duration    time.Duration
	Interval    time.Duration // between memory samples (default 5s)
	MaxInFlight int
	Timeout     time.Duration
	Logger      *slog.Logger // one line per sample; nil: none
}

// SoakSample is one reading taken during a soak.
type SoakSample struct {
	Seconds   float64 `json:"t_s"`    // since the soak started
	RSSMB     float64 `json:"rss_mb"` // front process VmRSS
	PeakMB    float64 `json:"peak_mb"`
	CPUPct    float64 `json:"cpu_pct"` // front process CPU since the last sample, % of one core
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
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
	rep := &SoakReport{Scenario: t.Scenario, Kinds: names, Rate: cfg.Rate}
	m, err := ReadMemory(pid)
	if err != nil {
		return nil, err
	}
	rep.Samples = append(rep.Samples, SoakSample{RSSMB: mb(m.RSS), PeakMB: mb(m.Peak)})

	r := &recorder{open: true, win: &Histogram{}}
	load := Load{Mode: Open, Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Timeout: cfg.Timeout}
	done := make(chan *PhaseStats, 1)
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- runOpen(rctx, hc, t.URL+"/chat/completions", reqs, load, r) }()

	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	lastCPU, lastT := cpu0, start
	var st *PhaseStats
	var sampleErr error
	for st == nil {
		select {
		case st = <-done:
		case now := <-tick.C:
			if sampleErr != nil {
				continue
			}
			m, err := ReadMemory(pid)
			c, err2 := CPUTime(pid)
			if err := errors.Join(t.alive(), err, err2); err != nil {
				sampleErr = err
				cancel() // the target is gone: stop the load
				continue
			}
			h, n, e := r.window()
			s := SoakSample{Seconds: round3(now.Sub(start).Seconds()), RSSMB: mb(m.RSS), PeakMB: mb(m.Peak),
				CPUPct:   math.Round((c-lastCPU).Seconds()/now.Sub(lastT).Seconds()*1000) / 10,
				Requests: n, Errors: e, P50Micros: h.Summarize().P50, P99Micros: h.Summarize().P99}
			lastCPU, lastT = c, now
			rep.Samples = append(rep.Samples, s)
			log.Info("soak", "t", time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), "rss_mb", s.RSSMB,
				"cpu_pct", s.CPUPct, "requests", n, "errors", e, "p99", FormatMicros(s.P99Micros))
		}
	}
	if sampleErr != nil {
		return rep, sampleErr
	}
	cpu1, err := CPUTime(pid)
	if err != nil {
		return nil, err
	}
	m, err = ReadMemory(pid)
	if err != nil {
		return nil, err
	}
	rep.Samples = append(rep.Samples, SoakSample{Seconds: round3(time.Since(start).Seconds()), RSSMB: mb(m.RSS), PeakMB: mb(m.Peak)})
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
	b.WriteString("| t (s) | RSS MB | peak MB | CPU % | requests | errors | p50 | p99 |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range s.Samples {
		fmt.Fprintf(b, "| %.0f | %.1f | %.1f | %.1f | %d | %d | %s | %s |\n", x.Seconds, x.RSSMB, x.PeakMB, x.CPUPct,
			x.Requests, x.Errors, FormatMicros(x.P50Micros), FormatMicros(x.P99Micros))
	}
}
