package openai

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"llmscope"
)

// TestEstimatesWaitingAreBounded: what waits for the tokenizer off the
// request path is bounded in calls and bytes; past the bounds a call is
// estimated on the caller's goroutine, before Finish returns, so a flood
// of answers without usage cannot grow memory.
func TestEstimatesWaitingAreBounded(t *testing.T) {
	var f Finisher
	held := 0
	for f.hold(1 << 10) {
		held++
	}
	if held != maxPendingEstimates {
		t.Errorf("%d small estimates held, want %d", held, maxPendingEstimates)
	}
	for range held {
		f.release(1 << 10)
	}
	if f.hold(maxPendingEstimateBytes + 1) {
		t.Error("an estimate larger than the byte bound was held")
	}
	if f.pendingCalls.Load() != 0 || f.pendingBytes.Load() != 0 {
		t.Errorf("a refused hold left %d calls, %d bytes", f.pendingCalls.Load(), f.pendingBytes.Load())
	}

	// With the bounds reached, Finish estimates at once.
	var got *llmscope.Call
	f.Sink = llmscope.SinkFunc(func(c *llmscope.Call) { got = c })
	f.pendingBytes.Store(maxPendingEstimateBytes)
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`)
	c := &llmscope.Call{ID: "c1", Operation: llmscope.OpChat, RequestModel: "gpt-4o-mini", Status: 200}
	f.Finish(c, ParseRequest(body), body, &Response{})
	if got != c || c.Usage.Source != llmscope.UsageEstimated || c.Usage.InputTokens == 0 {
		t.Fatalf("over the bound, Finish returned before recording an estimated call: %+v", c.Usage)
	}
	if f.pendingBytes.Load() != maxPendingEstimateBytes {
		t.Errorf("pending bytes %d after an estimate on the caller's goroutine", f.pendingBytes.Load())
	}
}

// TestLabelsAreBounded: a request's labels cannot make a queued call large.
func TestLabelsAreBounded(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderRun, strings.Repeat("r", 60<<10))
	h.Set(HeaderUser, strings.Repeat("é", 200)) // 400 bytes of two-byte runes
	var tags []string
	for i := range 500 {
		tags = append(tags, fmt.Sprintf("%d%s=%s", i, strings.Repeat("k", 300), strings.Repeat("v", 300)))
	}
	h.Set(HeaderTags, strings.Join(tags, ","))
	var c llmscope.Call
	ReadLabels(h, &c)
	if len(c.Run) != MaxLabelBytes || len(c.User) > MaxLabelBytes || !utf8.ValidString(c.User) {
		t.Errorf("run %d bytes, user %d bytes (valid UTF-8: %t)", len(c.Run), len(c.User), utf8.ValidString(c.User))
	}
	if len(c.Tags) != MaxTags {
		t.Errorf("%d tags kept, want %d", len(c.Tags), MaxTags)
	}
	for k, v := range c.Tags {
		if len(k) > MaxTagKeyBytes || len(v) > MaxLabelBytes {
			t.Fatalf("tag of %d+%d bytes", len(k), len(v))
		}
	}
}
