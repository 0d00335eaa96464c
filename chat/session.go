// Package chat is llmscope's interactive chat: a conversation with a model
// that shows, after every reply, what it cost in tokens, time and money.
package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmscope"
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
	client  openai.Client
	history []openai.ChatCompletionMessageParamUnion
	resetAt int // Turns before this index are no longer in the conversation
	Turns   []Turn
}

// New returns a Session.
func New(cfg Config) *Session {
	opts := []option.RequestOption{option.WithBaseURL(strings.TrimRight(cfg.BaseURL, "/") + "/"), option.WithAPIKey(cfg.APIKey), option.WithMaxRetries(0)}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	opts = append(opts, option.WithHeader("X-Llmscope-Run", cfg.Run), option.WithHeader("X-Llmscope-Session", cfg.SessionID))
	return &Session{cfg: cfg, client: openai.NewClient(opts...)}
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
	msgs := []openai.ChatCompletionMessageParamUnion{}
	if st.System != "" {
		msgs = append(msgs, openai.SystemMessage(st.System))
	}
	msgs = append(msgs, s.history...)
	msgs = append(msgs, openai.UserMessage(prompt))
	p := openai.ChatCompletionNewParams{Model: st.Model, Messages: msgs}
	if st.Temperature != nil {
		p.Temperature = openai.Float(*st.Temperature)
	}
	if st.TopP != nil {
		p.TopP = openai.Float(*st.TopP)
	}
	if st.MaxTokens != nil {
		p.MaxTokens = openai.Int(*st.MaxTokens)
	}
	var raw *http.Response
	stream := s.client.Chat.Completions.NewStreaming(ctx, p,
		option.WithResponseInto(&raw),
		option.WithHeader("X-Llmscope-Tags", "param.system_prompt_hash="+SystemHash(st.System)))
	var reply strings.Builder
	for stream.Next() {
		if ch := stream.Current().Choices; len(ch) > 0 && ch[0].Delta.Content != "" {
			reply.WriteString(ch[0].Delta.Content)
			_, _ = io.WriteString(out, ch[0].Delta.Content)
		}
	}
	err := stream.Err()
	_ = stream.Close()
	t := Turn{Prompt: prompt, Reply: reply.String()}
	switch {
	case err != nil && ctx.Err() != nil:
		t.Error = "cancelled"
	case err != nil:
		t.Error = describe(err)
	}
	if raw != nil && s.cfg.Lookup != nil {
		if id := raw.Header.Get("X-Llmscope-Call-Id"); id != "" {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			t.Call, _ = s.cfg.Lookup(lctx, id)
			cancel()
		}
	}
	if t.Error == "" || t.Reply != "" {
		s.history = append(s.history, openai.UserMessage(prompt), openai.AssistantMessage(t.Reply))
	}
	s.Turns = append(s.Turns, t)
	return t
}

// describe says plainly what went wrong, with the retry-after of a rate limit.
func describe(err error) string {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		msg := fmt.Sprintf("upstream said %d: %s", apiErr.StatusCode, apiErr.Message)
		if apiErr.StatusCode == http.StatusTooManyRequests && apiErr.Response != nil {
			if ra := apiErr.Response.Header.Get("Retry-After"); ra != "" {
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
