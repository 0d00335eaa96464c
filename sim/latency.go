package sim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Profile names accepted by LookupProfile.
const (
	ProfileNone      = "none"
	ProfileRealistic = "realistic"
)

// Profile makes the simulator behave like a hosted API under ordinary load:
// each model has its own speed, every request draws its time to first token
// and its streaming pace around that model's medians, and a small fraction
// of requests fails with 429 or 5xx. Draws come from the request's own PRNG
// (seeded by the request hash), so the same request always gets the same
// latency; the failures are drawn per arrival (the n-th request of a server),
// so a client that retries a 429 is not refused forever.
type Profile struct {
	Name    string
	Models  []ModelSpeed // the longest Prefix that starts the model name wins
	Default ModelSpeed   // models matching no prefix

	// TTFTSpread and SpeedSpread are σ of the log-normal draws of TTFT and
	// tokens per second (0.4 puts p95 at about 1.9× the median).
	TTFTSpread, SpeedSpread float64
	// PieceJitter is the ± fraction of uniform jitter on each piece's delay.
	PieceJitter float64
	// TailRate of requests (a slow replica, a queue) take TailFactor× their
	// drawn TTFT: the long tail of p99.
	TailRate, TailFactor float64

	RateLimitRate   float64 // fraction of requests answered 429 rate_limit_exceeded
	ServerErrorRate float64 // fraction answered 500 (two thirds) or 503 (one third)
}

// ModelSpeed is the median speed of the models whose names start with
// Prefix. Embedding models answer after TTFT.
type ModelSpeed struct {
	Prefix          string
	TTFT            time.Duration // median time to first token
	TokensPerSecond float64       // median pace of streamed pieces (≈ words)
}

// Realistic returns the built-in "realistic" profile: medians in the range
// public measurements of OpenAI's API report (small models answer first and
// stream fastest, reasoning models think for seconds before their first
// token, embeddings take tens of milliseconds), log-normal spread, a 1 % tail
// at 4× TTFT, 1 % 429s and 0.5 % 5xx.
func Realistic() *Profile {
	ms := time.Millisecond
	return &Profile{
		Name: ProfileRealistic,
		Models: []ModelSpeed{
			{"gpt-4.1-nano", 250 * ms, 140},
			{"gpt-4.1-mini", 350 * ms, 90},
			{"gpt-4.1", 450 * ms, 75},
			{"gpt-4o-mini", 350 * ms, 85},
			{"gpt-4o", 450 * ms, 70},
			{"gpt-4-turbo", 600 * ms, 35},
			{"gpt-4", 700 * ms, 25},
			{"gpt-3.5-turbo", 300 * ms, 90},
			{"gpt-5-nano", 900 * ms, 130},
			{"gpt-5-mini", 1500 * ms, 90},
			{"gpt-5", 3000 * ms, 60},
			{"o1-mini", 2000 * ms, 110},
			{"o1", 8000 * ms, 55},
			{"o3-mini", 2500 * ms, 110},
			{"o3", 5000 * ms, 60},
			{"o4-mini", 2500 * ms, 100},
			{"text-embedding-3-small", 60 * ms, 0},
			{"text-embedding-3-large", 90 * ms, 0},
			{"text-embedding-ada-002", 75 * ms, 0},
		},
		Default:         ModelSpeed{TTFT: 500 * ms, TokensPerSecond: 60},
		TTFTSpread:      0.4,
		SpeedSpread:     0.2,
		PieceJitter:     0.3,
		TailRate:        0.01,
		TailFactor:      4,
		RateLimitRate:   0.01,
		ServerErrorRate: 0.005,
	}
}

// LookupProfile returns the profile named name: nil for "none" (or empty),
// Realistic() for "realistic".
func LookupProfile(name string) (*Profile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", ProfileNone:
		return nil, nil
	case ProfileRealistic:
		return Realistic(), nil
	}
	return nil, fmt.Errorf("sim: unknown latency profile %q (want %s or %s)", name, ProfileRealistic, ProfileNone)
}

