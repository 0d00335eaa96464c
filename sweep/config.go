package sweep

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// Config is one point of the grid. Nil fields are not sent.
type Config struct {
	Model       string
	Temperature *float64
	TopP        *float64
	MaxTokens   *int64
	System      *string
}

// Configs expands the grid: every combination, models varying slowest.
func (s *Spec) Configs() []Config {
	out := []Config{}
	floats := func(vs []float64) []*float64 {
		if len(vs) == 0 {
			return []*float64{nil}
		}
		ps := make([]*float64, len(vs))
		for i := range vs {
			ps[i] = &vs[i]
		}
		return ps
	}
	ints := []*int64{nil}
	if len(s.Grid.MaxTokens) > 0 {
		ints = ints[:0]
		for i := range s.Grid.MaxTokens {
			ints = append(ints, &s.Grid.MaxTokens[i])
		}
	}
	systems := []*string{nil}
	if len(s.Grid.System) > 0 {
		systems = systems[:0]
		for i := range s.Grid.System {
			systems = append(systems, &s.Grid.System[i])
		}
	}
	seen := map[string]bool{}
	for _, m := range s.Grid.Model {
		for _, t := range floats(s.Grid.Temperature) {
			for _, p := range floats(s.Grid.TopP) {
				for _, mt := range ints {
					for _, sys := range systems {
						c := Config{Model: m, Temperature: t, TopP: p, MaxTokens: mt, System: sys}
						if k := c.Label(); !seen[k] { // a value listed twice is one configuration
							seen[k] = true
							out = append(out, c)
						}
					}
				}
			}
		}
	}
	return out
}

// SystemHash is a short hash of a system prompt, logged as a param.
func SystemHash(system string) string {
	sum := sha256.Sum256([]byte(system))
	return hex.EncodeToString(sum[:])[:12]
}

// Label names the configuration by every value it sets, e.g.
// "model=gpt-4o-mini temperature=0.7 system=3fa2b1c4d5e6". It does not
// depend on the rest of the grid, so adding values to a grid keeps the
// names (and runs) of the configurations already there.
func (c Config) Label() string {
	return strings.Join(c.parts(nil), " ")
}

// Short names the configuration by the values that vary in the grid, a
// system prompt by its first words.
func (c Config) Short(vary map[string]bool) string {
	parts := c.parts(vary)
	if len(parts) == 0 {
		return c.Model
	}
	return strings.Join(parts, " ")
}

func (c Config) parts(only map[string]bool) []string {
	var parts []string
	add := func(k, v string) {
		if only == nil || only[k] {
			parts = append(parts, k+"="+v)
		}
	}
	add("model", c.Model)
	if c.Temperature != nil {
		add("temperature", strconv.FormatFloat(*c.Temperature, 'g', -1, 64))
	}
	if c.TopP != nil {
		add("top_p", strconv.FormatFloat(*c.TopP, 'g', -1, 64))
	}
	if c.MaxTokens != nil {
		add("max_tokens", strconv.FormatInt(*c.MaxTokens, 10))
	}
	if c.System != nil {
		if only == nil {
			add("system", SystemHash(*c.System))
		} else {
			// The hash tells apart prompts that begin alike.
			add("system", strconv.Quote(snippet(*c.System, 24))+"#"+SystemHash(*c.System)[:4])
		}
	}
	return parts
}

// snippet returns the first n runes of s, with an ellipsis when cut.
func snippet(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}

// Varying returns the grid's parameters that take more than one value.
func (s *Spec) Varying() map[string]bool {
	return map[string]bool{
		"model": len(s.Grid.Model) > 1, "temperature": len(s.Grid.Temperature) > 1,
		"top_p": len(s.Grid.TopP) > 1, "max_tokens": len(s.Grid.MaxTokens) > 1,
		"system": len(s.Grid.System) > 1,
	}
}

// RunName is the name of the configuration's run in this sweep. Streamed
// sweeps have runs of their own: their latencies are not comparable.
func (s *Spec) RunName(c Config) string {
	if s.Stream {
		return s.Name + ": " + c.Label() + " stream=true"
	}
	return s.Name + ": " + c.Label()
}

// Messages returns the messages of item under c: the grid's system prompt
// first, when it sets one.
func (c Config) Messages(it Item) []Message {
	if c.System == nil {
		return it.Messages
	}
	return append([]Message{{Role: "system", Content: *c.System}}, it.Messages...)
}

// Body returns the chat completion request for item under c.
func (c Config) Body(it Item, stream bool) []byte {
	req := struct {
		Model       string    `json:"model"`
		Messages    []Message `json:"messages"`
		Temperature *float64  `json:"temperature,omitempty"`
		TopP        *float64  `json:"top_p,omitempty"`
		MaxTokens   *int64    `json:"max_tokens,omitempty"`
		Stream      bool      `json:"stream,omitempty"`
	}{c.Model, c.Messages(it), c.Temperature, c.TopP, c.MaxTokens, stream}
	b, _ := json.Marshal(req) // strings, numbers and pointers to them always marshal
	return b
}
