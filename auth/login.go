package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed login.html
var loginHTML string

var loginPage = template.Must(template.New("login").Parse(loginHTML))

// Failed logins: after maxFailures from one address within failureWindow
// of its first, every login attempt from that address gets 429 until the
// window ends. At most maxTracked addresses are tracked; beyond, the others
// share one window, so a flood of addresses cannot grow memory.
const (
	maxFailures   = 10
	failureWindow = time.Minute
	maxLoginBody  = 8 << 10
	maxTracked    = 4096
)

// limiter counts failed logins per client address in fixed windows.
type limiter struct {
	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

// key returns the address a request's failures count against.
func (l *limiter) key(remoteAddr string, now time.Time) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	if _, ok := l.windows[host]; ok || len(l.windows) < maxTracked {
		return host
	}
	for k, w := range l.windows { // full: forget windows that ended
		if now.Sub(w.start) >= failureWindow {
			delete(l.windows, k)
		}
	}
	if len(l.windows) < maxTracked {
		return host
	}
	return "*"
}

// blocked reports whether logins from remoteAddr are refused now, and for
// how long more.
func (l *limiter) blocked(remoteAddr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[l.key(remoteAddr, now)]
	if w == nil || now.Sub(w.start) >= failureWindow {
		return false, 0
	}
	return w.failures >= maxFailures, w.start.Add(failureWindow).Sub(now)
}

func (l *limiter) fail(remoteAddr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = make(map[string]*window)
	}
	k := l.key(remoteAddr, now)
	w := l.windows[k]
	if w == nil || now.Sub(w.start) >= failureWindow {
		w = &window{start: now}
		l.windows[k] = w
	}
	w.failures++
}

// localPath returns next when it is a path on this server ("/…", not
// "//…" or "/\…", no control characters or backslashes), else "/".
func localPath(next string) string {
	if len(next) == 0 || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	return next
}

// login serves GET /login (the form) and POST /login (check the token, set
// the session cookie, go on to next).
func (g *Guard) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		g.loginForm(w, http.StatusOK, localPath(r.URL.Query().Get("next")), "")
	case http.MethodPost:
		g.loginPost(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use GET or POST on /login")
	}
}

func (g *Guard) loginPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		g.loginForm(w, http.StatusBadRequest, "/", "The form could not be read.")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	now := g.now()
	if blocked, wait := g.limiter.blocked(r.RemoteAddr, now); blocked {
		g.rejected(r, "login_throttled")
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		g.loginForm(w, http.StatusTooManyRequests, next,
			fmt.Sprintf("Too many failed attempts. Try again in %d s.", secs))
		return
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(r.PostForm.Get("token"))))
	if subtle.ConstantTimeCompare(h[:], g.adminHash[:]) != 1 {
		g.limiter.fail(r.RemoteAddr, now)
		g.rejected(r, "unauthorized")
		g.loginForm(w, http.StatusUnauthorized, next, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    g.newSession(now.Add(SessionLifetime)),
		Path:     "/",
		MaxAge:   int(SessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   secure(r),
		SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}

// logout serves POST /logout: the session cookie is cleared.
func (g *Guard) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use POST on /logout")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/login")
	w.WriteHeader(http.StatusSeeOther)
}

// secure reports whether the client reached us over TLS, directly or
// through a proxy saying so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (g *Guard) loginForm(w http.ResponseWriter, status int, next, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Next, Message string }{next, msg})
}
