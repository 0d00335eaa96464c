package llmscope

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Call is the record of one API call seen by the gateway or the SDK. Its JSON
// form is part of llmscope's public contract.
type Call struct {
	ID            string    `json:"id"`
	TraceID       string    `json:"trace_id"` // 32 lowercase hex digits, derived from ID
	Start         time.Time `json:"start"`
	DurationMS    float64   `json:"duration_ms"`
	TTFTMS        float64   `json:"ttft_ms"` // 0 when not streamed or no chunk arrived; null in JSON then (see MarshalJSON)
	Operation     string    `json:"operation"`
	Provider      string    `json:"provider"`
	Endpoint      string    `json:"endpoint"`
	RequestModel  string    `json:"request_model"`
	ResponseModel string    `json:"response_model"`
	Stream        bool      `json:"stream"`
	Status        int       `json:"status"`
	ErrorType     string    `json:"error_type"`
	FinishReason  string    `json:"finish_reason"`
	Params        Params    `json:"params"`
	Usage         Usage     `json:"usage"`
	Cost          *Cost     `json:"cost"` // nil when the price is unknown
	Experiment    string    `json:"experiment"`
	Run           string    `json:"run"`
	User          string    `json:"user"`
	Session       string    `json:"session"`
	// Key and Team are the name and team of the client key that
	// authenticated the call ("" without one); its user is User.
	Key        string            `json:"key,omitempty"`
	Team       string            `json:"team,omitempty"`
	Tags       map[string]string `json:"tags"`
	OverheadMS float64           `json:"overhead_ms"`

	// The upstream's own marks on its answer, when it sent them: the
	// response id ("chatcmpl-…", "resp_…"), its creation time (unix
	// seconds) and the system fingerprint.
	ResponseID        string `json:"response_id,omitempty"`
	ResponseCreated   int64  `json:"response_created,omitempty"`
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	// Chunks counts the events of a streamed answer (0 when not streamed).
	Chunks int64 `json:"chunks,omitempty"`
	// Upstream names the deployment that answered when routes are
	// configured (serve's routes: section), "" with one upstream; Attempts
	// counts the upstream requests made for the call (retries and
	// fallbacks included; 0 or 1 when tried once).
	Upstream string `json:"upstream,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	// Tries lists the upstream attempts of a routed call in order, the
	// last one answering; nil when the call was not routed.
	Tries []Try `json:"tries,omitempty"`
	// ServiceTier is the tier the upstream says it served the call on
	// (OpenAI's service_tier: "default", "priority", "flex"; Anthropic's
	// usage.service_tier), "" when it said none.
	ServiceTier string `json:"service_tier,omitempty"`
	// Deployment is the Azure OpenAI deployment the request named in its
	// path (/openai/deployments/{name}/…), "" otherwise.
	Deployment string `json:"deployment,omitempty"`
	// ErrorCode and ErrorMessage are what the upstream's error body said
	// (its error.code, else error.type; its error.message, redacted and cut
	// to MaxErrorMessage bytes). Empty when it said nothing.
	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`

	// Input and Output hold the captured request messages/input and response
	// text; Tools the request's tools array and ToolCalls the answer's tool
	// calls, each as raw JSON. They are empty unless capture is switched on.
	Input     string `json:"input,omitempty"`
	Output    string `json:"output,omitempty"`
	Tools     string `json:"tools,omitempty"`
	ToolCalls string `json:"tool_calls,omitempty"`

	// Seq is the call's position in the store's commit order, set by
	// Store.After; 0 for a call not read that way. Exporters use it as their
	// cursor.
	Seq int64 `json:"-"`
}

// callFields is Call without its methods.
type callFields Call

// callJSON is Call's JSON form: ttft_ms is a pointer so it can be null.
type callJSON struct {
	*callFields
	TTFTMS *float64 `json:"ttft_ms"`
}

// MarshalJSON encodes c with "ttft_ms":null when the call did not stream or
// no chunk arrived (TTFTMS is 0): a time to first token exists only for a
// streamed answer that began. DESIGN.md's example Call shows a number
// ("ttft_ms":143.2) because it is a streamed call ("stream":true); a call
// that did not stream has null there, never 0.
func (c Call) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.jsonForm())
}

