// Package sim is a simulated upstream for demos, tests and benchmarks: it
// speaks OpenAI's API, Azure OpenAI's deployment paths, Anthropic's
// Messages API and Google's Gemini API. Answers, ids, timestamps and
// embeddings are pure functions of (Config.Seed, model, prompt, tools,
// formats), token usage is counted with llmscope/tokenizer so it is
// self-consistent, streams follow each provider's SSE format byte for byte
// in shape, and faults are injected per request with the X-Sim-Fault
// header, answered in each provider's error shape. Chat and Responses requests with function tools are
// answered with one tool call whose arguments satisfy the tool's parameters
// schema; JSON response formats get JSON content that satisfies the schema.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fingerprint is the system_fingerprint of every chat and completion object.
const Fingerprint = "llmscope-sim"

// Config configures a Server. The zero value answers instantly and never
// fails on its own. A non-streamed answer takes as long as its stream would
// (TTFT plus the pieces' pacing); embeddings take TTFT.
type Config struct {
	Seed            int64         // changes every answer, id and embedding
	TTFT            time.Duration // delay before the first content piece
	TokensPerSecond float64       // pace of streamed pieces (≈ words); 0 = no delay
	Jitter          time.Duration // uniform ±Jitter added to each non-zero delay
	ErrorRate       float64       // fraction of requests answered with ErrorStatus
	ErrorStatus     int           // status of ErrorRate failures; default 500
	Logger          *slog.Logger  // debug logs of faults and broken streams; default: discard
	// Profile, when set, gives each model its own speed drawn per request
	// and fails a fraction of requests with 429 or 5xx (see Realistic);
	// non-zero TTFT and TokensPerSecond then replace every model's medians
	// and Jitter is unused. Nil (the default): TTFT and TokensPerSecond for
	// every model, no failures of its own.
	Profile *Profile
}

// Server is the simulated upstream. It is an http.Handler serving
// POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses
// and GET /v1/models (OpenAI); POST /v1/messages and
// /v1/messages/count_tokens (Anthropic); POST
// /v1beta/models/{model}:generateContent, :streamGenerateContent and
// :countTokens (Gemini); POST /openai/deployments/{deployment}/chat/completions,
// /completions and /embeddings (Azure OpenAI). It is safe for concurrent use.
type Server struct {
	cfg             Config
	log             *slog.Logger
	perPiece        time.Duration
	cache           *lru          // hashes of long prompts seen, for cached_tokens
	counts          *lru          // prompt token counts by request hash
	requests        atomic.Uint64 // drives the ErrorRate draws
	profileRequests atomic.Uint64 // drives the Profile's failure draws
	models          []byte        // pre-built GET /v1/models body
	bufs            sync.Pool     // *[]byte response buffers
}

var _ http.Handler = (*Server)(nil)

// New returns a Server for cfg. It pre-builds the token tables of the
// o200k_base and cl100k_base encodings, so the first request is not slow.
func New(cfg Config) *Server {
	if cfg.ErrorStatus == 0 {
		cfg.ErrorStatus = http.StatusInternalServerError
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = -cfg.Jitter
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		cache:  newLRU(promptCacheSize),
		counts: newLRU(countCacheSize),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.TokensPerSecond > 0 {
		s.perPiece = time.Duration(float64(time.Second) / cfg.TokensPerSecond)
	}
	s.models = buildModels()
	tokenTable("gpt-4o")
	tokenTable("gpt-3.5-turbo")
	return s
}

type route struct {
	method string
	handle func(*Server, *exchange)
	api    api                  // the error shape of the route's answers
	pre    func(*exchange) bool // header checks before faults (nil: none); false when it answered
}

var routes = map[string]route{
	"/v1/chat/completions": {http.MethodPost, (*Server).chat, apiOpenAI, nil},
	"/v1/completions":      {http.MethodPost, (*Server).completions, apiOpenAI, nil},
	"/v1/embeddings":       {http.MethodPost, (*Server).embeddings, apiOpenAI, nil},
	"/v1/responses":        {http.MethodPost, (*Server).responses, apiOpenAI, nil},
	"/v1/models":           {http.MethodGet, (*Server).listModels, apiOpenAI, nil},

	"/v1/messages":              {http.MethodPost, (*Server).messages, apiAnthropic, requireAnthropicVersion},
	"/v1/messages/count_tokens": {http.MethodPost, (*Server).countMessageTokens, apiAnthropic, requireAnthropicVersion},
}

// prefixRoute finds the routes whose paths carry a name: Gemini's
// /v1beta/models/{model}:{method} (also under /v1alpha and /v1) and Azure's
// /openai/deployments/{deployment}/{operation}. It sets x.model; ok is
// false for an unknown path (rt.api still says whose 404 to answer).
func prefixRoute(x *exchange) (rt route, ok bool) {
	p := x.r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1beta/"), strings.HasPrefix(p, "/v1alpha/"):
		return geminiRoute(x, p)
	case strings.HasPrefix(p, "/v1/models/") && strings.Contains(p, ":"):
		return geminiRoute(x, p) // Gemini's stable version: POST /v1/models/{model}:{method}
	case strings.HasPrefix(p, "/openai/"):
		return azureRoute(x, p)
	}
	return route{}, false
}

