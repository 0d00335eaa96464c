package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"llmscope/loadtest"
)

// The scenarios of `llmscope bench`, in report order.
const (
	scnDirect       = "direct"
	scnGateway      = "gateway"
	scnGatewayExp   = "gateway+export"
	scnGatewayGuard = "gateway+guard"
	scnGatewayCapt  = "gateway+capture"
	scnGatewaySlow  = "gateway+slowstore"
	scnReverseProxy = "reverseproxy"
)

// slowStoreDelay is the wait gateway+slowstore adds to every store commit:
// a slow disk's fsync or a remote database's round trips.
const slowStoreDelay = "20ms"

var benchScenarios = []string{scnDirect, scnGateway, scnGatewayExp, scnReverseProxy}

// allScenarios are every scenario bench knows. These run on request:
// gateway+guard (the gateway with an admin token, client keys and its
// limits, against gateway with neither), gateway+capture (the gateway
// keeping prompts and answers) and gateway+slowstore (the gateway over a
// store whose commits each wait slowStoreDelay).
var allScenarios = []string{scnDirect, scnGateway, scnGatewayExp, scnGatewayGuard, scnGatewayCapt, scnGatewaySlow, scnReverseProxy}

// benchClientKey is the key the load generator sends (loadtest's requests
// carry it), made a client key of gateway+guard.
const benchClientKey = "sk-llmscope-bench"

// benchOptions are the flags of bench.
type benchOptions struct {
	duration, warmup, settle, timeout time.Duration
	rate                              float64
	concurrency, maxInFlight, repeat  int
	sequential                        bool
	kinds                             []loadtest.Kind
	scenarios                         []string
	soak, soakInterval                time.Duration
	soakScenario                      string
	simTTFT, simTPS                   string
	mlflow, jsonOut, mdOut            string
	serveFlags                        []string
}

