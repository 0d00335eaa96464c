// Package auth guards every route of serve in one middleware: Host and
// Origin checks, the admin token (Bearer or login session) for the
// dashboard, /api/* and /metrics, client keys for the gateway routes, the
// security headers and a cap on the requests handled at once.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"llmscope"
	"llmscope/budget"
)

// Config says what a Guard accepts. The zero Config guards nothing but the
// Host (loopback names only) and the Origin of browser requests.
type Config struct {
	// AdminTokenHash is the SHA-256 of the admin token (HashToken, or
	// LoadAdminTokenFile); nil leaves the admin routes open.
	AdminTokenHash *[32]byte
	// ClientKeys, when set, are the keys gateway clients (/v1/*, /v1beta/*,
	// /openai/*) must present, in Authorization (Bearer), x-api-key,
	// api-key or x-goog-api-key; the
	// key's name becomes the call's user (X-Llmscope-User). Nil leaves /v1
	// open.
	ClientKeys *Keys
	// StoredKeys, when set, are client keys kept in the store, accepted
	// like ClientKeys from the same headers once the store holds any key
	// (StoredKeys.Any). A stored key's user (its name without one) becomes
	// the call's user; a revoked or expired one is refused with a 401
	// saying so.
	StoredKeys *StoreKeys
	// PassProviderKeys lets a /v1 request carrying a credential that is not
	// a client key go on untouched, so clients use their own provider key.
	// A request with no credential at all is still refused.
	PassProviderKeys bool
	// AllowedHosts are the Host values accepted: "name" (any port),
	// "name:port", "[v6]", "[v6]:port", or "*" for any. Empty means the
	// loopback names localhost, 127.0.0.1 and [::1] on any port.
	AllowedHosts []string
	// AllowedOrigins are browser origins (scheme://host[:port]) accepted
	// besides the gateway's own.
	AllowedOrigins []string
	// MaxInflight caps the requests handled at once (all but /healthz);
	// beyond it a request gets 503 at once. 0 means no cap.
	MaxInflight int
	// Logger receives rejections at debug level; nil discards them.
	Logger *slog.Logger
	// Now is the clock of sessions and the login limiter; nil is time.Now.
	Now func() time.Time
	// SessionSecret signs login sessions together with the admin token's
	// hash. Gateways behind one load balancer share it so that a session
	// made by one is valid on all; empty, each guard draws its own and its
	// sessions end with it.
	SessionSecret []byte
	// OnReject, when set, is called once per refused request with the
	// reason: host, origin, path, unauthorized, key_store (the key store
	// could not be read), overloaded or login_throttled.
	OnReject func(reason string)
}

// Guard is the middleware built from a Config. It is safe for concurrent use.
type Guard struct {
	admin      bool
	adminHash  [32]byte
	sessionKey []byte
	keys       *Keys
	stored     *StoreKeys
	pass       bool
	anyHost    bool
	hosts      []hostEntry
	origins    []string
	max        int64
	inflight   atomic.Int64
	log        *slog.Logger
	now        func() time.Time
	onReject   func(string)
	limiter    limiter
}

// New checks cfg and returns its Guard.
func New(cfg Config) (*Guard, error) {
	g := &Guard{
		keys:     cfg.ClientKeys,
		stored:   cfg.StoredKeys,
		pass:     cfg.PassProviderKeys,
		log:      cfg.Logger,
		now:      cfg.Now,
		onReject: cfg.OnReject,
	}
	if cfg.MaxInflight < 0 {
		return nil, fmt.Errorf("max inflight: must not be negative, got %d", cfg.MaxInflight)
	}
	g.max = int64(cfg.MaxInflight)
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if cfg.AdminTokenHash != nil {
		g.admin = true
		g.adminHash = *cfg.AdminTokenHash
		g.sessionKey = sessionKey(g.adminHash, cfg.SessionSecret)
	}
	hosts := cfg.AllowedHosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "[::1]"}
	}
	for _, h := range hosts {
		if h == "*" {
			g.anyHost = true
			continue
		}
		e, err := parseHostEntry(h)
		if err != nil {
			return nil, fmt.Errorf("allowed hosts: %w", err)
		}
		g.hosts = append(g.hosts, e)
	}
	for _, o := range cfg.AllowedOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("allowed origins: %w", err)
		}
		g.origins = append(g.origins, n)
	}
	return g, nil
}

