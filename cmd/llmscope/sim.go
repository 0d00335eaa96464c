package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"llmscope/sim"
)

func runSim(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	s := newSettings("sim", stderr)
	addr := s.str("addr", "LLMSCOPE_SIM_ADDR", "127.0.0.1:8701", "listen address")
	seed := s.str("seed", "LLMSCOPE_SIM_SEED", "1", "seed of the deterministic answers")
	ttft := s.str("ttft", "LLMSCOPE_SIM_TTFT", "0s", "delay before the first token")
	tps := s.str("tokens-per-second", "LLMSCOPE_SIM_TOKENS_PER_SECOND", "0", "streaming pace (0 = no delay)")
	jitter := s.str("jitter", "LLMSCOPE_SIM_JITTER", "0s", "random +/- added to each delay")
	errRate := s.str("error-rate", "LLMSCOPE_SIM_ERROR_RATE", "0", "fraction of requests answered with --error-status")
	errStatus := s.str("error-status", "LLMSCOPE_SIM_ERROR_STATUS", "500", "status of injected errors")
	profile := s.str("profile", "LLMSCOPE_SIM_PROFILE", "none", "latency and failures: none (fixed --ttft and --tokens-per-second) or realistic (per-model TTFT and speed drawn with jitter, about 1% 429 and 0.5% 5xx; a non-zero --ttft or --tokens-per-second replaces its medians)")
	logLevel := s.str("log-level", "LLMSCOPE_LOG_LEVEL", "info", "debug, info, warn or error")
	if err := s.parse(args); err != nil {
		return err
	}
	var cfg sim.Config
	var err error
	if cfg.Seed, err = seed.Int(); err != nil {
		return err
	}
	if cfg.TTFT, err = ttft.Duration(); err != nil {
		return err
	}
	if cfg.TokensPerSecond, err = tps.Float(); err != nil {
		return err
	}
	if cfg.Jitter, err = jitter.Duration(); err != nil {
		return err
	}
	if cfg.ErrorRate, err = errRate.Float(); err != nil {
		return err
	}
	status, err := errStatus.Int()
	if err != nil {
		return err
	}
	cfg.ErrorStatus = int(status)
	if cfg.Profile, err = sim.LookupProfile(profile.val); err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	logger, err := newLogger(stderr, logLevel.val, "text")
	if err != nil {
		return err
	}
	cfg.Logger = logger
	ln, err := net.Listen("tcp", addr.val)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim.New(cfg), ReadHeaderTimeout: 30 * time.Second}
	fmt.Fprintf(stdout, "llmscope sim: simulated OpenAI-compatible API on http://%s/v1 (answers are generated text, not a model)\n", ln.Addr())
	return serveUntilDone(ctx, srv, ln)
}

// inProcessSimConfig is the configuration of the simulator serve (or chat,
// sweep) runs in-process: --sim-ttft, --sim-tokens-per-second and the
// latency profile of --sim-profile. "auto" is realistic only for a newcomer's
// serve: parsed options (chat and sweep pass unparsed ones), no --upstream
// (so the simulator was picked for want of OPENAI_API_KEY) and a fixed port;
// with --upstream sim or port 0 (tests, scripts) it is none, so their calls
// are instant and never fail on their own.
func inProcessSimConfig(o *serveOptions, logger *slog.Logger) (sim.Config, error) {
	var cfg sim.Config
	var err error
	if cfg.TTFT, err = o.simTTFT.Duration(); err != nil {
		return cfg, err
	}
	if cfg.TokensPerSecond, err = o.simTPS.Float(); err != nil {
		return cfg, err
	}
	name := strings.ToLower(strings.TrimSpace(o.simProfile.val))
	if name == "" || name == "auto" {
		name = sim.ProfileNone
		if o.upstream.val == "" && o.upstream.from != "" && !ephemeralPort(o.addr.val) {
			name = sim.ProfileRealistic
		}
	}
	if cfg.Profile, err = sim.LookupProfile(name); err != nil {
		return cfg, fmt.Errorf("--sim-profile: %w (or auto)", err)
	}
	if cfg.Profile != nil && logger != nil {
		logger.Info("simulator latency profile: per-model TTFT and streaming speed with jitter, about 1% 429 and 0.5% 5xx answers; --sim-profile none answers instantly",
			"profile", name)
	}
	return cfg, nil
}

// ephemeralPort reports whether addr asks for a port chosen by the system.
func ephemeralPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && (port == "0" || port == "")
}

// serveUntilDone serves ln until ctx ends, then shuts srv down, giving
// requests in flight 10 s.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
