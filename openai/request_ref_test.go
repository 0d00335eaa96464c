package openai

import (
	"strings"

	"github.com/tidwall/gjson"
)

// parseRequestGJSON is ParseRequest as it was with gjson alone (validate,
// then ForEach over the members): the reference ParseRequest is tested
// against.
func parseRequestGJSON(body []byte) Request {
	var r Request
	if !validJSON(body) {
		return r
	}
	root := gjson.Parse(str(body))
	if !root.IsObject() {
		return r
	}
	r.Valid = true
	p := &r.Params
	root.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "model":
			r.Model = strings.Clone(v.Str)
		case "stream":
			r.Stream = v.Type == gjson.True
		case "stream_options":
			r.IncludeUsage = v.Get("include_usage").Type == gjson.True
			if iu := v.Get("include_usage"); iu.IsBool() {
				b := iu.Bool()
				r.Params.IncludeUsage = &b
			}
		case "temperature":
			p.Temperature = float(v)
		case "top_p":
			p.TopP = float(v)
		case "max_tokens":
			p.MaxTokens = integer(v)
		case "max_completion_tokens":
			p.MaxCompletionTokens = integer(v)
		case "max_output_tokens":
			p.MaxOutputTokens = integer(v)
		case "n":
			p.N = integer(v)
		case "seed":
			p.Seed = integer(v)
		case "stop":
			p.Stop = stops(v)
		case "presence_penalty":
			p.PresencePenalty = float(v)
		case "frequency_penalty":
			p.FrequencyPenalty = float(v)
		case "response_format":
			p.ResponseFormat = strings.Clone(v.Get("type").Str)
		case "text": // Responses API: text.format.type
			p.ResponseFormat = strings.Clone(v.Get("format.type").Str)
		case "tools":
			if v.IsArray() {
				n := int64(len(v.Array()))
				p.Tools = &n
			}
		case "tool_choice":
			p.ToolChoice = toolChoice(v)
		case "parallel_tool_calls":
			p.ParallelToolCalls = boolean(v)
		case "reasoning_effort":
			p.ReasoningEffort = strings.Clone(v.Str)
		case "reasoning": // Responses API: reasoning.effort
			p.ReasoningEffort = strings.Clone(v.Get("effort").Str)
		case "logprobs":
			p.Logprobs = boolean(v)
		case "top_logprobs":
			p.TopLogprobs = integer(v)
		case "user":
			p.User = strings.Clone(v.Str)
		case "dimensions":
			p.Dimensions = integer(v)
		case "encoding_format":
			p.EncodingFormat = strings.Clone(v.Str)
		case "service_tier":
			p.ServiceTier = strings.Clone(v.Str)
		}
		return true
	})
	return r
}

// captureGJSON is CaptureInput and CaptureTools as they were with gjson
// alone: the reference Capture is tested against.
func captureGJSON(body []byte, max int) (input, tools string) {
	if !validJSON(body) {
		return "", ""
	}
	s := str(body)
	var out string
	for _, key := range [...]string{"messages", "input", "prompt"} {
		if v := gjson.Get(s, key); v.Exists() {
			out = v.Raw
			break
		}
	}
	if ins := gjson.Get(s, "instructions"); ins.Type == gjson.String && out != "" {
		out = `{"instructions":` + ins.Raw + `,"input":` + out + `}`
	}
	input = Truncate(out, max)
	if v := gjson.Get(s, "tools"); v.IsArray() && v.Raw != "[]" && (max <= 0 || len(v.Raw) <= max) {
		tools = strings.Clone(v.Raw)
	}
	return input, tools
}