// Protected reports whether the admin routes need the admin token and
// whether /v1 needs a credential (client keys from the file or the store,
// or the client's own provider key).
func (g *Guard) Protected() (admin, clients bool) {
	return g.admin, g.clientsProtected()
}

// clientsProtected reports whether /v1 needs a credential now: stored keys
// count from the first one stored.
func (g *Guard) clientsProtected() bool {
	return g.keys != nil || g.pass || g.stored.Any()
}

// Inflight returns the number of requests being handled now (all but
// /healthz), whether or not a cap is set.
func (g *Guard) Inflight() int { return int(g.inflight.Load()) }

// route is the class of a request path.
type route uint8

const (
	routeAdmin     route = iota // the dashboard, /api, /metrics, /debug, anything else
	routeGateway                // /v1/*, /v1beta/*, /openai/* (Azure OpenAI): proxied upstream
	routeHealth                 // GET|HEAD /healthz
	routeAsset                  // GET|HEAD /assets/*
	routeLogin                  // /login
	routeLogout                 // /logout
	routeAmbiguous              // the decoded and escaped paths fall in different classes
)

// classify returns the class of r, or routeAmbiguous when the decoded and
// the escaped path disagree (an encoded slash or dot): no class's checks
// could be trusted for it, whichever of them the mux goes by.
func classify(r *http.Request) route {
	c := classifyPath(r.Method, r.URL.Path)
	if r.URL.RawPath != "" && classifyPath(r.Method, r.URL.RawPath) != c {
		return routeAmbiguous
	}
	return c
}

func classifyPath(method, p string) route {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	p = path.Clean(p) // what ServeMux routes by (it redirects otherwise)
	switch {
	case hasSegmentPrefix(p, "/v1"), hasSegmentPrefix(p, "/v1beta"), hasSegmentPrefix(p, "/openai"):
		return routeGateway
	case p == "/login":
		return routeLogin
	case p == "/logout":
		return routeLogout
	}
	if method == http.MethodGet || method == http.MethodHead {
		switch {
		case p == "/healthz":
			return routeHealth
		case strings.HasPrefix(p, "/assets/"):
			return routeAsset
		}
	}
	return routeAdmin
}

// hasSegmentPrefix reports whether p is prefix or lies below it.
func hasSegmentPrefix(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// Shared header values, one element each (len == cap, so an Add by a later
// handler copies rather than writes into them).
var (
	valNosniff  = []string{"nosniff"}
	valNoRef    = []string{"same-origin"} // not no-referrer: under it a browser sends "Origin: null" with the login form
	valDeny     = []string{"DENY"}
	valCSP      = []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}
	valRetry1   = []string{"1"}
	valBearerRm = []string{`Bearer realm="llmscope"`}
)

// Wrap returns next guarded: the checks run in order Host, Origin, then
// credentials by route, then the in-flight cap; only a request passing all
// of them reaches next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(next, w, r) })
}

