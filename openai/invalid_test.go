package openai

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"llmscope"
)

func TestParseRequestInvalidNumbers(t *testing.T) {
	long := "1" + strings.Repeat("0", 100) + ".5"
	for _, tc := range []struct {
		body    string
		invalid []InvalidParam
		check   func(p llmscope.Params) bool // the valid fields read
	}{
		{`{"frequency_penalty":-1e999}`, []InvalidParam{{"frequency_penalty", "-1e999"}},
			func(p llmscope.Params) bool { return p.FrequencyPenalty == nil }},
		{`{"temperature":1e999,"top_p":0.5}`, []InvalidParam{{"temperature", "1e999"}},
			func(p llmscope.Params) bool { return p.Temperature == nil && *p.TopP == 0.5 }},
		{`{"presence_penalty":1E+400}`, []InvalidParam{{"presence_penalty", "1E+400"}}, nil},
		{`{"top_p":"NaN"}`, []InvalidParam{{"top_p", `"NaN"`}}, nil},
		{`{"max_tokens":1e400}`, []InvalidParam{{"max_tokens", "1e400"}},
			func(p llmscope.Params) bool { return p.MaxTokens == nil }},
		{`{"seed":99999999999999999999}`, []InvalidParam{{"seed", "99999999999999999999"}},
			func(p llmscope.Params) bool { return p.Seed == nil }},
		{`{"seed":-9223372036854775809}`, []InvalidParam{{"seed", "-9223372036854775809"}}, nil},
		{`{"n":1.5,"dimensions":[3],"top_logprobs":true,"max_completion_tokens":{}}`,
			[]InvalidParam{{"n", "1.5"}, {"dimensions", "[3]"}, {"top_logprobs", "true"}, {"max_completion_tokens", "{}"}}, nil},
		{`{"max_output_tokens":` + long + `}`, []InvalidParam{{"max_output_tokens", long[:MaxInvalidRaw]}}, nil},
		// Valid edge values, and null (not sent), are not invalid.
		{`{"seed":9223372036854775807,"n":-9223372036854775808,"max_tokens":2.56e2,"temperature":null,"top_p":1e-999}`, nil,
			func(p llmscope.Params) bool {
				return *p.Seed == math.MaxInt64 && *p.N == math.MinInt64 && *p.MaxTokens == 256 &&
					p.Temperature == nil && *p.TopP == 0
			}},
		// The last member of a name wins, for Invalid too.
		{`{"temperature":1e999,"temperature":0.3}`, nil,
			func(p llmscope.Params) bool { return *p.Temperature == 0.3 }},
		{`{"temperature":0.3,"temperature":1e999}`, []InvalidParam{{"temperature", "1e999"}},
			func(p llmscope.Params) bool { return p.Temperature == nil }},
	} {
		r := ParseRequest([]byte(tc.body))
		if !r.Valid {
			t.Errorf("%s: not valid", tc.body)
			continue
		}
		if !reflect.DeepEqual(r.Invalid, tc.invalid) {
			t.Errorf("%s: Invalid = %+v, want %+v", tc.body, r.Invalid, tc.invalid)
		}
		if tc.check != nil && !tc.check(r.Params) {
			t.Errorf("%s: params %+v", tc.body, r.Params)
		}
		if _, err := json.Marshal(r.Params); err != nil {
			t.Errorf("%s: params cannot be encoded: %v", tc.body, err)
		}
	}
}

func TestParseRequestValidDoesNotAllocate(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"hi"}],"temperature":0.7,"top_p":1,"max_tokens":256,"seed":42,"n":1,"frequency_penalty":-0.5}`)
	// One pointer per number parameter set is what ParseRequest always
	// allocated; validating them adds nothing.
	if n := testing.AllocsPerRun(100, func() { _ = ParseRequest(body) }); n > 6 {
		t.Errorf("ParseRequest allocates %v times for 6 valid numbers, want 6", n)
	}
}

// recordSink keeps the last call it was given.
type recordSink struct{ c *llmscope.Call }

func (s *recordSink) Record(c *llmscope.Call) { s.c = c }

func TestFinishRecordsInvalidParamsAsTags(t *testing.T) {
	body := []byte(`{"model":"m\u0000x","frequency_penalty":-1e999,"seed":99999999999999999999}`)
	req := ParseRequest(body)
	sink := &recordSink{}
	f := &Finisher{Sink: sink}
	c := &llmscope.Call{ID: "c1", Operation: llmscope.OpModels, Status: http.StatusOK, RequestModel: req.Model}
	f.Finish(c, req, body, &Response{Model: "r\xff"})
	if sink.c != c {
		t.Fatal("call not recorded")
	}
	want := map[string]string{
		"llmscope.invalid.frequency_penalty": "-1e999",
		"llmscope.invalid.seed":              "99999999999999999999",
		llmscope.TagSanitized:                "request_model,response_model",
	}
	if !reflect.DeepEqual(c.Tags, want) {
		t.Errorf("tags %v, want %v", c.Tags, want)
	}
	if c.RequestModel != "mx" || c.ResponseModel != "r\uFFFD" {
		t.Errorf("models %q %q not sanitized", c.RequestModel, c.ResponseModel)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Errorf("call cannot be encoded: %v", err)
	}
}
