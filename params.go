package llmscope

// Params holds the generation parameters a request sent. A field is set only
// when the request carried it, so the JSON form lists only those sent.
type Params struct {
	Temperature         *float64 `json:"temperature,omitempty"`
	TopP                *float64 `json:"top_p,omitempty"`
	MaxTokens           *int64   `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64   `json:"max_completion_tokens,omitempty"`
	MaxOutputTokens     *int64   `json:"max_output_tokens,omitempty"`
	N                   *int64   `json:"n,omitempty"`
	Seed                *int64   `json:"seed,omitempty"`
	Stop                []string `json:"stop,omitempty"`
	PresencePenalty     *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64 `json:"frequency_penalty,omitempty"`
	ResponseFormat      string   `json:"response_format,omitempty"` // the format's type
	Tools               *int64   `json:"tools,omitempty"`           // how many tools were offered
	ToolChoice          string   `json:"tool_choice,omitempty"`     // "auto", "none", "required" or a function name
	ParallelToolCalls   *bool    `json:"parallel_tool_calls,omitempty"`
	ReasoningEffort     string   `json:"reasoning_effort,omitempty"`
	Logprobs            *bool    `json:"logprobs,omitempty"`
	TopLogprobs         *int64   `json:"top_logprobs,omitempty"`
	User                string   `json:"user,omitempty"`
	Dimensions          *int64   `json:"dimensions,omitempty"`
	EncodingFormat      string   `json:"encoding_format,omitempty"`
	ServiceTier         string   `json:"service_tier,omitempty"`
	// IncludeUsage is stream_options.include_usage as the client sent it
	// (not as llmscope's usage injection set it).
	IncludeUsage *bool `json:"include_usage,omitempty"`
}
