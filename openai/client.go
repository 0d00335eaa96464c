package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"llmscope"
)

// Client is a minimal OpenAI-style Chat Completions client over net/http,
// for llmscope's own chat and sweeps. It never retries: callers decide.
type Client struct {
	BaseURL    string       // an OpenAI-style base URL with its /v1
	APIKey     string       // sent as Authorization: Bearer when not empty
	HTTPClient *http.Client // nil: http.DefaultClient
	Header     http.Header  // sent with every request
}

// NewClient returns a Client. Like OpenAI's SDKs it sends the
// OpenAI-Organization and OpenAI-Project headers named by OPENAI_ORG_ID and
// OPENAI_PROJECT_ID, and the "Name: value" lines of OPENAI_CUSTOM_HEADERS.
func NewClient(baseURL, apiKey string, hc *http.Client) *Client {
	h := http.Header{}
	if v, ok := os.LookupEnv("OPENAI_ORG_ID"); ok {
		h.Set("OpenAI-Organization", v)
	}
	if v, ok := os.LookupEnv("OPENAI_PROJECT_ID"); ok {
		h.Set("OpenAI-Project", v)
	}
	if v, ok := os.LookupEnv("OPENAI_CUSTOM_HEADERS"); ok {
		for _, line := range strings.Split(v, "\n") {
			if k, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) != "" {
				h.Add(strings.TrimSpace(k), strings.TrimSpace(val))
			}
		}
	}
	return &Client{BaseURL: baseURL, APIKey: apiKey, HTTPClient: hc, Header: h}
}

// ChatMessage is one message of a chat completion request.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a chat completion request; nil pointers are not sent.
type ChatRequest struct {
	Model       string        `json:"model"`
	Messages    []ChatMessage `json:"messages"`
	Temperature *float64      `json:"temperature,omitempty"`
	TopP        *float64      `json:"top_p,omitempty"`
	MaxTokens   *int64        `json:"max_tokens,omitempty"`
	Seed        *int64        `json:"seed,omitempty"`
	Stream      bool          `json:"stream,omitempty"`
}

// ChatResult is what came back: the text of the first choice, and what
// llmscope reads from any response (model, usage, finish reason).
type ChatResult struct {
	Text     string
	Header   http.Header // the response's headers (X-Llmscope-Call-Id …)
	Response Response
}

// APIError is an answer with a status of 400 or more; Message, Type and Code
// come from its OpenAI error body when it has one.
type APIError struct {
	StatusCode int
	Message    string
	Type       string
	Code       string
	Header     http.Header
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("upstream error: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
	}
	return fmt.Sprintf("upstream error: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// StreamError is an error event inside a stream that began with 200.
type StreamError struct{ Data string }

func (e *StreamError) Error() string { return "received error while streaming: " + e.Data }

// maxBody bounds a non-streamed answer or an error body.
const maxBody = 32 << 20

// Chat sends body, a JSON chat completion request, to BaseURL's
// /chat/completions with the extra headers, and reads the answer: a stream
// when stream is true (body must then ask for it), calling onText with each
// piece of the first choice's content as it arrives. The result's Header
// is set whenever an answer arrived, even with an error.
func (c *Client) Chat(ctx context.Context, body []byte, stream bool, extra http.Header, onText func(string)) (*ChatResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, vs := range extra {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := &ChatResult{Header: res.Header}
	if res.StatusCode >= 400 {
		b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
		if err != nil {
			return out, err
		}
		return out, apiError(res, b)
	}
	if stream {
		return out, readStream(res.Body, out, onText)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return out, err
	}
	if len(b) > maxBody {
		return out, errors.New("the answer is too large")
	}
	var v struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return out, fmt.Errorf("read the answer: %w", err)
	}
	out.Response.ReadBody(llmscope.OpChat, b)
	if len(v.Choices) == 0 {
		return out, errors.New("the answer has no choices")
	}
	out.Text = v.Choices[0].Message.Content
	if onText != nil && out.Text != "" {
		onText(out.Text)
	}
	return out, nil
}

// readStream reads a chat completion stream up to data: [DONE] or its end.
func readStream(body io.Reader, out *ChatResult, onText func(string)) error {
	events := NewEventReader(body)
	st := NewStream(llmscope.OpChat)
	defer func() { out.Response = st.Response }()
	var text strings.Builder
	defer func() { out.Text = text.String() }()
	for {
		_, data, err := events.Next()
		if len(bytes.TrimSpace(data)) > 0 {
			if st.Event(data) == ChunkDone {
				return nil
			}
			var v struct {
				Error   json.RawMessage `json:"error"`
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if jerr := json.Unmarshal(data, &v); jerr != nil {
				return fmt.Errorf("read a stream event: %w", jerr)
			}
			if len(v.Error) > 0 {
				return &StreamError{Data: errorText(v.Error)}
			}
			if len(v.Choices) > 0 && v.Choices[0].Delta.Content != "" {
				text.WriteString(v.Choices[0].Delta.Content)
				if onText != nil {
					onText(v.Choices[0].Delta.Content)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errorText is a JSON value as text: a string's contents, else its JSON.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// apiError reads the OpenAI error body b of res.
func apiError(res *http.Response, b []byte) *APIError {
	e := &APIError{StatusCode: res.StatusCode, Header: res.Header}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &v) != nil || len(v.Error) == 0 {
		return e
	}
	var body struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(v.Error, &body) != nil {
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			e.Message = s
		}
		return e
	}
	e.Message, e.Type = body.Message, body.Type
	if len(body.Code) > 0 && string(body.Code) != "null" {
		e.Code = errorText(body.Code)
	}
	return e
}