// Speed returns the medians of model: its longest matching prefix, else
// Default.
func (p *Profile) Speed(model string) ModelSpeed {
	best := -1
	for i, m := range p.Models {
		if strings.HasPrefix(model, m.Prefix) && (best < 0 || len(m.Prefix) > len(p.Models[best].Prefix)) {
			best = i
		}
	}
	if best < 0 {
		return p.Default
	}
	return p.Models[best]
}

// Salts of the profile's draws.
const (
	saltLatency = 0x1a7e9c
	saltFault   = 0xfa017
)

// Bounds of a drawn delay, so no draw is absurd.
const (
	minDrawn = time.Millisecond
	maxDrawn = 2 * time.Minute
)

// profilePacer draws the pacer of request hash h for model under p. A
// non-zero Config.TTFT or TokensPerSecond replaces the model's median.
func (s *Server) profilePacer(h uint64, model string) pacer {
	p := s.cfg.Profile
	sp := p.Speed(model)
	if s.cfg.TTFT > 0 {
		sp.TTFT = s.cfg.TTFT
	}
	if s.cfg.TokensPerSecond > 0 {
		sp.TokensPerSecond = s.cfg.TokensPerSecond
	}
	r := rng{s: h ^ saltLatency}
	ttft := float64(sp.TTFT) * math.Exp(p.TTFTSpread*r.normal())
	if r.float() < p.TailRate {
		ttft *= p.TailFactor
	}
	var perPiece time.Duration
	if sp.TokensPerSecond > 0 {
		tps := sp.TokensPerSecond * math.Exp(p.SpeedSpread*r.normal())
		perPiece = clampDrawn(float64(time.Second) / tps)
	}
	return pacer{
		ttft:     clampDrawn(ttft),
		perPiece: perPiece,
		jitter:   time.Duration(float64(perPiece) * p.PieceJitter),
		r:        rng{s: h ^ saltJitter},
	}
}

func clampDrawn(d float64) time.Duration {
	return min(max(time.Duration(d), minDrawn), maxDrawn)
}

// normal returns a standard normal draw (Box–Muller).
func (r *rng) normal() float64 {
	u := 1 - r.float() // (0, 1]
	v := r.float()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}

// profileGrace is the number of first requests of a server that never fail
// on the profile's account: a newcomer's first call gets its answer.
const profileGrace = 10

// profileFault answers the n-th request with the profile's 429 or 5xx when
// its draw says so, and reports whether it did. A 429 comes after a few tens
// of milliseconds (the limiter answers before any model runs), a 5xx after
// a fraction of a second.
func (s *Server) profileFault(x *exchange) bool {
	p := s.cfg.Profile
	if p == nil || p.RateLimitRate <= 0 && p.ServerErrorRate <= 0 {
		return false
	}
	n := s.profileRequests.Add(1)
	if n <= profileGrace {
		return false
	}
	r := rng{s: uint64(s.cfg.Seed) ^ mix(n^saltFault)}
	u := r.float()
	switch {
	case u < p.RateLimitRate:
		wait := time.Duration(20+r.intn(60)) * time.Millisecond
		if sleep(x.ctx, wait) != nil {
			return true
		}
		retry := 100 + r.intn(1900)
		s.log.Debug("sim: profile rate limit", "path", x.r.URL.Path)
		x.errorCode(http.StatusTooManyRequests,
			"Rate limit reached in organization org-llmscope-sim on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in "+
				strconv.Itoa(retry)+"ms. Visit https://platform.openai.com/account/rate-limits to learn more. (simulated by the llmscope-sim realistic profile)",
			"requests", "rate_limit_exceeded", "")
		return true
	case u < p.RateLimitRate+p.ServerErrorRate:
		wait := time.Duration(100+r.intn(700)) * time.Millisecond
		if sleep(x.ctx, wait) != nil {
			return true
		}
		s.log.Debug("sim: profile server error", "path", x.r.URL.Path)
		if r.intn(3) == 0 {
			x.errorCode(http.StatusServiceUnavailable,
				"The server is overloaded or not ready yet. (simulated by the llmscope-sim realistic profile)", "server_error", "", "")
			return true
		}
		x.errorCode(http.StatusInternalServerError,
			"The server had an error while processing your request. Sorry about that! (simulated by the llmscope-sim realistic profile)", "server_error", "", "")
		return true
	}
	return false
}
