package otlp

import (
	"encoding/json"

	"llmscope"
)

// Anthropic calls are shown in MLflow as mlflow.anthropic.autolog() shows
// them (mlflow.message.format "anthropic"): the inputs are the Messages
// request (system and messages as the API took them), the outputs the
// Message it returned, with content blocks.

// anthropicProvider is the gen_ai.provider.name of Anthropic's API.
const anthropicProvider = "anthropic"

// messageFormat is the mlflow.message.format of a chat call: how MLflow's
// UI reads its inputs and outputs as a conversation.
func messageFormat(c *llmscope.Call) string {
	if c.Provider == anthropicProvider {
		return "anthropic"
	}
	return "openai"
}

// anthropicInputs puts the captured input of an Anthropic call into in:
// messages, and system when the request had one (captured as
// {"system":…,"messages":…}).
func anthropicInputs(c *llmscope.Call, in map[string]any) {
	var obj struct {
		System   json.RawMessage `json:"system"`
		Messages json.RawMessage `json:"messages"`
	}
	if len(c.Input) > 0 && c.Input[0] == '{' && json.Unmarshal([]byte(c.Input), &obj) == nil && obj.Messages != nil {
		in["messages"] = obj.Messages
		if obj.System != nil {
			in["system"] = obj.System
		}
		return
	}
	in["messages"] = rawOrString(c.Input)
}

// anthropicOutputs fills out as an Anthropic Message: the text and tool
// use blocks (from the recorded tool calls), the stop reason and usage.
func anthropicOutputs(c *llmscope.Call, out map[string]any, text string, capture, hasUsage bool) {
	out["type"], out["role"] = "message", "assistant"
	content := []any{}
	if text != "" {
		content = append(content, map[string]any{"type": "text", "text": text})
	}
	if capture {
		var calls []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		}
		if json.Unmarshal([]byte(c.ToolCalls), &calls) == nil {
			for _, tc := range calls {
				block := map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Function.Name}
				if json.Valid([]byte(tc.Function.Arguments)) {
					block["input"] = json.RawMessage(tc.Function.Arguments)
				} else {
					block["input"] = map[string]any{}
				}
				content = append(content, block)
			}
		}
	}
	out["content"] = content
	if c.FinishReason != "" {
		out["stop_reason"] = c.FinishReason
	}
	if hasUsage {
		// Anthropic counts input without the cache's reads and writes.
		u := c.Usage
		out["usage"] = map[string]int64{
			"input_tokens":                max(u.InputTokens-u.CachedInputTokens-u.CacheCreationInputTokens, 0),
			"cache_read_input_tokens":     u.CachedInputTokens,
			"cache_creation_input_tokens": u.CacheCreationInputTokens,
			"output_tokens":               u.OutputTokens,
		}
	}
}
