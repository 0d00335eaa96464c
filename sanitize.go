package llmscope

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// TagSanitized is the tag Sanitize sets on a call it changed: the names of
// the changed fields, comma-separated. The Recorder adds "store_refused"
// when a store refused the call.
const TagSanitized = "llmscope.sanitized"

// TagInvalidPrefix starts the tags recording request parameters that could
// not be read as what they should be (a non-finite float, an integer that
// does not fit): "llmscope.invalid.<name>" = the value as the client sent it.
const TagInvalidPrefix = "llmscope.invalid."

// Sanitize makes c storable and exportable whatever a client or an upstream
// put into it: non-finite floats become 0 (durations) or nil (parameters; a
// cost with one becomes nil), strings are made valid UTF-8 (U+FFFD for each
// invalid sequence) without NUL bytes, negative token counts become 0, and
// a start time JSON cannot encode becomes the zero time. It returns the
// names of the fields it changed and adds them to the TagSanitized tag;
// when nothing needed a change it returns nil and allocates nothing.
func (c *Call) Sanitize() []string {
	var changed []string
	mark := func(name string) { changed = append(changed, name) }

	if y := c.Start.Year(); y < 0 || y > 9999 {
		c.Start = time.Time{}
		mark("start")
	}
	for _, f := range [...]struct {
		name string
		v    *float64
	}{{"duration_ms", &c.DurationMS}, {"ttft_ms", &c.TTFTMS}, {"overhead_ms", &c.OverheadMS}} {
		if !finite(*f.v) {
			*f.v = 0
			mark(f.name)
		}
	}
	for _, s := range [...]struct {
		name string
		v    *string
	}{
		{"id", &c.ID}, {"trace_id", &c.TraceID}, {"operation", &c.Operation}, {"provider", &c.Provider},
		{"endpoint", &c.Endpoint}, {"request_model", &c.RequestModel}, {"response_model", &c.ResponseModel},
		{"error_type", &c.ErrorType}, {"finish_reason", &c.FinishReason}, {"usage.source", &c.Usage.Source},
		{"experiment", &c.Experiment}, {"run", &c.Run}, {"user", &c.User}, {"session", &c.Session},
		{"input", &c.Input}, {"output", &c.Output},
	} {
		if cleanString(s.v) {
			mark(s.name)
		}
	}
	p := &c.Params
	for _, f := range [...]struct {
		name string
		v    **float64
	}{
		{"params.temperature", &p.Temperature}, {"params.top_p", &p.TopP},
		{"params.presence_penalty", &p.PresencePenalty}, {"params.frequency_penalty", &p.FrequencyPenalty},
	} {
		if *f.v != nil && !finite(**f.v) {
			*f.v = nil
			mark(f.name)
		}
	}
	for _, s := range [...]struct {
		name string
		v    *string
	}{
		{"params.response_format", &p.ResponseFormat}, {"params.tool_choice", &p.ToolChoice},
		{"params.reasoning_effort", &p.ReasoningEffort}, {"params.user", &p.User},
		{"params.encoding_format", &p.EncodingFormat}, {"params.service_tier", &p.ServiceTier},
	} {
		if cleanString(s.v) {
			mark(s.name)
		}
	}
	stop := false
	for i := range p.Stop {
		stop = cleanString(&p.Stop[i]) || stop
	}
	if stop {
		mark("params.stop")
	}
	for _, n := range [...]struct {
		name string
		v    *int64
	}{
		{"usage.input_tokens", &c.Usage.InputTokens}, {"usage.output_tokens", &c.Usage.OutputTokens},
		{"usage.total_tokens", &c.Usage.TotalTokens}, {"usage.cached_input_tokens", &c.Usage.CachedInputTokens},
		{"usage.reasoning_tokens", &c.Usage.ReasoningTokens},
	} {
		if *n.v < 0 {
			*n.v = 0
			mark(n.name)
		}
	}
	if c.Cost != nil {
		if !finite(c.Cost.InputUSD) || !finite(c.Cost.OutputUSD) || !finite(c.Cost.TotalUSD) {
			c.Cost = nil
			mark("cost")
		} else if !clean(c.Cost.PriceSource) {
			cost := *c.Cost // the cost may be shared with other calls
			cleanString(&cost.PriceSource)
			c.Cost = &cost
			mark("cost")
		}
	}
	if c.cleanTags() {
		mark("tags")
	}
	if changed != nil {
		c.addSanitized(changed...)
	}
	return changed
}

// addSanitized adds names to c's TagSanitized tag (allocating c.Tags when
// it is nil), after the names already there.
func (c *Call) addSanitized(names ...string) {
	if c.Tags == nil {
		c.Tags = make(map[string]string, 1)
	}
	v := strings.Join(names, ",")
	if old := c.Tags[TagSanitized]; old != "" {
		v = old + "," + v
	}
	c.Tags[TagSanitized] = v
}

// cleanTags replaces c.Tags by a cleaned copy when a key or value is not
// clean, and reports whether it did.
func (c *Call) cleanTags() bool {
	dirty := false
	for k, v := range c.Tags {
		if !clean(k) || !clean(v) {
			dirty = true
			break
		}
	}
	if !dirty {
		return false
	}
	tags := make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		cleanString(&k)
		cleanString(&v)
		tags[k] = v
	}
	c.Tags = tags
	return true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// clean reports whether s is valid UTF-8 without NUL bytes.
func clean(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// cleanString makes *s clean and reports whether it had to change it.
func cleanString(s *string) bool {
	if clean(*s) {
		return false
	}
	*s = strings.ReplaceAll(strings.ToValidUTF8(*s, "\uFFFD"), "\x00", "")
	return true
}
