package openai

import (
	"context"
	"strings"
	"testing"
	"time"

	"llmscope"
)

// TestFinishRedactsBeforeSink: the sink sees a call's captured text and
// error message redacted, on the caller's goroutine and after an estimate
// off it alike; without a Redactor nothing changes.
func TestFinishRedactsBeforeSink(t *testing.T) {
	const (
		email = "jane.doe@example.com"
		key   = "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789"
	)
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"I am ` + email + `"}]}`)
	redactor, err := llmscope.NewRedactor(true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		redactor *llmscope.Redactor
		status   int
	}{
		{"error", redactor, 401},
		{"estimated", redactor, 200}, // usage estimated off the caller's goroutine
		{"no redactor", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan llmscope.Call, 1)
			f := &Finisher{
				Sink:       llmscope.SinkFunc(func(c *llmscope.Call) { got <- *c }),
				Capture:    true,
				CaptureMax: 1 << 20,
				Redactor:   tc.redactor,
			}
			c := &llmscope.Call{
				ID: "c1", Operation: llmscope.OpChat, RequestModel: "gpt-4o-mini", Status: tc.status,
				Input: string(body),
				Tools: `[{"type":"function","function":{"name":"f","description":"key ` + key + `"}}]`,
			}
			res := &Response{ErrorType: "invalid_request_error", ErrorCode: "invalid_api_key",
				ErrorMessage: "Incorrect API key provided: " + key + ". You can find your API key at https://platform.openai.com/account/api-keys."}
			res.SetTextLimit(f.TextLimit())
			res.addText("Noted, " + email + ".")
			f.Finish(c, ParseRequest(body), body, res)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := f.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			rec := <-got
			text := rec.Input + rec.Output + rec.Tools + rec.ErrorMessage
			if tc.redactor == nil {
				if !strings.Contains(text, email) || !strings.Contains(text, key) {
					t.Errorf("changed without a redactor: %q", text)
				}
				return
			}
			if strings.Contains(text, email) || strings.Contains(text, key) {
				t.Errorf("a secret reached the sink: %q", text)
			}
			if !strings.Contains(rec.Input, llmscope.RedactedEmail) || !strings.Contains(rec.Output, llmscope.RedactedEmail) ||
				!strings.Contains(rec.Tools, llmscope.RedactedAPIKey) || !strings.HasPrefix(rec.ErrorMessage, "Incorrect API key provided: "+llmscope.RedactedAPIKey+". ") {
				t.Errorf("not redacted as expected: input %q, output %q, tools %q, error %q", rec.Input, rec.Output, rec.Tools, rec.ErrorMessage)
			}
			if tc.status == 200 && rec.Usage.Source != llmscope.UsageEstimated {
				t.Errorf("usage source %q, want estimated", rec.Usage.Source)
			}
		})
	}
}