// ServeHTTP routes one request. Order of checks: path (404), method (405),
// the API's required headers or query (400: anthropic-version, Azure's
// api-version), X-Sim-Fault syntax (400), delay, injected status,
// ErrorRate, the Profile's failures (POST only), then the endpoint's own
// validation (400) and answer. Errors take the shape of the API the path
// belongs to (OpenAI, Anthropic or Gemini; Azure answers like OpenAI).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{s: s, w: w, r: r, ctx: r.Context(), fault: noFault}
	rt, ok := routes[r.URL.Path]
	if !ok {
		rt, ok = prefixRoute(x)
	}
	x.api = rt.api
	if !ok {
		x.error(http.StatusNotFound, "unknown url "+r.Method+" "+r.URL.Path, "")
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		x.errorCode(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed for "+r.URL.Path+"; use "+rt.method,
			"invalid_request_error", "method_not_allowed", "")
		return
	}
	if rt.pre != nil && !rt.pre(x) {
		return
	}
	f, err := parseFault(r.Header.Values(FaultHeader)...)
	if err != nil {
		x.errorCode(http.StatusBadRequest, err.Error(), "invalid_request_error", "invalid_fault", "")
		return
	}
	x.fault = f
	if f.delay > 0 && sleep(x.ctx, f.delay) != nil {
		return
	}
	if f.status != 0 {
		s.log.Debug("sim: injected status", "path", r.URL.Path, "status", f.status)
		x.error(f.status, "simulated error: status "+strconv.Itoa(f.status)+" injected by "+FaultHeader, "")
		return
	}
	if s.injectError() {
		s.log.Debug("sim: error rate failure", "path", r.URL.Path, "status", s.cfg.ErrorStatus)
		x.error(s.cfg.ErrorStatus, "simulated error: status "+strconv.Itoa(s.cfg.ErrorStatus)+" drawn by the error rate", "")
		return
	}
	if rt.method == http.MethodPost && s.profileFault(x) {
		return
	}
	rt.handle(s, x)
}

// injectError draws whether this request fails under Config.ErrorRate. The
// n-th request of a server gets the same draw for the same Seed.
func (s *Server) injectError() bool {
	if s.cfg.ErrorRate <= 0 {
		return false
	}
	n := s.requests.Add(1)
	r := rng{s: uint64(s.cfg.Seed) ^ mix(n)}
	return r.float() < s.cfg.ErrorRate
}

// exchange is one request in flight.
type exchange struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	fault fault
	api   api    // whose error shape errorCode writes
	model string // the model or deployment named by the path (Gemini, Azure)
}

// maxBody bounds request bodies.
const maxBody = 32 << 20

// decode reads the JSON body into v; on failure it answers 400 and returns
// false: invalid_type naming the parameter when a field has the wrong JSON
// type, else a parse error.
func (x *exchange) decode(v any) bool {
	body, ok := x.body()
	return ok && x.unmarshal(body, v)
}

