package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// loginPost builds the form the login page posts.
func loginPost(token, next string, hdr ...string) *http.Request {
	r := req("POST", "/login", hdr...)
	form := url.Values{"token": {token}, "next": {next}}.Encode()
	r.Body = http.NoBody
	r.Body = readCloser{strings.NewReader(form)}
	r.ContentLength = int64(len(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func sessionOf(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", SessionCookie, resp.Header["Set-Cookie"])
	return nil
}

func TestLoginPage(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	w := serve(h, req("GET", "/login?next=/api/calls%3Flimit%3D5"))
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`<form method="post" action="/login">`,
		`name="token" type="password"`,
		`<input type="hidden" name="next" value="/api/calls?limit=5">`,
		`<link rel="stylesheet" href="/assets/style.css">`,
		`type="submit"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script", "<style", "style=", "onload", "onclick"} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("login page has inline %s", bad)
		}
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	// next is escaped into the page, never markup.
	w = serve(h, req("GET", "/login?next="+url.QueryEscape(`/"><script>x</script>`)))
	if strings.Contains(w.Body.String(), "<script>") {
		t.Error("next injected markup into the login page")
	}
}

func TestLoginFlow(t *testing.T) {
	next := &recorder{}
	c := newClock()
	h := newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now}).Wrap(next)

	w := serve(h, loginPost(adminToken, "/?since=1h", "Origin", "http://127.0.0.1:8700"))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST /login: status %d, body %s", w.Code, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "/?since=1h" {
		t.Errorf("Location = %q", loc)
	}
	ck := sessionOf(t, w.Result())
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want true, Strict, /, false",
			ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
	}
	if ck.MaxAge != int(SessionLifetime/time.Second) {
		t.Errorf("cookie MaxAge = %d", ck.MaxAge)
	}
	if strings.Contains(ck.Value, adminToken) {
		t.Error("cookie carries the token")
	}
	if next.count() != 0 {
		t.Error("POST /login reached next")
	}

	page := req("GET", "/", "Accept", "text/html")
	page.AddCookie(ck)
	if w := serve(h, page); w.Code != 200 || next.count() != 1 {
		t.Fatalf("GET / with the session: status %d", w.Code)
	}
	api := req("GET", "/api/calls")
	api.AddCookie(ck)
	if w := serve(h, api); w.Code != 200 {
		t.Fatalf("GET /api/calls with the session: status %d", w.Code)
	}

	// The session ends after its lifetime.
	c.Add(SessionLifetime)
	api = req("GET", "/api/calls")
	api.AddCookie(ck)
	wantError(t, serve(h, api), 401, "invalid_request_error", "unauthorized")
}

func TestLoginSecureCookie(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	w := serve(h, loginPost(adminToken, "/", "X-Forwarded-Proto", "https"))
	if ck := sessionOf(t, w.Result()); !ck.Secure {
		t.Error("cookie not Secure behind X-Forwarded-Proto: https")
	}
}

func TestLoginNextStaysLocal(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	for next, want := range map[string]string{
		"//evil.com":        "/",
		"/\\evil.com":       "/",
		"/\t/evil.com":      "/",
		"/a\\b":             "/",
		"https://evil.com":  "/",
		"evil.com":          "/",
		"":                  "/",
		"/api/calls?x=1":    "/api/calls?x=1",
		"/#stats":           "/#stats",
		"/./evil.com//path": "/./evil.com//path",
	} {
		w := serve(h, loginPost(adminToken, next))
		if w.Code != http.StatusSeeOther {
			t.Fatalf("next %q: status %d", next, w.Code)
		}
		if loc := w.Header().Get("Location"); loc != want {
			t.Errorf("next %q: Location = %q, want %q", next, loc, want)
		}
	}
	w := serve(h, req("GET", "/login?next=//evil.com"))
	if !strings.Contains(w.Body.String(), `name="next" value="/">`) {
		t.Errorf("GET /login?next=//evil.com kept it: %s", w.Body)
	}
}

