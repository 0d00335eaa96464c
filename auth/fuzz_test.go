package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// serveMux is laid out like serve's: the gateway under /v1/, /v1beta/ and /openai/,
// /metrics and /debug/pprof/ beside the web mux with /api, /healthz, the
// dashboard at / and its assets. admin and gateway count the requests their
// handlers see.
func serveMux(admin, gateway, open func(*http.Request)) http.Handler {
	h := func(f func(*http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { f(r) }
	}
	web := http.NewServeMux()
	web.Handle("GET /api/calls", h(admin))
	web.Handle("GET /api/calls/{id}", h(admin))
	web.Handle("GET /api/stats", h(admin))
	web.Handle("GET /{$}", h(admin))
	web.Handle("GET /healthz", h(open))
	web.Handle("GET /assets/", h(open))
	web.Handle("/", h(open)) // not found
	mux := http.NewServeMux()
	mux.Handle("/v1/", h(gateway))
	mux.Handle("/v1beta/", h(gateway))
	mux.Handle("/openai/", h(gateway))
	mux.Handle("GET /metrics", h(admin))
	mux.Handle("/debug/pprof/", h(admin))
	mux.Handle("/", web)
	return mux
}

// FuzzWrap checks that no request panics the guard, that an admin handler
// is reached only with the admin token or a valid session, and that the
// gateway is reached only with a client key, which it never sees.
func FuzzWrap(f *testing.F) {
	c := newClock()
	g, err := New(Config{AdminTokenHash: adminHash(), ClientKeys: mustKeys(f), Now: c.Now})
	if err != nil {
		f.Fatal(err)
	}
	session := g.newSession(c.Now().Add(time.Hour))
	for _, s := range [][6]string{
		{"GET", "/api/calls", "127.0.0.1:8700", "", "Bearer " + adminToken, ""},
		{"GET", "/", "localhost", "", "", SessionCookie + "=" + session},
		{"GET", "/", "localhost", "", "", SessionCookie + "=1.x"},
		{"POST", "/v1/chat/completions", "[::1]:8700", "http://[::1]:8700", "Bearer " + aliceKey, ""},
		{"POST", "/v1/chat/completions", "localhost", "https://evil.example", "", ""},
		{"GET", "/assets/%2e%2e/api/calls", "localhost", "", "", ""},
		{"GET", "/v1%2F..%2Fapi/calls", "localhost", "", "", ""},
		{"GET", "/healthz/../metrics", "localhost", "", "", ""},
		{"POST", "/login", "localhost", "", "", ""},
		{"GET", "/debug/pprof/", "evil.example", "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	f.Fuzz(func(t *testing.T, method, target, host, origin, authz, cookie string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || method == http.MethodConnect {
			return
		}
		var adminHit, gatewayHit int
		var seen *http.Request
		mux := serveMux(
			func(*http.Request) { adminHit++ },
			func(r *http.Request) { gatewayHit++; seen = r },
			func(*http.Request) {},
		)
		r := &http.Request{
			Method: method, URL: u, Host: host, RequestURI: target,
			Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Body: http.NoBody, RemoteAddr: "192.0.2.1:1234",
		}
		if origin != "" {
			r.Header["Origin"] = []string{origin}
		}
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{cookie}
		}
		w := httptest.NewRecorder()
		g.Wrap(mux).ServeHTTP(w, r)
		if adminHit > 0 && !strings.Contains(authz, adminToken) && !strings.Contains(cookie, session) {
			t.Fatalf("%s %q reached an admin handler without credentials (status %d)", method, target, w.Code)
		}
		if gatewayHit > 0 {
			if !strings.Contains(authz, aliceKey) && !strings.Contains(authz, bobKey) {
				t.Fatalf("%s %q reached the gateway without a client key", method, target)
			}
			if seen.Header.Get("Authorization") != "" || seen.Header.Get("X-Llmscope-User") == "" {
				t.Fatalf("gateway saw Authorization %q, user %q", seen.Header.Get("Authorization"), seen.Header.Get("X-Llmscope-User"))
			}
		}
		if _, ok := w.Header()["Access-Control-Allow-Credentials"]; ok {
			t.Fatal("Access-Control-Allow-Credentials sent")
		}
	})
}
