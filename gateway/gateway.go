// Package gateway is llmscope's proxy: it forwards each request to the
// upstream of its provider API (OpenAI's /v1/* by default; Anthropic,
// Gemini and Azure OpenAI by path, see API), streams the answer back
// unchanged (apart from llmscope's own usage injection), and hands one
// llmscope.Call per request to a Sink.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"llmscope"
	"llmscope/openai"
	"llmscope/route"
)

// Config configures a Gateway. Upstream and Sink are required.
type Config struct {
	// Upstream is the API base URL, with its /v1: "/v1/X" goes to Upstream+"/X".
	// It answers every request no entry of Upstreams matches, in OpenAI's
	// wire format.
	Upstream string
	// Upstreams are the upstreams of other provider APIs: a request whose
	// path an entry's API matches (the first that does) goes to it.
	Upstreams []ProviderUpstream
	// Transport sends upstream requests; default: a tuned http.Transport.
	Transport http.RoundTripper
	// APIKey, when set, replaces the client's Authorization header on
	// requests to Upstream.
	APIKey string
	// PassAuthorization keeps a client's own credentials (its provider
	// key): APIKey is then sent only for requests a client key
	// authenticated (llmscope.ClientFrom), whose key was removed before the
	// gateway; never for a request that merely lacks an Authorization.
	PassAuthorization bool
	// Provider names Upstream in records ("openai" by default).
	Provider string
	// Experiment is the experiment of calls that do not name one.
	Experiment string
	// MaxBodyBytes bounds request bodies; larger ones get 413 (default 32 MiB).
	MaxBodyBytes int64
	// MaxBufferedBytes bounds the buffer capacity held by all request
	// bodies in flight together (default 256 MiB). Buffers grow as bytes
	// arrive, never from a declared length; a request whose body cannot be
	// held gets 503 (code "overloaded", Retry-After: 1).
	MaxBufferedBytes int64
	// BodyTimeout bounds the time a client takes to send its request body
	// (default 60s); a late body gets 408 (code "body_timeout"). It ends
	// once the body is read: answers may stream for longer.
	BodyTimeout time.Duration
	// Capture stores request input and response text with each call, each
	// cut to CaptureMaxBytes (default 64 KiB). Off, the store never sees them.
	Capture         bool
	CaptureMaxBytes int
	// Redactor rewrites secrets and personal data in captured text and
	// upstream error messages before any sink sees them (nil: none).
	Redactor *llmscope.Redactor
	// KeepRequestBodies holds every request body until its answer ends.
	// By default a body is released once sent when the upstream has been
	// reporting usage for that kind of call, so only a call whose answer
	// then ends without usage (a client that hangs up mid-stream) loses
	// its estimate: its usage is recorded as unknown.
	KeepRequestBodies bool
	// InjectUsage asks streaming chat and completion requests for usage and
	// hides the extra chunk from the client (default on; see DESIGN.md).
	DisableUsageInjection bool
	// UpstreamTimeout bounds the wait for the upstream's response headers
	// when Transport is nil (default 10 minutes; streams may then run longer).
	UpstreamTimeout time.Duration
	// Router, when set, sends a request whose model one of its routes
	// matches to that route's deployments, with retries, failover and
	// fallbacks (package route); other requests go to their API's upstream.
	Router *route.Router
	// Pricer prices each call; nil leaves cost null.
	Pricer llmscope.Pricer
	// OnCostUnknown is called with the model of each call Pricer could not price.
	OnCostUnknown func(model string)
	// Admit, when set, decides whether each request may go upstream
	// (budgets, rate limits; see Admitter); nil admits every request.
	Admit  Admitter
	Sink   llmscope.Sink
	Logger *slog.Logger
}

// ProviderUpstream is the upstream of one provider API besides the OpenAI
// one of Config.Upstream.
type ProviderUpstream struct {
	API API
	// URL is the API's base URL as its own SDKs take it (Anthropic's and
	// Gemini's without a version, Azure's resource endpoint).
	URL string
	// APIKey, when set, is put on requests in the API's way (API.SetKey),
	// under the same rule as Config.APIKey (Config.PassAuthorization).
	APIKey string
	// Provider names the upstream in records; default API.Provider().
	Provider string
}