func (g *Guard) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	rt := classify(r)
	h := w.Header()
	h["X-Content-Type-Options"] = valNosniff
	if rt != routeGateway {
		h["Referrer-Policy"] = valNoRef
		h["X-Frame-Options"] = valDeny
		h["Content-Security-Policy"] = valCSP
	}
	if !g.hostAllowed(r.Host) {
		g.reject(w, r, "host", http.StatusForbidden, "invalid_request_error", "host_not_allowed",
			"this Host is not allowed; add it to --allowed-hosts")
		return
	}
	if (rt == routeGateway || !safeMethod(r.Method)) && !g.originAllowed(r) {
		g.reject(w, r, "origin", http.StatusForbidden, "invalid_request_error", "origin_not_allowed",
			"cross-origin request refused; add the origin to --allowed-origins")
		return
	}
	var handler http.Handler = next
	switch rt {
	case routeAmbiguous:
		g.reject(w, r, "path", http.StatusBadRequest, "invalid_request_error", "invalid_path",
			"the path means different things encoded and decoded")
		return
	case routeAdmin:
		if g.admin && !g.adminAuthorized(r) {
			g.unauthorized(w, r)
			return
		}
	case routeLogin:
		if g.admin {
			handler = http.HandlerFunc(g.login)
		}
	case routeLogout:
		if g.admin {
			handler = http.HandlerFunc(g.logout)
		} else {
			handler = http.RedirectHandler("/", http.StatusSeeOther) // nothing to log out of
		}
	case routeHealth:
		if g.admin && !g.adminAuthorized(r) {
			r = r.WithContext(context.WithValue(r.Context(), publicKey{}, true))
		}
	case routeGateway:
		if g.clientsProtected() {
			var err error
			if r, err = g.client(r); err != nil {
				g.refuseClient(w, r, err)
				return
			}
		}
	}
	if rt != routeHealth {
		if n := g.inflight.Add(1); g.max > 0 && n > g.max {
			g.inflight.Add(-1)
			w.Header()["Retry-After"] = valRetry1
			g.reject(w, r, "overloaded", http.StatusServiceUnavailable, "server_error", "overloaded",
				fmt.Sprintf("llmscope is handling its limit of %d requests at once (--max-inflight); retry shortly", g.max))
			return
		}
		defer g.inflight.Add(-1)
	}
	rw := getWriter(w)
	defer putWriter(rw)
	handler.ServeHTTP(rw, r)
}

type publicKey struct{}