// body reads the request body, at most maxBody bytes; on failure it
// answers 413 or 400 and returns false.
func (x *exchange) body() ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			x.error(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", maxBody), "")
			return nil, false
		}
		x.error(http.StatusBadRequest, "could not read the request body: "+err.Error(), "")
		return nil, false
	}
	return body, true
}

// unmarshal decodes the JSON body into v as decode does.
func (x *exchange) unmarshal(body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		if bad, ok := typeError(err); ok {
			x.reject(bad)
			return false
		}
		x.error(http.StatusBadRequest, "could not parse the JSON body of your request: "+err.Error(), "")
		return false
	}
	return true
}

// requireModel answers 400 and returns false when model is empty.
func (x *exchange) requireModel(model string) bool {
	if model == "" {
		x.error(http.StatusBadRequest, "you must provide a model parameter", "")
		return false
	}
	return true
}

// limit picks the first non-nil token limit; it answers 400 and returns false
// for a limit below 1. The result is 0 when no limit was sent.
func (x *exchange) limit(vals []*int, names ...string) (int, bool) {
	for i, v := range vals {
		if v == nil {
			continue
		}
		if *v < 1 {
			x.reject(outOfRange(names[i], "integer below minimum value", ">=", "1", strconv.Itoa(*v), "integer_below_min_value"))
			return 0, false
		}
		return *v, true
	}
	return 0, true
}

// error answers status with an OpenAI error body whose type and code follow
// from the status.
func (x *exchange) error(status int, msg, param string) {
	typ, code := errorKind(status)
	x.errorCode(status, msg, typ, code, param)
}

// errorCode answers status with
// {"error":{"message","type","param","code"}}; empty param and code are null.
// A 429 carries Retry-After: 1. On Anthropic and Gemini routes it writes
// their error shapes instead, typed by status (typ, code and param unused).
func (x *exchange) errorCode(status int, msg, typ, code, param string) {
	switch x.api {
	case apiAnthropic:
		x.anthropicError(status, msg)
		return
	case apiGemini:
		x.geminiError(status, msg)
		return
	}
	b := x.s.getBuf()
	defer x.s.putBuf(b)
	*b = append(*b, `{"error":{"message":`...)
	*b = appendString(*b, msg)
	*b = append(*b, `,"type":`...)
	*b = appendString(*b, typ)
	*b = append(*b, `,"param":`...)
	*b = appendOptString(*b, param)
	*b = append(*b, `,"code":`...)
	*b = appendOptString(*b, code)
	*b = append(*b, "}}\n"...)
	if status == http.StatusTooManyRequests {
		x.w.Header().Set("Retry-After", "1")
	}
	x.writeJSON(status, *b)
}

func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// writeJSON answers a non-streamed body, or drops the connection instead when
// the request carries reset_after.
func (x *exchange) writeJSON(status int, body []byte) {
	if x.fault.resetAfter >= 0 {
		if err := resetConn(x.w); err != nil && !errors.Is(err, errReset) {
			x.s.log.Debug("sim: reset", "err", err)
		}
		return
	}
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(status)
	if _, err := x.w.Write(body); err != nil {
		x.s.log.Debug("sim: write response", "path", x.r.URL.Path, "err", err)
	}
}

// setRequestID sets the deterministic X-Request-Id of a successful answer.
func (x *exchange) setRequestID(id string) { x.w.Header().Set("X-Request-Id", id) }

// sleep waits d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sim: wait: %w", ctx.Err())
	}
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (s *Server) putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		s.bufs.Put(b)
	}
}

// models is the fixed list GET /v1/models returns.
var models = []string{
	"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "gpt-5-mini",
	"o3-mini", "o4-mini", "gpt-3.5-turbo", "text-embedding-3-small", "text-embedding-3-large",
}

func buildModels() []byte {
	b := []byte(`{"object":"list","data":[`)
	for i, m := range models {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, m)
		b = append(b, `,"object":"model","created":`...)
		b = appendInt(b, epoch)
		b = append(b, `,"owned_by":"llmscope-sim"}`...)
	}
	return append(b, "]}\n"...)
}

func (s *Server) listModels(x *exchange) {
	x.writeJSON(http.StatusOK, s.models)
}