// upstream is where the requests of one API go.
type upstream struct {
	api      API
	base     string // base URL without a trailing slash
	key      string
	provider string
	seen     usageSeen // per kind of call: whether this upstream reports usage
}

// Gateway is the proxy. It is an http.Handler for the /v1/ tree and the
// paths of Config.Upstreams' APIs.
type Gateway struct {
	cfg       Config
	def       upstream   // Config.Upstream, OpenAI's wire format
	others    []upstream // Config.Upstreams
	transport http.RoundTripper
	log       *slog.Logger
	inflight  sync.WaitGroup
	id        string // this gateway's mark in X-Llmscope-Via
	fin       *openai.Finisher
	budget    *budget      // bytes held by request bodies in flight
	probing   atomic.Int64 // bytes of bodies held while their kind's usage is unknown
	tickets   sync.Map     // *llmscope.Call → Ticket, until the call is recorded
}

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 32 << 20

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Sink == nil {
		return nil, errors.New("gateway: no sink")
	}
	if err := checkURL(cfg.Upstream); err != nil {
		return nil, err
	}
	if cfg.Provider == "" {
		cfg.Provider = "openai"
	}
	others := make([]upstream, 0, len(cfg.Upstreams))
	for _, pu := range cfg.Upstreams {
		if pu.API == nil {
			return nil, errors.New("gateway: an upstream without an API")
		}
		if err := checkURL(pu.URL); err != nil {
			return nil, err
		}
		if pu.Provider == "" {
			pu.Provider = pu.API.Provider()
		}
		others = append(others, upstream{api: pu.API, base: strings.TrimRight(pu.URL, "/"), key: pu.APIKey, provider: pu.Provider})
	}
	if cfg.Experiment == "" {
		cfg.Experiment = "llmscope"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.CaptureMaxBytes <= 0 {
		cfg.CaptureMaxBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 10 * time.Minute
	}
	g := &Gateway{cfg: cfg, transport: cfg.Transport, log: cfg.Logger, others: others,
		def: upstream{api: OpenAI(), base: strings.TrimRight(cfg.Upstream, "/"), key: cfg.APIKey, provider: cfg.Provider},
		id:  llmscope.NewID()[24:], fin: &openai.Finisher{
			Sink: cfg.Sink, Pricer: cfg.Pricer, OnCostUnknown: cfg.OnCostUnknown,
			Capture: cfg.Capture, CaptureMax: cfg.CaptureMaxBytes, Redactor: cfg.Redactor,
		}, budget: &budget{limit: cfg.MaxBufferedBytes}}
	if cfg.Admit != nil {
		g.fin.Sink = settleSink{next: cfg.Sink, tickets: &g.tickets}
	}
	if g.transport == nil {
		t := NewTransport()
		t.ResponseHeaderTimeout = cfg.UpstreamTimeout
		g.transport = t
	}
	return g, nil
}

// checkURL returns an error unless u is an absolute http(s) URL.
func checkURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("gateway: upstream %q is not an http(s) URL", u)
	}
	return nil
}

// upstreamFor returns the upstream of a request path: the first of
// Config.Upstreams whose API matches it, else Config.Upstream.
func (g *Gateway) upstreamFor(path string) *upstream {
	for i := range g.others {
		if g.others[i].api.Match(path) {
			return &g.others[i]
		}
	}
	return &g.def
}

// NewTransport returns the http.Transport the gateway uses by default: many
// idle connections per host (one upstream takes all the traffic) and no
// transparent compression, so the bytes read are the bytes sent on.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = true
	return t
}

// BufferedBytes returns the buffer capacity held by request bodies in
// flight, the figure Config.MaxBufferedBytes bounds.
func (g *Gateway) BufferedBytes() int64 { return g.budget.used.Load() }

// Wait blocks until every request in flight has been recorded, or ctx ends.
func (g *Gateway) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.fin.Wait(ctx)
}