func parseBenchOptions(args []string, stderr io.Writer) (*benchOptions, error) {
	s := newSettings("bench", stderr)
	duration := s.str("duration", "", "5s", "measured time of each phase")
	warmup := s.str("warmup", "", "1s", "untimed warm-up before each phase")
	rate := s.str("rate", "", "1000", "open-loop phase: requests per second (0 = no open-loop phase)")
	conc := s.str("concurrency", "", "16", "closed-loop phase: requests in flight (0 = no closed-loop phase)")
	seq := s.boolean("sequential", "", true, "run a sequential phase (one request at a time)")
	kinds := s.str("kinds", "", "", "comma-separated request kinds among "+kindNames()+" (default: all; for --soak the small ones)")
	repeat := s.str("repeat", "", "1", "run the whole matrix this many times and report the median of each figure")
	scenarios := s.str("scenarios", "", strings.Join(benchScenarios, ","), "comma-separated scenarios")
	soak := s.str("soak", "", "0s", "instead of the matrix: an open-loop run this long at --rate against one gateway, sampling its RSS")
	soakInterval := s.str("soak-interval", "", "5s", "soak: time between RSS samples")
	soakScenario := s.str("soak-scenario", "", scnGateway, "soak: gateway or gateway+export")
	simTTFT := s.str("sim-ttft", "", "0s", "simulator: delay before the first token")
	simTPS := s.str("sim-tps", "", "0", "simulator: tokens per second (0 = no delay)")
	mlflow := s.str("mlflow", "", "", "gateway+export also exports to this MLflow tracking server")
	jsonOut := s.str("json", "", "", "write the report as JSON to this file")
	mdOut := s.str("md", "", "", "write the Markdown tables to this file (default: standard output)")
	maxInFlight := s.str("max-inflight", "", "1024", "open loop: most requests in flight; later ones wait, their wait counted")
	timeout := s.str("timeout", "", "30s", "per-request timeout")
	settle := s.str("settle-limit", "", "10s", "longest wait for the processes to go idle around a phase")
	serveFlags := s.str("serve-flags", "", "", `extra flags for the gateway's serve, space-separated (e.g. "--pprof" to profile it at /debug/pprof/)`)
	if err := s.parse(args); err != nil {
		return nil, err
	}
	o := &benchOptions{serveFlags: strings.Fields(serveFlags.val), simTTFT: simTTFT.val, simTPS: simTPS.val, mlflow: mlflow.val, jsonOut: jsonOut.val, mdOut: mdOut.val, soakScenario: soakScenario.val}
	var err error
	for _, d := range []struct {
		opt *option
		dst *time.Duration
	}{{duration, &o.duration}, {warmup, &o.warmup}, {soak, &o.soak}, {soakInterval, &o.soakInterval}, {timeout, &o.timeout}, {settle, &o.settle}} {
		if *d.dst, err = d.opt.Duration(); err != nil {
			return nil, err
		}
	}
	if o.rate, err = rate.Float(); err != nil {
		return nil, err
	}
	c, err := conc.Int()
	if err != nil {
		return nil, err
	}
	m, err := maxInFlight.Int()
	if err != nil {
		return nil, err
	}
	rp, err := repeat.Int()
	if err != nil {
		return nil, err
	}
	o.concurrency, o.maxInFlight, o.repeat = int(c), int(m), int(rp)
	if o.sequential, err = seq.Bool(); err != nil {
		return nil, err
	}
	kindList := kinds.val
	if kindList == "" {
		kindList = kindNames()
		if o.soak > 0 {
			kindList = "nonstream-small,stream-small" // at 1000/s the 50 KB kinds overload a small machine: a soak measures queues, not leaks
		}
	}
	for _, name := range splitList(kindList) {
		k, err := loadtest.KindByName(name)
		if err != nil {
			return nil, fmt.Errorf("--kinds: %w", err)
		}
		o.kinds = append(o.kinds, k)
	}
	for _, name := range splitList(scenarios.val) {
		if !slices.Contains(allScenarios, name) {
			return nil, fmt.Errorf("--scenarios: unknown scenario %q (known: %s)", name, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, name)
	}
	switch {
	case len(o.kinds) == 0 || len(o.scenarios) == 0:
		return nil, errors.New("--kinds and --scenarios must name at least one each")
	case o.duration <= 0:
		return nil, errors.New("--duration must be positive")
	case o.repeat < 1:
		return nil, errors.New("--repeat must be at least 1")
	case o.soak > 0 && o.soakScenario != scnGateway && o.soakScenario != scnGatewayExp:
		return nil, fmt.Errorf("--soak-scenario must be %s or %s", scnGateway, scnGatewayExp)
	case o.soak > 0 && o.rate <= 0:
		return nil, errors.New("--soak needs a positive --rate")
	case o.soak == 0 && !o.sequential && o.rate <= 0 && o.concurrency <= 0:
		return nil, errors.New("no phase to run: --sequential=false, --rate 0 and --concurrency 0")
	}
	return o, nil
}

func kindNames() string {
	names := make([]string, len(loadtest.Kinds))
	for i, k := range loadtest.Kinds {
		names[i] = k.Name
	}
	return strings.Join(names, ",")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runBench is `llmscope bench`: the simulator, the gateway (twice: plain and
// with an OTLP exporter) and a bare reverse proxy run as child processes of
// this binary, and the load generator here measures every scenario against
// the same simulator. `llmscope bench proxy` is the bare reverse proxy.
func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "proxy" {
		return runBenchProxy(ctx, args[1:], stdout, stderr)
	}
	o, err := parseBenchOptions(args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, "info", "text")
	if err != nil {
		return err
	}
	started := time.Now()
	rep := &loadtest.Report{Started: started, Machine: machine(), Settings: o.settings()}

	env, err := benchRig(ctx, o, stderr)
	if env != nil {
		defer env.stop(stderr)
	}
	if err != nil {
		return err
	}
	var runErr error
	if o.soak > 0 {
		t := env.targets[0]
		logger.Info("soak", "scenario", t.Scenario, "rate", o.rate, "duration", o.soak, "url", t.URL)
		rep.Soak, runErr = loadtest.Soak(ctx, loadtest.SoakConfig{
			Target: t, Kinds: o.kinds, Rate: o.rate, Duration: o.soak, Interval: o.soakInterval,
			MetricsURL:  strings.TrimSuffix(t.URL, "/v1") + "/metrics",
			MaxInFlight: o.maxInFlight, Timeout: o.timeout, Logger: logger,
		})
	} else {
		loads := o.loads()
		logger.Info("bench", "phases", o.repeat*len(loads)*len(o.kinds)*len(env.targets), "per_phase", o.duration+o.warmup)
		var runs []loadtest.Result
		runs, runErr = loadtest.RunMatrix(ctx, loadtest.Config{
			Targets: env.targets, Kinds: o.kinds, Loads: loads, Warmup: o.warmup, Repeat: o.repeat, SettleLimit: o.settle, Logger: logger,
		})
		rep.Results = loadtest.Median(runs)
		if o.repeat > 1 {
			rep.Runs = runs
		}
		rep.Comparisons = loadtest.Compare(rep.Results)
	}
	if env.sink != nil {
		st := env.sink.Stats()
		rep.OTLP = &st
	}
	rep.Machine.LoadEnd = loadAvg()
	rep.WallSeconds = time.Since(started).Round(time.Millisecond).Seconds()
	if err := writeBenchReport(rep, o, stdout); err != nil {
		return errors.Join(runErr, err)
	}
	logger.Info("bench done", "wall", time.Since(started).Round(time.Second))
	return runErr
}

// loads returns the phases to run, in order.
func (o *benchOptions) loads() []loadtest.Load {
	base := loadtest.Load{Duration: o.duration, MaxInFlight: o.maxInFlight, Timeout: o.timeout}
	var out []loadtest.Load
	if o.sequential {
		l := base
		l.Mode, l.Concurrency = loadtest.Sequential, 1
		out = append(out, l)
	}
	if o.rate > 0 {
		l := base
		l.Mode, l.Rate = loadtest.Open, o.rate
		out = append(out, l)
	}
	if o.concurrency > 0 {
		l := base
		l.Mode, l.Concurrency = loadtest.Closed, o.concurrency
		out = append(out, l)
	}
	return out
}

func (o *benchOptions) settings() map[string]any {
	names := make([]string, len(o.kinds))
	for i, k := range o.kinds {
		names[i] = k.Name
	}
	m := map[string]any{
		"duration": o.duration.String(), "warmup": o.warmup.String(), "repeat": o.repeat, "rate": o.rate, "concurrency": o.concurrency,
		"sequential": o.sequential, "kinds": strings.Join(names, ","), "scenarios": strings.Join(o.scenarios, ","),
		"sim_ttft": o.simTTFT, "sim_tps": o.simTPS, "max_inflight": o.maxInFlight, "mlflow": o.mlflow,
	}
	if o.soak > 0 {
		m["soak"] = o.soak.String()
		m["soak_scenario"] = o.soakScenario
	}
	return m
}

// rig is the processes and servers a bench run measures.
type rig struct {
	dir     string
	procs   []*loadtest.Process
	sink    *loadtest.OTLPSink
	sinkSrv *http.Server
	targets []loadtest.Target
}

// benchRig starts the simulator and, for each scenario to measure, what
// stands in front of it. It returns the rig built so far with any error, so
// the caller can stop it.
func benchRig(ctx context.Context, o *benchOptions, stderr io.Writer) (*rig, error) {
	bin, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "llmscope-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	r := &rig{dir: dir}
	env := childEnv()
	start := func(name, marker string, args ...string) (*loadtest.Process, error) {
		p, err := loadtest.StartProcess(ctx, name, bin, args, dir, env, marker)
		if err != nil {
			return nil, err
		}
		r.procs = append(r.procs, p)
		fmt.Fprintf(stderr, "bench: %s pid %d at %s\n", name, p.PID, p.URL)
		return p, nil
	}
	sim, err := start("sim", "simulated", "sim", "--addr", "127.0.0.1:0", "--ttft", o.simTTFT, "--tokens-per-second", o.simTPS, "--log-level", "warn")
	if err != nil {
		return r, err
	}
	simURL := strings.TrimRight(sim.URL, "/") // http://host:port/v1
	scenarios := o.scenarios
	if o.soak > 0 {
		scenarios = []string{o.soakScenario}
	}
	for _, scn := range scenarios {
		t := loadtest.Target{Scenario: scn, Upstream: sim}
		switch scn {
		case scnDirect:
			t.URL = simURL
		case scnGateway, scnGatewayExp, scnGatewayGuard, scnGatewayCapt, scnGatewaySlow:
			db := filepath.Join(dir, strings.ReplaceAll(scn, "+", "-")+".db")
			args := []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--upstream", simURL, "--log-level", "warn"}
			if scn == scnGatewayGuard {
				keys := filepath.Join(dir, "keys.yaml")
				sum := sha256.Sum256([]byte(benchClientKey))
				if err := os.WriteFile(keys, []byte("keys:\n  - name: bench\n    sha256: "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
					return r, fmt.Errorf("client keys: %w", err)
				}
				args = append(args, "--admin-token", "bench-admin-token-0123456789", "--client-keys", keys)
			} else {
				args = append(args, "--max-inflight", "0", "--max-conns", "0") // limits off, but for the body budget
			}
			switch scn {
			case scnGatewayCapt:
				args = append(args, "--capture")
			case scnGatewaySlow:
				args = append(args, "--store-delay", slowStoreDelay)
			}
			args = append(args, o.serveFlags...)
			if scn == scnGatewayExp {
				if r.sink == nil {
					if err := r.startSink(); err != nil {
						return r, err
					}
				}
				args = append(args, "--otlp-endpoint", "http://"+r.sinkSrv.Addr+"/v1/traces")
				if o.mlflow != "" {
					args = append(args, "--mlflow", o.mlflow)
				}
				t.Sink = r.sink
			}
			if t.Front, err = start(scn, "listening on", args...); err != nil {
				return r, err
			}
			t.URL = strings.TrimRight(t.Front.URL, "/") + "/v1"
		case scnReverseProxy:
			if t.Front, err = start(scn, "listening on", "bench", "proxy", "--addr", "127.0.0.1:0", "--upstream", strings.TrimSuffix(simURL, "/v1")); err != nil {
				return r, err
			}
			t.URL = strings.TrimRight(t.Front.URL, "/") + "/v1"
		}
		r.targets = append(r.targets, t)
	}
	return r, nil
}

// startSink serves a discarding OTLP/HTTP receiver on a loopback port.
func (r *rig) startSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("otlp sink: %w", err)
	}
	r.sink = &loadtest.OTLPSink{}
	r.sinkSrv = &http.Server{Addr: ln.Addr().String(), Handler: r.sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.sinkSrv.Serve(ln) }()
	return nil
}

// stop ends the child processes (front ones first), shows what they wrote
// on standard error, closes the sink and removes the temp dir.
func (r *rig) stop(stderr io.Writer) {
	for i := len(r.procs) - 1; i >= 0; i-- {
		p := r.procs[i]
		if err := p.Stop(30 * time.Second); err != nil {
			fmt.Fprintf(stderr, "bench: stop %s: %v\n", p.Name, err)
		} else if s := strings.TrimSpace(p.Stderr()); s != "" {
			fmt.Fprintf(stderr, "bench: %s wrote on stderr:\n%s\n", p.Name, s)
		}
	}
	if r.sinkSrv != nil {
		_ = r.sinkSrv.Close()
	}
	_ = os.RemoveAll(r.dir)
}

// childEnv is this process's environment without the settings that would
// change what the children do (keys, upstreams, exporters, llmscope
// options): every child is configured by its flags alone.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LLMSCOPE_") || strings.HasPrefix(k, "OPENAI_") || strings.HasPrefix(k, "MLFLOW_") || strings.HasPrefix(k, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func writeBenchReport(rep *loadtest.Report, o *benchOptions, stdout io.Writer) error {
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --json: %w", err)
		}
	}
	md := rep.Markdown()
	if o.mdOut != "" {
		if err := os.WriteFile(o.mdOut, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write --md: %w", err)
		}
		return nil
	}
	_, err := io.WriteString(stdout, md)
	return err
}

