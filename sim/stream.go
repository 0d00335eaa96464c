package sim

import (
	"fmt"
	"net/http"
	"time"
)

// sse writes one Server-Sent Events response: headers on the first event, a
// flush after every event, the reset_after fault, and pacing.
type sse struct {
	x       *exchange
	rc      *http.ResponseController
	pace    pacer
	line    []byte // scratch for one framed event
	sent    int    // data events written
	started bool
}

func (x *exchange) newSSE(p pacer) *sse {
	return &sse{x: x, rc: http.NewResponseController(x.w), pace: p, line: make([]byte, 0, 512)}
}

// send writes one event (with an "event:" line when name is not empty) and
// flushes it. Before the event that would exceed reset_after it drops the
// connection instead and returns errReset.
func (s *sse) send(name string, data []byte) error {
	if s.x.fault.resetAfter >= 0 && s.sent >= s.x.fault.resetAfter {
		s.x.s.log.Debug("sim: injected reset", "path", s.x.r.URL.Path, "after", s.sent)
		return resetConn(s.x.w)
	}
	if !s.started {
		s.started = true
		h := s.x.w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		s.x.w.WriteHeader(http.StatusOK)
	}
	s.line = s.line[:0]
	if name != "" {
		s.line = append(s.line, "event: "...)
		s.line = append(s.line, name...)
		s.line = append(s.line, '\n')
	}
	s.line = append(s.line, "data: "...)
	s.line = append(s.line, data...)
	s.line = append(s.line, '\n', '\n')
	if _, err := s.x.w.Write(s.line); err != nil {
		return fmt.Errorf("sim: write event: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("sim: flush event: %w", err)
	}
	s.sent++
	return nil
}

// done writes the closing "data: [DONE]" of chat and completion streams.
func (s *sse) done() error { return s.send("", []byte("[DONE]")) }

// wait sleeps d, returning early with an error when the client goes away.
func (s *sse) wait(d time.Duration) error { return sleep(s.x.ctx, d) }

// pacer draws the delays of one answer: TTFT before the first content piece,
// then 1/TokensPerSecond before each further piece, each with ±Jitter drawn
// from the request's own PRNG so pacing is deterministic too. A delay whose
// base is 0 stays 0.
type pacer struct {
	ttft, perPiece, jitter time.Duration
	r                      rng
}

func (s *Server) pacer(h uint64) pacer {
	return pacer{ttft: s.cfg.TTFT, perPiece: s.perPiece, jitter: s.cfg.Jitter, r: rng{s: h ^ saltJitter}}
}

// modelPacer is the pacer of request hash h for model: drawn from the
// Profile when there is one, else pacer(h).
func (s *Server) modelPacer(h uint64, model string) pacer {
	if s.cfg.Profile != nil {
		return s.profilePacer(h, model)
	}
	return s.pacer(h)
}

func (p *pacer) jittered(base time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	if p.jitter > 0 {
		base += time.Duration((p.r.float()*2 - 1) * float64(p.jitter))
	}
	return max(base, 0)
}

// first returns the delay before the first content piece.
func (p *pacer) first() time.Duration { return p.jittered(p.ttft) }

// next returns the delay before each further piece.
func (p *pacer) next() time.Duration { return p.jittered(p.perPiece) }

// total returns the time a non-streamed answer of n pieces takes: the same
// delays a stream would have, in one sleep.
func (p *pacer) total(n int) time.Duration {
	d := p.first()
	for i := 1; i < n; i++ {
		d += p.next()
	}
	return d
}
