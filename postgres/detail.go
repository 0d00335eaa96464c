package postgres

import (
	"encoding/json"
	"fmt"

	"llmscope"
)

// detail is the JSON of the calls table's detail column: the same object
// the SQLite store keeps.
type detail struct {
	ResponseID        string `json:"response_id,omitempty"`
	ResponseCreated   int64  `json:"response_created,omitempty"`
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	Chunks            int64  `json:"chunks,omitempty"`
	ErrorCode         string `json:"error_code,omitempty"`
	ErrorMessage      string `json:"error_message,omitempty"`
	Tools             string `json:"tools,omitempty"`
	ToolCalls         string `json:"tool_calls,omitempty"`
}

// detailArg returns the detail column's value for c: nil (NULL) when c has
// none of its facts.
func detailArg(c *llmscope.Call) (*string, error) {
	d := detail{c.ResponseID, c.ResponseCreated, c.SystemFingerprint, c.Chunks, c.ErrorCode, c.ErrorMessage, c.Tools, c.ToolCalls}
	if d == (detail{}) {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode detail: %w", err)
	}
	s := string(b)
	return &s, nil
}

// setDetail fills c's detail fields from the column's value (nil: NULL).
func setDetail(c *llmscope.Call, v *string) error {
	if v == nil {
		return nil
	}
	var d detail
	if err := json.Unmarshal([]byte(*v), &d); err != nil {
		return fmt.Errorf("call %q: decode detail: %w", c.ID, err)
	}
	c.ResponseID, c.ResponseCreated, c.SystemFingerprint, c.Chunks = d.ResponseID, d.ResponseCreated, d.SystemFingerprint, d.Chunks
	c.ErrorCode, c.ErrorMessage, c.Tools, c.ToolCalls = d.ErrorCode, d.ErrorMessage, d.Tools, d.ToolCalls
	return nil
}
