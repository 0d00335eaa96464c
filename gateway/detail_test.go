package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

// weatherTool is a function tool the simulator answers with a tool call.
func weatherTool() openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: openai.String("The weather in a city."),
		Parameters: openai.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}},
			"required":   []string{"city"},
		},
	})
}

// TestToolCallsRecorded: with capture on, a call records the tools it
// offered and the tool calls it got, the same streamed or not, along with
// the answer's id, creation time and, for a stream, its chunk count.
func TestToolCallsRecorded(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.Capture = true })
	p := chatParams()
	p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool()}
	cl := client(e.gw.URL)

	resp, err := cl.Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	whole := e.sink.one(t)
	if len(resp.Choices) != 1 || len(resp.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("answer %+v: want one tool call", resp.Choices)
	}
	var offered []map[string]any
	if err := json.Unmarshal([]byte(whole.Tools), &offered); err != nil || len(offered) != 1 ||
		offered[0]["function"].(map[string]any)["name"] != "get_weather" {
		t.Errorf("recorded tools %q (%v)", whole.Tools, err)
	}
	var calls []openai.ChatCompletionMessageToolCallUnion
	if err := json.Unmarshal([]byte(whole.ToolCalls), &calls); err != nil || len(calls) != 1 ||
		calls[0].Function.Name != "get_weather" || calls[0].ID != resp.Choices[0].Message.ToolCalls[0].ID ||
		calls[0].Function.Arguments != resp.Choices[0].Message.ToolCalls[0].Function.Arguments {
		t.Errorf("recorded tool calls %q (%v), answer had %+v", whole.ToolCalls, err, resp.Choices[0].Message.ToolCalls)
	}
	if whole.ResponseID != resp.ID || whole.ResponseCreated != resp.Created || whole.FinishReason != "tool_calls" ||
		whole.SystemFingerprint != resp.SystemFingerprint || whole.Chunks != 0 {
		t.Errorf("id %q created %d fingerprint %q finish %q chunks %d; answer %q %d %q",
			whole.ResponseID, whole.ResponseCreated, whole.SystemFingerprint, whole.FinishReason, whole.Chunks,
			resp.ID, resp.Created, resp.SystemFingerprint)
	}

	stream := cl.Chat.Completions.NewStreaming(context.Background(), p)
	var acc openai.ChatCompletionAccumulator
	n := int64(0)
	for stream.Next() {
		acc.AddChunk(stream.Current())
		n++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	streamed := e.sink.one(t)
	if streamed.ToolCalls != whole.ToolCalls {
		t.Errorf("streamed tool calls %q, want the non-streamed %q", streamed.ToolCalls, whole.ToolCalls)
	}
	if streamed.ResponseID != acc.ID || streamed.Chunks < n || streamed.Chunks > n+1 {
		// The client sees every chunk but the usage chunk llmscope added.
		t.Errorf("streamed id %q chunks %d; client saw id %q and %d chunks", streamed.ResponseID, streamed.Chunks, acc.ID, n)
	}
}

// TestUpstreamErrorRecorded: the upstream's error code and message are
// recorded with the call, and a secret in the message is redacted.
func TestUpstreamErrorRecorded(t *testing.T) {
	redactor, err := llmscope.NewRedactor(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) { c.Redactor = redactor })
	_, err = client(e.gw.URL, option.WithHeader(sim.FaultHeader, "status=429")).Chat.Completions.New(context.Background(), chatParams())
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Fatalf("client error %v, want 429", err)
	}
	c := e.sink.one(t)
	if c.ErrorMessage == "" || !strings.Contains(apiErr.Message, c.ErrorMessage[:min(20, len(c.ErrorMessage))]) || c.ErrorCode == "" {
		t.Errorf("recorded error code %q message %q; the client got %q", c.ErrorCode, c.ErrorMessage, apiErr.Message)
	}
}