// AppendJSON appends c's JSON form, as MarshalJSON gives it, to dst. It
// spares encoding/json's second pass over a Marshaler's output (it checks
// and compacts it, which costs as much as encoding, more with captured
// text), so writers of many calls (the JSONL export, API pages) use it.
func (c *Call) AppendJSON(dst []byte) ([]byte, error) {
	b, err := json.Marshal(c.jsonForm())
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// jsonForm returns c in the shape its JSON has.
func (c *Call) jsonForm() callJSON {
	out := callJSON{callFields: (*callFields)(c)}
	if c.Stream && c.TTFTMS != 0 {
		out.TTFTMS = &c.TTFTMS
	}
	return out
}

// UnmarshalJSON reads a Call; "ttft_ms":null (or absent) leaves TTFTMS 0.
func (c *Call) UnmarshalJSON(b []byte) error {
	in := callJSON{callFields: (*callFields)(c)}
	c.TTFTMS = 0
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in.TTFTMS != nil {
		c.TTFTMS = *in.TTFTMS
	}
	return nil
}

// TraceHex returns the 32 lowercase hex digits of the call's trace as
// exporters send it: TraceID (lowercased) when it is 32 hex digits other
// than all zeros, else TraceIDFor(ID).
func (c *Call) TraceHex() string {
	if len(c.TraceID) == 32 && strings.Trim(c.TraceID, "0") != "" {
		if _, err := hex.DecodeString(c.TraceID); err == nil {
			return strings.ToLower(c.TraceID)
		}
	}
	return TraceIDFor(c.ID)
}

// MaxErrorMessage bounds Call.ErrorMessage, in bytes.
const MaxErrorMessage = 1024

// Failed reports whether the call ended in an error of any kind.
func (c *Call) Failed() bool { return c.ErrorType != "" || c.Status >= 400 }

// Model returns the model the call is attributed to: the requested model, or
// the response model when the request named none.
func (c *Call) Model() string {
	if c.RequestModel != "" {
		return c.RequestModel
	}
	return c.ResponseModel
}

// Try is one upstream attempt of a routed call.
type Try struct {
	Upstream   string    `json:"upstream"` // the deployment tried
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"` // until its answer's headers, or its failure
	Status     int       `json:"status,omitempty"`
	// Outcome is what the attempt came to: "ok", "status" (an error
	// status), "timeout", "connection", "stream" (broke before the first
	// byte), "broken" (broke after it), "rejected", "canceled".
	Outcome string `json:"outcome"`
	Retried bool   `json:"retried,omitempty"` // another attempt followed
}

// Usage holds token counts. Reasoning tokens are part of OutputTokens and
// cached tokens are part of InputTokens; neither is ever added twice.
type Usage struct {
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	TotalTokens       int64 `json:"total_tokens"`
	CachedInputTokens int64 `json:"cached_input_tokens"`
	ReasoningTokens   int64 `json:"reasoning_tokens"`
	// CacheCreationInputTokens are input tokens written to the provider's
	// prompt cache (Anthropic's cache_creation_input_tokens), part of
	// InputTokens like CachedInputTokens (the cache reads).
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens,omitempty"`
	Source                   string `json:"source"` // UsageReported, UsageEstimated or UsageNone
}

// Cost is the price of one call in US dollars.
type Cost struct {
	InputUSD    float64 `json:"input_usd"`
	OutputUSD   float64 `json:"output_usd"`
	TotalUSD    float64 `json:"total_usd"`
	PriceSource string  `json:"price_source"`
}

// NewID returns a new call id: a UUIDv7 string, so ids sort by creation time.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16|uint64(binary.BigEndian.Uint16(b[6:8])))
	b[6] = 0x70 | b[6]&0x0f // version 7
	b[8] = 0x80 | b[8]&0x3f // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// TraceIDFor derives the 32-hex trace id of a call from its id, so that every
// export of the same call carries the same trace id.
func TraceIDFor(id string) string {
	out := make([]byte, 0, 33)
scan:
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c == '-':
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			out = append(out, c)
			if len(out) > 32 {
				break scan // too long for a UUID: hash instead
			}
		default:
			out = out[:0] // not a UUID: hash instead
			break scan
		}
	}
	if len(out) == 32 {
		return string(out)
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}
