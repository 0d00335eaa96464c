package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"time"
)

// Target is one way to reach the upstream: directly, or through a process
// in front of it.
type Target struct {
	Scenario string   // e.g. direct, gateway, gateway+export, reverseproxy
	URL      string   // base URL with its /v1
	Front    *Process // the process between client and upstream; nil for direct
	Upstream *Process // the upstream (simulator) every target shares
	Sink     *OTLPSink
}

// Config is a matrix of phases: every Load × Kind × Target.
type Config struct {
	Targets []Target
	Kinds   []Kind
	Loads   []Load
	// Warmup is an untimed run of the same load before each phase (0: none).
	Warmup time.Duration
	// Repeat runs the whole matrix this many times (default 1), each round
	// of every phase before the next; fold the results with Median.
	Repeat int
	// SettleLimit bounds the wait for the processes to go idle before and
	// after each phase (default 10s).
	SettleLimit time.Duration
	Logger      *slog.Logger // progress, one line per phase; nil: none
}

// Result is one phase: one target under one load of one kind.
type Result struct {
	Scenario     string   `json:"scenario"`
	Runs         int      `json:"runs,omitempty"` // set by Median: how many runs were folded in
	Kind         string   `json:"kind"`
	Mode         Mode     `json:"mode"`
	Rate         float64  `json:"rate,omitempty"`
	Concurrency  int      `json:"concurrency,omitempty"`
	Seconds      float64  `json:"seconds"` // first send to last completion
	Requests     uint64   `json:"requests"`
	Errors       uint64   `json:"errors"`
	Unsent       uint64   `json:"unsent,omitempty"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	Throughput   float64  `json:"throughput_rps"`
	Latency      Summary  `json:"latency"`
	TTFT         *Summary `json:"ttft,omitempty"`
	SendLag      *Summary `json:"send_lag,omitempty"`
	// CPU seconds per 1,000 requests started, measured from /proc over the
	// phase plus the settling after it: the front process (absent for
	// direct), the simulator, and the load generator itself.
	FrontCPUPer1k  *float64 `json:"front_cpu_s_per_1k,omitempty"`
	SimCPUPer1k    float64  `json:"sim_cpu_s_per_1k"`
	ClientCPUPer1k float64  `json:"client_cpu_s_per_1k"`
	// FrontMemory is the front process's RSS after the phase and its peak
	// during it (since its start when PeakSinceStart). The peak is at least
	// FrontRSSStart, the RSS when the phase started, which holds what the
	// Go runtime kept from earlier phases.
	FrontMemory    *Memory `json:"front_memory,omitempty"`
	FrontRSSStart  uint64  `json:"front_rss_start_bytes,omitempty"`
	PeakSinceStart bool    `json:"peak_since_start,omitempty"`
	// OtherCPU is the CPU the rest of the machine used during the phase and
	// the settling after it, in cores: a measure of how noisy the phase was.
	OtherCPU float64 `json:"other_cpu_cores"`
	// ExportedSpans is what the OTLP sink received during the phase.
	ExportedSpans *uint64 `json:"exported_spans,omitempty"`
}

// Label names the load of r, e.g. "open 1000/s".
func (r *Result) Label() string { return loadLabel(r.Mode, r.Rate, r.Concurrency) }

func loadLabel(m Mode, rate float64, conc int) string {
	switch m {
	case Open:
		return fmt.Sprintf("open %g/s", rate)
	case Closed:
		return fmt.Sprintf("closed ×%d", conc)
	}
	return string(m)
}

// RunMatrix measures every Load × Kind × Target of cfg. Phases are
// interleaved so a noisy machine hurts every target alike: for each load
// and kind, every target runs its phase (each round starting with the next
// target) before the next kind, and with Repeat the whole matrix again
// after that. It stops at the first error, such as a
// target process that died, returning the results so far.
func RunMatrix(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.SettleLimit <= 0 {
		cfg.SettleLimit = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clients := make([]*http.Client, len(cfg.Targets))
	for i := range cfg.Targets {
		conns := 64
		for _, l := range cfg.Loads {
			conns = max(conns, l.Concurrency, min(l.MaxInFlight, 4096))
		}
		clients[i] = NewClient(conns)
		defer clients[i].CloseIdleConnections()
	}
	cfg.Repeat = max(cfg.Repeat, 1)
	total := cfg.Repeat * len(cfg.Loads) * len(cfg.Kinds) * len(cfg.Targets)
	var results []Result
	start := time.Now()
	round := 0
	for range cfg.Repeat {
		for _, load := range cfg.Loads {
			for _, kind := range cfg.Kinds {
				for j := range cfg.Targets {
					ti := (round + j) % len(cfg.Targets)
					res, err := runPhase(ctx, cfg, cfg.Targets[ti], clients[ti], kind, load)
					if err != nil {
						return results, fmt.Errorf("%s %s %s: %w", loadLabel(load.Mode, load.Rate, load.Concurrency), kind.Name, cfg.Targets[ti].Scenario, err)
					}
					results = append(results, *res)
					log.Info("phase", "n", fmt.Sprintf("%d/%d", len(results), total), "load", res.Label(),
						"kind", kind.Name, "scenario", res.Scenario, "rps", math.Round(res.Throughput),
						"p50", FormatMicros(res.Latency.P50), "p99", FormatMicros(res.Latency.P99),
						"errors", res.Errors, "elapsed", time.Since(start).Round(time.Second))
				}
				round++
			}
		}
	}
	return results, nil
}

// runPhase runs one warm-up and one measured phase against t.
func runPhase(ctx context.Context, cfg Config, t Target, hc *http.Client, kind Kind, load Load) (*Result, error) {
	if err := t.alive(); err != nil {
		return nil, err
	}
	pids := t.pids()
	if cfg.Warmup > 0 {
		w := load
		w.Duration = cfg.Warmup
		if _, err := Run(ctx, hc, t.URL, kind, w); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	if err := Settle(ctx, cfg.SettleLimit, pids...); err != nil {
		return nil, err
	}
	before, err := cpuTimes(pids)
	if err != nil {
		return nil, err
	}
	sys0, err := SystemCPU()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	peakReset := true
	var rssStart uint64
	if t.Front != nil {
		peakReset = ResetPeak(t.Front.PID) == nil
		m, err := ReadMemory(t.Front.PID)
		if err != nil {
			return nil, err
		}
		rssStart = m.RSS
	}
	var spans0 uint64
	if t.Sink != nil {
		spans0 = t.Sink.Stats().Spans
	}
	st, err := Run(ctx, hc, t.URL, kind, load)
	if err != nil {
		return nil, err
	}
	if err := Settle(ctx, cfg.SettleLimit, pids...); err != nil {
		return nil, err
	}
	after, err := cpuTimes(pids)
	if err != nil {
		return nil, err
	}
	sys1, err := SystemCPU()
	if err != nil {
		return nil, err
	}
	other := sys1.Busy - sys0.Busy
	for i := range pids {
		other -= after[i] - before[i]
	}
	wall := time.Since(t0)
	if err := t.alive(); err != nil {
		return nil, err
	}
	res := &Result{
		Scenario: t.Scenario, Kind: kind.Name, Mode: load.Mode,
		Seconds: round3(st.Elapsed.Seconds()), Requests: st.Requests, Errors: st.Errors, Unsent: st.Unsent,
		ErrorSamples: st.ErrorSamples, Throughput: round3(st.Throughput()), Latency: st.Latency.Summarize(),
	}
	switch load.Mode {
	case Open:
		res.Rate = load.Rate
		s := st.SendLag.Summarize()
		res.SendLag = &s
	case Closed:
		res.Concurrency = load.Concurrency
	}
	if kind.Stream {
		s := st.TTFT.Summarize()
		res.TTFT = &s
	}
	res.OtherCPU = math.Round(max(other.Seconds(), 0)/wall.Seconds()*100) / 100
	per1k := func(i int) float64 {
		if st.Requests == 0 {
			return 0
		}
		return round6((after[i] - before[i]).Seconds() * 1000 / float64(st.Requests))
	}
	// pids: self, upstream, then the front process when there is one.
	res.ClientCPUPer1k = per1k(0)
	res.SimCPUPer1k = per1k(1)
	if t.Front != nil {
		v := per1k(2)
		res.FrontCPUPer1k = &v
		m, err := ReadMemory(t.Front.PID)
		if err != nil {
			return nil, err
		}
		res.FrontMemory = &m
		res.FrontRSSStart = rssStart
		res.PeakSinceStart = !peakReset
	}
	if t.Sink != nil {
		n := t.Sink.Stats().Spans - spans0
		res.ExportedSpans = &n
	}
	return res, nil
}

// pids returns this process, the upstream's and the front process's pids.
func (t Target) pids() []int {
	p := []int{os.Getpid(), t.Upstream.PID}
	if t.Front != nil {
		p = append(p, t.Front.PID)
	}
	return p
}

func (t Target) alive() error {
	if err := t.Upstream.Alive(); err != nil {
		return err
	}
	if t.Front != nil {
		return t.Front.Alive()
	}
	return nil
}

func cpuTimes(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		t, err := CPUTime(pid)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func round3(v float64) float64 { return math.Round(v*1e3) / 1e3 }
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
