package llmscope_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"llmscope"
)

func ptr[T any](v T) *T { return &v }

func TestSanitizeFixesEveryPoison(t *testing.T) {
	cost := &llmscope.Cost{InputUSD: 1, OutputUSD: 2, TotalUSD: 3, PriceSource: "table\xff"}
	c := &llmscope.Call{
		ID:            "id\x00",
		Start:         time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
		DurationMS:    math.NaN(),
		TTFTMS:        math.Inf(1),
		OverheadMS:    2,
		RequestModel:  "gpt\xff\xfe-4o\x00",
		ResponseModel: "fine",
		ErrorType:     "\x00",
		Params: llmscope.Params{
			Temperature:      ptr(0.5),
			FrequencyPenalty: ptr(math.Inf(-1)),
			TopP:             ptr(math.NaN()),
			Stop:             []string{"ok", "bad\xc3"},
		},
		Usage: llmscope.Usage{InputTokens: -5, OutputTokens: 7},
		Cost:  cost,
		Tags:  map[string]string{"k\x00": "v\xff", "fine": "yes"},
		Input: strings.Repeat("a", 100) + "\xed\xa0\x80", // a surrogate is not valid UTF-8
	}
	changed := c.Sanitize()
	want := []string{"start", "duration_ms", "ttft_ms", "id", "request_model", "error_type", "input",
		"params.top_p", "params.frequency_penalty", "params.stop", "usage.input_tokens", "cost", "tags"}
	if !reflect.DeepEqual(changed, want) {
		t.Errorf("changed %q,\n want %q", changed, want)
	}
	if c.DurationMS != 0 || c.TTFTMS != 0 || c.OverheadMS != 2 || !c.Start.IsZero() {
		t.Errorf("floats or start not fixed: %v %v %v %v", c.DurationMS, c.TTFTMS, c.OverheadMS, c.Start)
	}
	if c.ID != "id" || c.RequestModel != "gpt\uFFFD-4o" || c.ErrorType != "" || c.ResponseModel != "fine" {
		t.Errorf("strings: %q %q %q", c.ID, c.RequestModel, c.ErrorType)
	}
	if c.Params.FrequencyPenalty != nil || c.Params.TopP != nil || *c.Params.Temperature != 0.5 ||
		c.Params.Stop[1] != "bad\uFFFD" {
		t.Errorf("params %+v", c.Params)
	}
	if c.Usage.InputTokens != 0 || c.Usage.OutputTokens != 7 {
		t.Errorf("usage %+v", c.Usage)
	}
	if c.Cost == cost || c.Cost.PriceSource != "table\uFFFD" || cost.PriceSource != "table\xff" || c.Cost.TotalUSD != 3 {
		t.Errorf("cost %+v (the shared cost must not change: %+v)", c.Cost, cost)
	}
	wantTags := map[string]string{"k": "v\uFFFD", "fine": "yes", llmscope.TagSanitized: strings.Join(want, ",")}
	if !reflect.DeepEqual(c.Tags, wantTags) {
		t.Errorf("tags %q, want %q", c.Tags, wantTags)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Errorf("sanitized call cannot be encoded: %v", err)
	}
	if again := c.Sanitize(); again != nil {
		t.Errorf("second Sanitize changed %q", again)
	}

	// A cost that is not finite is unknown.
	c = &llmscope.Call{Cost: &llmscope.Cost{TotalUSD: math.Inf(1)}}
	if got := c.Sanitize(); !reflect.DeepEqual(got, []string{"cost"}) || c.Cost != nil {
		t.Errorf("changed %q, cost %+v", got, c.Cost)
	}
}

func TestSanitizeCleanCallIsUntouchedAndFree(t *testing.T) {
	c := &llmscope.Call{
		ID: llmscope.NewID(), Start: time.Now(), DurationMS: 812.4, TTFTMS: 143.2, Operation: llmscope.OpChat,
		RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini-2024-07-18", Status: 200, FinishReason: "stop",
		Params: llmscope.Params{Temperature: ptr(0.7), Stop: []string{"\n\n"}},
		Usage:  llmscope.Usage{InputTokens: 21, OutputTokens: 87, TotalTokens: 108, Source: llmscope.UsageReported},
		Cost:   &llmscope.Cost{TotalUSD: 0.001, PriceSource: "openai"},
		Tags:   map[string]string{"team": "search", "ünï": "cödé"},
		Input:  strings.Repeat("héllo ", 1000),
	}
	before, _ := json.Marshal(c)
	if changed := c.Sanitize(); changed != nil {
		t.Fatalf("clean call changed: %q", changed)
	}
	if after, _ := json.Marshal(c); string(after) != string(before) {
		t.Errorf("clean call changed:\n%s\n%s", before, after)
	}
	if n := testing.AllocsPerRun(100, func() { c.Sanitize() }); n != 0 {
		t.Errorf("Sanitize of a clean call allocates %v times", n)
	}
	var nilTags llmscope.Call
	nilTags.Sanitize()
	if nilTags.Tags != nil {
		t.Errorf("Sanitize allocated tags for a clean call: %v", nilTags.Tags)
	}
}
