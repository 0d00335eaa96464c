// Package chat is llmscope's interactive chat: a conversation with a model
// that shows, after every reply, what it cost in tokens, time and money.
package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"llmscope"
	oai "llmscope/openai"
)

// Settings are the generation parameters of a session; nil means "not sent".
type Settings struct {
	Model       string
	Temperature *float64
	TopP        *float64
	MaxTokens   *int64
	System      string
}

// CallLookup returns the recorded call with the given id, waiting briefly
// for it to be recorded.
type CallLookup func(ctx context.Context, id string) (*llmscope.Call, error)

// Config configures a Session.
type Config struct {
	BaseURL    string // OpenAI-style base URL with its /v1
	APIKey     string
	HTTPClient *http.Client
	Settings   Settings
	Run        string // the session's run name
	SessionID  string
	Lookup     CallLookup
}

// Turn is one exchange and what it cost, as recorded.
type Turn struct {
	Prompt string         `json:"prompt"`
	Reply  string         `json:"reply"`
	Call   *llmscope.Call `json:"call,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// Session holds a conversation.
type Session struct {
	cfg     Config
	client  *oai.Client
	history []oai.ChatMessage
	resetAt int // Turns before this index are no longer in the conversation
	Turns   []Turn
}

// New returns a Session.
func New(cfg Config) *Session {
	c := oai.NewClient(cfg.BaseURL, cfg.APIKey, cfg.HTTPClient)
	c.Header.Set("X-Llmscope-Run", cfg.Run)
	c.Header.Set("X-Llmscope-Session", cfg.SessionID)
	return &Session{cfg: cfg, client: c}
}

// Settings returns the current settings.
func (s *Session) Settings() *Settings { return &s.cfg.Settings }

// SystemHash is a short hash of the system prompt, logged as an MLflow param.
func SystemHash(system string) string {
	sum := sha256.Sum256([]byte(system))
	return hex.EncodeToString(sum[:])[:12]
}

// Send sends prompt with the conversation so far, writes the reply to out as
// it streams, and returns the turn. Cancelling ctx stops the reply; the
// conversation keeps what arrived.
func (s *Session) Send(ctx context.Context, prompt string, out io.Writer) Turn {
	st := s.cfg.Settings
	msgs := []oai.ChatMessage{}
	if st.System != "" {
		msgs = append(msgs, oai.ChatMessage{Role: "system", Content: st.System})
	}
	msgs = append(msgs, s.history...)
	msgs = append(msgs, oai.ChatMessage{Role: "user", Content: prompt})
	body, err := json.Marshal(oai.ChatRequest{Model: st.Model, Messages: msgs,
		Temperature: st.Temperature, TopP: st.TopP, MaxTokens: st.MaxTokens, Stream: true})
	var res *oai.ChatResult
	if err == nil {
		res, err = s.client.Chat(ctx, body, true,
			http.Header{"X-Llmscope-Tags": {"param.system_prompt_hash=" + SystemHash(st.System)}},
			func(text string) { _, _ = io.WriteString(out, text) })
	}
	var reply string
	if res != nil {
		reply = res.Text
	}
	t := Turn{Prompt: prompt, Reply: reply}
	switch {
	case err != nil && ctx.Err() != nil:
		t.Error = "cancelled"
	case err != nil:
		t.Error = describe(err)
	}
	if res != nil && s.cfg.Lookup != nil {
		if id := res.Header.Get("X-Llmscope-Call-Id"); id != "" {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.Call, _ = s.cfg.Lookup(lctx, id)
			cancel()
		}
	}
	if t.Error == "" || t.Reply != "" {
		s.history = append(s.history, oai.ChatMessage{Role: "user", Content: prompt}, oai.ChatMessage{Role: "assistant", Content: t.Reply})
	}
	s.Turns = append(s.Turns, t)
	return t
}

// describe says plainly what went wrong, with the retry-after of a rate limit.
func describe(err error) string {
	var apiErr *oai.APIError
	if errors.As(err, &apiErr) {
		msg := fmt.Sprintf("upstream said %d: %s", apiErr.StatusCode, apiErr.Message)
		if apiErr.StatusCode == http.StatusTooManyRequests && apiErr.Header != nil {
			if ra := apiErr.Header.Get("Retry-After"); ra != "" {
				msg += " (retry after " + ra + "s)"
			}
		}
		return msg
	}
	return "request failed: " + err.Error()
}

// Reset forgets the conversation (settings and the stats of past turns stay).
func (s *Session) Reset() { s.history, s.resetAt = nil, len(s.Turns) }

// History returns the conversation the model sees, as (role, text) pairs:
// the turns since the last Reset that produced a reply.
func (s *Session) History() [][2]string {
	var out [][2]string
	for _, t := range s.Turns[s.resetAt:] {
		if t.Error == "" || t.Reply != "" {
			out = append(out, [2]string{"user", t.Prompt}, [2]string{"assistant", t.Reply})
		}
	}
	return out
}
