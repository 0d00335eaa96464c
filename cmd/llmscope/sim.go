package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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