func TestLoginWrongTokenThrottled(t *testing.T) {
	c := newClock()
	h := newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now}).Wrap(&recorder{})
	for i := range maxFailures {
		w := serve(h, loginPost("wrong-"+adminToken, "/"))
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i, w.Code)
		}
		body := w.Body.String()
		if !strings.Contains(body, "Wrong token.") || !strings.Contains(body, `name="token"`) {
			t.Fatalf("failure %d: no form with message: %s", i, body)
		}
		if strings.Contains(body, adminToken) {
			t.Fatal("login page echoes the token")
		}
		if len(w.Result().Cookies()) != 0 {
			t.Fatal("failed login set a cookie")
		}
		c.Add(time.Second)
	}
	// Even the right token waits out the window.
	w := serve(h, loginPost(adminToken, "/"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: status %d, want 429", maxFailures, w.Code)
	}
	if ra := w.Header().Get("Retry-After"); ra != "50" {
		t.Errorf("Retry-After = %q, want 50", ra)
	}
	// Another address is not locked out by these failures.
	other := loginPost(adminToken, "/")
	other.RemoteAddr = "192.0.2.77:4000"
	if w := serve(h, other); w.Code != http.StatusSeeOther {
		t.Errorf("login from another address during the lockout: status %d, want 303", w.Code)
	}
	c.Add(50 * time.Second)
	if w := serve(h, loginPost(adminToken, "/")); w.Code != http.StatusSeeOther {
		t.Fatalf("after the window: status %d, want 303", w.Code)
	}
}

func TestLogout(t *testing.T) {
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(&recorder{})
	w := serve(h, req("POST", "/logout"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("POST /logout: status %d Location %q", w.Code, w.Header().Get("Location"))
	}
	if ck := sessionOf(t, w.Result()); ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("logout cookie MaxAge=%d Value=%q, want cleared", ck.MaxAge, ck.Value)
	}
	wantError(t, serve(h, req("GET", "/logout")), 405, "invalid_request_error", "method_not_allowed")
	wantError(t, serve(h, req("PUT", "/login")), 405, "invalid_request_error", "method_not_allowed")
}

func TestSessionRefused(t *testing.T) {
	c := newClock()
	g := newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now})
	other := HashToken("another-admin-token-0123456789")
	og := newGuard(t, Config{AdminTokenHash: &other, Now: c.Now})
	valid := g.newSession(c.Now().Add(time.Hour))
	exp, _, _ := strings.Cut(valid, ".")
	for name, v := range map[string]string{
		"forged signature":            exp + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"moved expiry":                strings.Replace(valid, exp, "9"+exp, 1),
		"expired":                     g.newSession(c.Now().Add(-time.Second)),
		"other token":                 og.newSession(c.Now().Add(time.Hour)),
		"garbage":                     "garbage",
		"no signature":                exp + ".",
		"empty":                       "",
		"the token itself":            adminToken,
		"beyond a session's lifetime": g.newSession(c.Now().Add(SessionLifetime + time.Hour)),
		// Whoever holds the token's hash (an admin token file) cannot sign
		// sessions: the key also needs the guard's secret.
		"signed with the hash alone": func() string {
			k := hmac.New(sha256.New, adminHash()[:])
			k.Write([]byte("llmscope session key v1"))
			m := hmac.New(sha256.New, k.Sum(nil))
			m.Write([]byte(exp))
			return exp + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}(),
	} {
		r := req("GET", "/api/calls")
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: v})
		t.Run(name, func(t *testing.T) {
			wantError(t, serve(g.Wrap(&recorder{}), r), 401, "invalid_request_error", "unauthorized")
		})
	}
	// Another gateway with the same token accepts the session only when
	// both share the session secret.
	r := req("GET", "/api/calls")
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: valid})
	if w := serve(newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now}).Wrap(&recorder{}), r); w.Code != 401 {
		t.Errorf("a session of another gateway without a shared secret: status %d, want 401", w.Code)
	}
	secret := []byte("shared-session-secret-0123456789")
	a := newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now, SessionSecret: secret})
	b := newGuard(t, Config{AdminTokenHash: adminHash(), Now: c.Now, SessionSecret: secret})
	r = req("GET", "/api/calls")
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: a.newSession(c.Now().Add(time.Hour))})
	if w := serve(b.Wrap(&recorder{}), r); w.Code != 200 {
		t.Errorf("a session of another gateway sharing the secret: status %d", w.Code)
	}
}
