package llmscope

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// callDetail is the stored form of a call's rarer facts: one JSON object
// in a store's detail column, the same in every store.
type callDetail struct {
	ResponseID        string `json:"response_id,omitempty"`
	ResponseCreated   int64  `json:"response_created,omitempty"`
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	Chunks            int64  `json:"chunks,omitempty"`
	ErrorCode         string `json:"error_code,omitempty"`
	ErrorMessage      string `json:"error_message,omitempty"`
	Tools             string `json:"tools,omitempty"`
	ToolCalls         string `json:"tool_calls,omitempty"`
	Attempts          int    `json:"attempts,omitempty"`
	ServiceTier       string `json:"service_tier,omitempty"`
	Deployment        string `json:"deployment,omitempty"`
	CacheCreation     int64  `json:"cache_creation_input_tokens,omitempty"`
	Tries             []Try  `json:"tries,omitempty"`
}

// DetailJSON returns the JSON object a store keeps in its detail column for
// c: its response id, creation time and system fingerprint, a stream's
// chunk count, the upstream's error code and message, the captured tools
// and tool calls, its attempts, service tier, Azure deployment and cache
// write tokens. ok is false when c has none of them (the column is
// then NULL).
func (c *Call) DetailJSON() (s string, ok bool, err error) {
	d := callDetail{c.ResponseID, c.ResponseCreated, c.SystemFingerprint, c.Chunks, c.ErrorCode, c.ErrorMessage, c.Tools, c.ToolCalls,
		c.Attempts, c.ServiceTier, c.Deployment, c.Usage.CacheCreationInputTokens, c.Tries}
	if reflect.ValueOf(d).IsZero() {
		return "", false, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", false, fmt.Errorf("encode detail: %w", err)
	}
	return string(b), true, nil
}

// SetDetailJSON fills c's detail fields from s, a value DetailJSON returned.
func (c *Call) SetDetailJSON(s string) error {
	var d callDetail
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return fmt.Errorf("call %q: decode detail: %w", c.ID, err)
	}
	c.ResponseID, c.ResponseCreated, c.SystemFingerprint, c.Chunks = d.ResponseID, d.ResponseCreated, d.SystemFingerprint, d.Chunks
	c.ErrorCode, c.ErrorMessage, c.Tools, c.ToolCalls = d.ErrorCode, d.ErrorMessage, d.Tools, d.ToolCalls
	c.Attempts, c.ServiceTier, c.Deployment, c.Usage.CacheCreationInputTokens = d.Attempts, d.ServiceTier, d.Deployment, d.CacheCreation
	c.Tries = d.Tries
	return nil
}
