package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const adminToken = "admin-token-0123456789abcdef"

// clock is a settable time source for sessions and the login limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is a next handler remembering the requests that reached it.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("next"))
}

func (rc *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) == 0 {
		t.Fatal("next was never reached")
	}
	return rc.reqs[len(rc.reqs)-1]
}

func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func adminHash() *[32]byte {
	h := HashToken(adminToken)
	return &h
}

func newGuard(t testing.TB, cfg Config) *Guard {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// req builds a request to target from the default allowed Host; hdr is
// name, value pairs.
func req(method, target string, hdr ...string) *http.Request {
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, body)
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Host = "127.0.0.1:8700"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			r.Host = hdr[i+1]
			continue
		}
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantError checks status and the OpenAI error body's type and code.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, typ, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if body.Error["type"] != typ || body.Error["code"] != code {
		t.Errorf("error type, code = %v, %v; want %s, %s", body.Error["type"], body.Error["code"], typ, code)
	}
	if p, ok := body.Error["param"]; !ok || p != nil {
		t.Errorf("error param = %v (present %v), want null", p, ok)
	}
	if m, _ := body.Error["message"].(string); m == "" {
		t.Error("error message is empty")
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

var adminPaths = []string{"/api/calls", "/api/stats?group_by=model", "/metrics", "/", "/debug/pprof/", "/anything"}

func TestAdminRoutesNeedToken(t *testing.T) {
	next := &recorder{}
	g := newGuard(t, Config{AdminTokenHash: adminHash()})
	h := g.Wrap(next)
	cookie := g.newSession(time.Now().Add(time.Hour))
	for _, p := range adminPaths {
		w := serve(h, req("GET", p))
		wantError(t, w, 401, "invalid_request_error", "unauthorized")
		if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="llmscope"` {
			t.Errorf("%s: WWW-Authenticate = %q", p, got)
		}
		wantError(t, serve(h, req("GET", p, "Authorization", "Bearer wrong-token")), 401, "invalid_request_error", "unauthorized")
		wantError(t, serve(h, req("GET", p, "Authorization", "Basic "+adminToken)), 401, "invalid_request_error", "unauthorized")
		if next.count() != 0 {
			t.Fatalf("%s: next reached without credentials", p)
		}
		for _, ok := range []*http.Request{
			req("GET", p, "Authorization", "Bearer "+adminToken),
			req("GET", p, "Authorization", "bearer  "+adminToken),
			req("GET", p, "Cookie", SessionCookie+"="+cookie),
		} {
			if w := serve(h, ok); w.Code != 200 || w.Body.String() != "next" {
				t.Errorf("%s with %v: status %d body %q, want 200 from next", p, ok.Header, w.Code, w.Body)
			}
		}
		next.reqs = nil
	}
	// POST to an admin route: same rule.
	wantError(t, serve(h, req("POST", "/api/calls")), 401, "invalid_request_error", "unauthorized")
}

func TestAdminRoutesOpenWithoutToken(t *testing.T) {
	h := newGuard(t, Config{}).Wrap(&recorder{})
	for _, p := range adminPaths {
		if w := serve(h, req("GET", p)); w.Code != 200 {
			t.Errorf("%s: status %d, want 200", p, w.Code)
		}
	}
	// /login is the mux's business then.
	if w := serve(h, req("GET", "/login")); w.Body.String() != "next" {
		t.Errorf("/login without admin token: body %q, want next's", w.Body)
	}
}

func TestOpenRoutes(t *testing.T) {
	next := &recorder{}
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(next)
	for _, r := range []*http.Request{
		req("GET", "/healthz"), req("HEAD", "/healthz"),
		req("GET", "/assets/style.css"), req("HEAD", "/assets/app.js"),
	} {
		if w := serve(h, r); w.Code != 200 {
			t.Errorf("%s %s: status %d, want 200", r.Method, r.URL, w.Code)
		}
	}
	for _, r := range []*http.Request{
		req("POST", "/healthz"), req("POST", "/assets/style.css"),
		req("GET", "/assets/../api/calls"),
		req("GET", "/v1%2F..%2Fapi/calls"), // both forms are admin routes
		req("GET", "/healthz/../metrics"),
	} {
		wantError(t, serve(h, r), 401, "invalid_request_error", "unauthorized")
	}
	// Paths whose encoded and decoded forms fall in different classes are
	// refused whatever credentials the classes would want.
	for _, r := range []*http.Request{
		req("GET", "/assets/%2e%2e/api/calls"),
		req("GET", "/v1/%2e%2e/api/calls"),
	} {
		wantError(t, serve(h, r), 400, "invalid_request_error", "invalid_path")
	}
	if next.count() != 4 {
		t.Errorf("%d requests reached next, want only the 4 open ones", next.count())
	}
}

func TestBrowserGoesToLogin(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	const accept = "text/html,application/xhtml+xml,*/*;q=0.8"
	w := serve(h, req("GET", "/?since=1h", "Accept", accept))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", w.Code)
	}
	if loc := w.Header().Get("Location"); loc != "/login?next="+url.QueryEscape("/?since=1h") {
		t.Errorf("Location = %q", loc)
	}
	for _, p := range []string{"/api/calls", "/metrics"} {
		wantError(t, serve(h, req("GET", p, "Accept", accept)), 401, "invalid_request_error", "unauthorized")
	}
	wantError(t, serve(h, req("HEAD", "/", "Accept", accept)), 401, "invalid_request_error", "unauthorized")
}

func TestHostCheck(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		host    string
		ok      bool
	}{
		{nil, "127.0.0.1:8700", true},
		{nil, "127.0.0.1", true},
		{nil, "localhost", true},
		{nil, "LOCALHOST:9", true},
		{nil, "localhost.:8700", true},
		{nil, "[::1]:8700", true},
		{nil, "[::1]", true},
		{nil, "evil.example", false},
		{nil, "evil.example:8700", false},
		{nil, "localhost.evil.example", false},
		{nil, "127.0.0.2:8700", false},
		{nil, "", false},
		{nil, "[::1", false},
		{nil, "[::1]x", false},
		{[]string{"*"}, "evil.example", true},
		{[]string{"gw.example.com"}, "gw.example.com:443", true},
		{[]string{"gw.example.com"}, "localhost", false},
		{[]string{"gw.example.com:8700"}, "gw.example.com:8700", true},
		{[]string{"gw.example.com:8700"}, "gw.example.com:8701", false},
		{[]string{"gw.example.com:8700"}, "gw.example.com", false},
		{[]string{"::1"}, "[::1]:1", true},
		{[]string{"[fe80::1]:80"}, "[fe80::1]:80", true},
		{[]string{"[fe80::1]:80"}, "[fe80::1]:81", false},
	} {
		next := &recorder{}
		h := newGuard(t, Config{AllowedHosts: tc.allowed}).Wrap(next)
		w := serve(h, req("GET", "/healthz", "Host", tc.host))
		if tc.ok {
			if w.Code != 200 {
				t.Errorf("allowed %v, Host %q: status %d, want 200", tc.allowed, tc.host, w.Code)
			}
			continue
		}
		t.Run("", func(t *testing.T) {
			wantError(t, w, 403, "invalid_request_error", "host_not_allowed")
		})
		if next.count() != 0 {
			t.Errorf("allowed %v, Host %q: next reached", tc.allowed, tc.host)
		}
	}
}

func TestOriginCheck(t *testing.T) {
	const host = "127.0.0.1:8700"
	for _, tc := range []struct {
		method, path string
		hdr          []string
		ok           bool
	}{
		// a cross-origin POST any web page can send without a preflight
		{"POST", "/v1/chat/completions", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, false},
		{"GET", "/v1/models", []string{"Origin", "https://evil.example"}, false},
		{"POST", "/v1/chat/completions", []string{"Origin", "null"}, false},
		{"POST", "/v1/chat/completions", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"POST", "/api/calls", []string{"Origin", "http://evil.example"}, false},
		{"POST", "/login", []string{"Origin", "http://evil.example"}, false},
		{"POST", "/logout", []string{"Origin", "http://127.0.0.1:8701"}, false},
		{"POST", "/v1/chat/completions", []string{"Origin", "http://127.0.0.1:8700"}, true},
		{"POST", "/v1/chat/completions", []string{"Origin", "HTTP://127.0.0.1:8700"}, true},
		{"POST", "/v1/chat/completions", []string{"Origin", "https://app.example"}, true},
		{"POST", "/v1/chat/completions", []string{"Origin", "https://app.example:443"}, true},
		{"POST", "/v1/chat/completions", []string{"Origin", "https://app.example:8443"}, false},
		{"POST", "/v1/chat/completions", nil, true},
		{"POST", "/v1/chat/completions", []string{"Sec-Fetch-Site", "same-origin"}, true},
		// safe methods outside /v1 are not checked (a page may embed assets)
		{"GET", "/healthz", []string{"Origin", "https://evil.example"}, true},
		{"GET", "/api/calls", []string{"Origin", "https://evil.example"}, true},
	} {
		next := &recorder{}
		h := newGuard(t, Config{AllowedOrigins: []string{"https://app.example/"}}).Wrap(next)
		w := serve(h, req(tc.method, tc.path, append([]string{"Host", host}, tc.hdr...)...))
		if tc.ok {
			if w.Code != 200 || next.count() != 1 {
				t.Errorf("%s %s %v: status %d, want 200 from next", tc.method, tc.path, tc.hdr, w.Code)
			}
			continue
		}
		t.Run("", func(t *testing.T) { wantError(t, w, 403, "invalid_request_error", "origin_not_allowed") })
		if next.count() != 0 {
			t.Errorf("%s %s %v: next reached", tc.method, tc.path, tc.hdr)
		}
	}
}

func TestSameOriginBehindProxy(t *testing.T) {
	h := newGuard(t, Config{AllowedHosts: []string{"gw.example.com"}}).Wrap(&recorder{})
	for _, tc := range []struct {
		host, origin string
		ok           bool
	}{
		{"gw.example.com", "https://gw.example.com", true},
		{"gw.example.com:443", "https://gw.example.com", true},
		{"gw.example.com:8443", "https://gw.example.com:8443", true},
		{"gw.example.com:8443", "https://gw.example.com", false},
		{"gw.example.com", "https://evil.gw.example.com", false},
	} {
		w := serve(h, req("POST", "/v1/chat/completions", "Host", tc.host, "Origin", tc.origin))
		if (w.Code == 200) != tc.ok {
			t.Errorf("Host %q Origin %q: status %d, want ok=%v", tc.host, tc.origin, w.Code, tc.ok)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	page := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	}
	for _, r := range []*http.Request{
		req("GET", "/healthz"),
		req("GET", "/login"),
		req("GET", "/api/calls"),                               // 401
		req("GET", "/", "Host", "evil.example"),                // 403
		req("GET", "/", "Authorization", "Bearer "+adminToken), // 200
	} {
		w := serve(h, r)
		for k, v := range page {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s (status %d): %s = %q, want %q", r.URL, w.Code, k, got, v)
			}
		}
	}
	w := serve(h, req("POST", "/v1/chat/completions"))
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("/v1: X-Content-Type-Options = %q", got)
	}
	for _, k := range []string{"Referrer-Policy", "X-Frame-Options", "Content-Security-Policy"} {
		if _, ok := w.Header()[k]; ok {
			t.Errorf("/v1: %s set", k)
		}
	}
}

func TestNoAllowCredentials(t *testing.T) {
	flushed := false
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		if r.URL.Path == "/v1/flush" {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
			}
			flushed = true
			w.(http.Flusher).Flush()
			return
		}
		if r.URL.Path == "/v1/header" {
			w.WriteHeader(201)
		}
		_, _ = w.Write([]byte("x"))
	})
	h := newGuard(t, Config{}).Wrap(next)
	for _, p := range []string{"/v1/write", "/v1/header", "/v1/flush", "/api/x"} {
		w := serve(h, req("GET", p))
		if _, ok := w.Header()["Access-Control-Allow-Credentials"]; ok {
			t.Errorf("%s: Access-Control-Allow-Credentials relayed", p)
		}
		if w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: other headers lost", p)
		}
	}
	if !flushed {
		t.Error("flush path not taken")
	}
}

func TestProtected(t *testing.T) {
	keys, err := NewKeys(Key{Name: "alice", Hash: HashToken("k")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg            Config
		admin, clients bool
	}{
		{Config{}, false, false},
		{Config{AdminTokenHash: adminHash()}, true, false},
		{Config{ClientKeys: keys}, false, true},
		{Config{PassProviderKeys: true}, false, true},
		{Config{AdminTokenHash: adminHash(), ClientKeys: keys}, true, true},
	} {
		a, c := newGuard(t, tc.cfg).Protected()
		if a != tc.admin || c != tc.clients {
			t.Errorf("%+v: Protected() = %v, %v; want %v, %v", tc.cfg, a, c, tc.admin, tc.clients)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{AllowedHosts: []string{"http://gw.example.com"}},
		{AllowedHosts: []string{""}},
		{AllowedHosts: []string{"gw.example.com:http"}},
		{AllowedHosts: []string{"[::1"}},
		{AllowedOrigins: []string{"gw.example.com"}},
		{AllowedOrigins: []string{"https://gw.example.com/path"}},
		{MaxInflight: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestRejectReasons(t *testing.T) {
	var (
		mu      sync.Mutex
		reasons []string
	)
	c := newClock()
	g := newGuard(t, Config{
		AdminTokenHash: adminHash(),
		ClientKeys:     mustKeys(t),
		Now:            c.Now,
		OnReject: func(r string) {
			mu.Lock()
			reasons = append(reasons, r)
			mu.Unlock()
		},
	})
	h := g.Wrap(&recorder{})
	serve(h, req("GET", "/", "Host", "evil.example"))
	serve(h, req("POST", "/v1/chat/completions", "Origin", "https://evil.example"))
	serve(h, req("GET", "/api/calls"))
	serve(h, req("POST", "/v1/chat/completions"))
	for range maxFailures + 1 {
		serve(h, loginPost("wrong", "/"))
	}
	want := []string{"host", "origin", "unauthorized", "unauthorized"}
	for range maxFailures {
		want = append(want, "unauthorized")
	}
	want = append(want, "login_throttled")
	if !slices.Equal(reasons, want) {
		t.Errorf("reasons = %v\nwant %v", reasons, want)
	}
}