// Public reports whether a request reached an open route (/healthz) of a
// guard that protects its admin routes without presenting the admin
// credentials: its answer should name what fails, not the details (errors
// may name internal addresses).
func Public(ctx context.Context) bool {
	v, _ := ctx.Value(publicKey{}).(bool)
	return v
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// reject answers with an error body and reports the refusal.
func (g *Guard) reject(w http.ResponseWriter, r *http.Request, reason string, status int, typ, code, msg string) {
	g.rejected(r, reason)
	writeError(w, status, typ, code, msg)
}

// rejected logs and counts one refused request (never its credentials).
func (g *Guard) rejected(r *http.Request, reason string) {
	if g.onReject != nil {
		g.onReject(reason)
	}
	g.log.Debug("request refused", "reason", reason, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
}

// unauthorized sends a browser asking for a page to the login form, and
// anything else a 401.
func (g *Guard) unauthorized(w http.ResponseWriter, r *http.Request) {
	p := path.Clean("/" + r.URL.Path)
	if r.Method == http.MethodGet && strings.Contains(header(r.Header, "Accept"), "text/html") &&
		!hasSegmentPrefix(p, "/api") && p != "/metrics" {
		g.rejected(r, "unauthorized")
		w.Header().Set("Location", "/login?next="+url.QueryEscape(r.URL.RequestURI()))
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	w.Header()["Www-Authenticate"] = valBearerRm
	g.reject(w, r, "unauthorized", http.StatusUnauthorized, "invalid_request_error", "unauthorized",
		"this route needs the admin token: Authorization: Bearer <token>, or log in at /login")
}

// adminAuthorized reports whether r carries the admin token as a Bearer
// token or a valid session cookie.
func (g *Guard) adminAuthorized(r *http.Request) bool {
	if tok, ok := bearer(header(r.Header, "Authorization")); ok {
		h := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(h[:], g.adminHash[:]) == 1 {
			return true
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return g.validSession(c.Value)
	}
	return false
}

// header returns the first value of a header by its canonical name (as the
// server stores them), skipping Header.Get's canonicalization.
func header(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// bearer returns the token of an "Authorization: Bearer <token>" value.
func bearer(v string) (string, bool) {
	const p = "bearer "
	if len(v) < len(p) || !strings.EqualFold(v[:len(p)], p) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(p):])
	return tok, tok != ""
}

// credentialHeaders are where /v1 clients send a key, in the order looked at.
var credentialHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"}

// Why client refuses a request; refuseClient answers each.
var (
	errNoKey      = errors.New("missing or unknown API key")
	errKeyRevoked = errors.New("this API key was revoked")
	errKeyExpired = errors.New("this API key has expired")
)

// refuseClient answers a request client refused with err: 401 in
// OpenAI's shape (code invalid_api_key) naming why, never the key; 503
// when the key store could not be read.
func (g *Guard) refuseClient(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errStoreKeys) {
		g.log.Warn("cannot check a client key", "err", err)
		w.Header()["Retry-After"] = valRetry1
		g.reject(w, r, "key_store", http.StatusServiceUnavailable, "server_error", "key_store_unavailable",
			"llmscope cannot read its client keys now; retry shortly")
		return
	}
	msg := errNoKey.Error()
	if errors.Is(err, errKeyRevoked) || errors.Is(err, errKeyExpired) {
		msg = err.Error()
	}
	g.reject(w, r, "unauthorized", http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", msg)
}

// client checks the credential of a gateway request. A known client key
// (the file's, or a stored one that is neither revoked nor expired), in
// any of the credential headers, yields a copy of r without credential
// headers, with X-Llmscope-User set to the key's user (its name without
// one) and its context carrying the key (llmscope.WithClientKey: only
// such requests may be sent with the gateway's own upstream key). A
// revoked or expired stored key is refused whatever else holds. With
// PassProviderKeys any other credential yields r, minus an
// X-Llmscope-User it cannot vouch for. Otherwise the error says why not
// (errNoKey, errKeyRevoked, errKeyExpired, or one wrapping errStoreKeys).
func (g *Guard) client(r *http.Request) (*http.Request, error) {
	found := false
	stored := g.stored.Any()
	for _, name := range credentialHeaders {
		v := header(r.Header, name)
		if v == "" {
			continue
		}
		found = true
		tok := strings.TrimSpace(v)
		if name == "Authorization" {
			tok, _ = bearer(v)
		}
		if tok == "" {
			continue
		}
		if g.keys != nil {
			if key, ok := g.keys.Lookup(tok); ok {
				return authenticated(r, g.keys.clientKey(key)), nil
			}
		}
		if !stored {
			continue
		}
		key, err := g.stored.Lookup(r.Context(), HashSecret(tok), g.now())
		switch {
		case err == nil:
			return authenticated(r, key), nil
		case errors.Is(err, budget.ErrRevoked):
			return r, errKeyRevoked
		case errors.Is(err, budget.ErrExpired):
			return r, errKeyExpired
		case !errors.Is(err, budget.ErrKeyNotFound):
			return r, err
		}
	}
	if !found && r.URL.RawQuery != "" && r.URL.Query().Get("key") != "" {
		found = true // Gemini's ?key=: a provider key, never a client key
	}
	if !g.pass || !found {
		return r, errNoKey
	}
	if _, forged := r.Header["X-Llmscope-User"]; forged {
		r2 := new(http.Request)
		*r2 = *r
		r2.Header = r.Header.Clone()
		delete(r2.Header, "X-Llmscope-User") // only a client key names the user
		return r2, nil
	}
	return r, nil
}

// authenticated returns a copy of r made with key: its context carries
// key, its credential headers are gone and X-Llmscope-User names key's
// user.
func authenticated(r *http.Request, key *llmscope.ClientKey) *http.Request {
	r2 := r.WithContext(llmscope.WithClientKey(r.Context(), key))
	r2.Header = r.Header.Clone()
	for _, h := range credentialHeaders {
		delete(r2.Header, h)
	}
	r2.Header.Set("X-Llmscope-User", key.CallUser())
	return r2
}