func machine() loadtest.Machine {
	return loadtest.Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()}
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// runBenchProxy is `llmscope bench proxy`: a bare httputil.ReverseProxy to
// --upstream that records nothing, flushing every write (FlushInterval -1),
// with the same connection pool limits as the gateway's transport. It is
// the floor one extra hop costs.
func runBenchProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := newSettings("bench proxy", stderr)
	addr := s.str("addr", "", "127.0.0.1:0", "listen address")
	upstream := s.str("upstream", "", "", "upstream root URL (without /v1)")
	if err := s.parse(args); err != nil {
		return err
	}
	u, err := url.Parse(upstream.val)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("--upstream: want an absolute URL, got %q", upstream.val)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	tr.IdleConnTimeout = 90 * time.Second
	tr.DisableCompression = true
	rp.Transport = tr
	rp.ErrorLog = log.New(stderr, "bench proxy: ", 0)
	ln, err := net.Listen("tcp", addr.val)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Full duplex: without it, when the upstream answers a stream before the
	// transport has seen the end of the request body, the server's discard of
	// the unread body races the transport's copy of it, and the transport
	// closes the upstream connection mid-stream (a few percent of streamed
	// 50 KB requests fail with "use of closed network connection").
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	fmt.Fprintf(stdout, "llmscope bench proxy: listening on http://%s\n", ln.Addr())
	return serveUntilDone(ctx, srv, ln)
}
