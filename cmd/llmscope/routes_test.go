package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
)

const (
	testAdminToken = "admin-0123456789abcdef"
	testClientKey  = "sk-llmscope-alice-0123456789"
)

// writeClientKeys writes a client keys file naming testClientKey "alice".
func writeClientKeys(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256([]byte(testClientKey))
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte("keys:\n  - name: alice\n    sha256: "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// get sends method path to base with headers and returns status, headers
// and body; redirects are not followed.
func request(t *testing.T, method, url, body string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestEveryRouteIsAuthenticated: with an admin token and client keys, no
// route but /healthz, the login page and the static assets answers without
// credentials, and every one answers with them.
func TestEveryRouteIsAuthenticated(t *testing.T) {
	_, base, db, _ := startServe(t, "--admin-token", testAdminToken, "--client-keys", writeClientKeys(t), "--pprof")
	bearer := map[string]string{"Authorization": "Bearer " + testAdminToken}
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, c := range []struct {
		method, path string
		without      int // without credentials
		with         int // with the admin token (or the client key on /v1)
	}{
		{"GET", "/api/calls", 401, 200},
		{"GET", "/api/calls/none", 401, 404},
		{"GET", "/api/stats", 401, 200},
		{"GET", "/api/compare?by=run&values=a,b", 401, 200},
		{"GET", "/metrics", 401, 200},
		{"GET", "/", 401, 200},
		{"GET", "/debug/pprof/", 401, 200},
		{"GET", "/nowhere", 401, 404},
		{"POST", "/v1/chat/completions", 401, 200},
		{"GET", "/v1/models", 401, 200},
		{"POST", "/v1/embeddings", 401, 200},
		{"GET", "/healthz", 200, 200},
		{"GET", "/assets/style.css", 200, 200},
		{"GET", "/login", 200, 200},
	} {
		body := ""
		if c.method == "POST" {
			body = chat
			if c.path == "/v1/embeddings" {
				body = `{"model":"text-embedding-3-small","input":"hi"}`
			}
		}
		status, _, b := request(t, c.method, base+c.path, body, map[string]string{"Content-Type": "application/json"})
		if status != c.without {
			t.Errorf("%s %s without credentials = %d, want %d: %.200s", c.method, c.path, status, c.without, b)
		}
		if status == 401 && !strings.Contains(b, `"error":{`) {
			t.Errorf("%s %s: 401 body is not OpenAI-shaped: %.200s", c.method, c.path, b)
		}
		h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testAdminToken}
		if strings.HasPrefix(c.path, "/v1/") {
			h["Authorization"] = "Bearer " + testClientKey
			// The admin token is not a client key.
			if s, _, _ := request(t, c.method, base+c.path, body, bearer); s != 401 {
				t.Errorf("%s %s with the admin token = %d, want 401", c.method, c.path, s)
			}
		}
		if status, _, b := request(t, c.method, base+c.path, body, h); status != c.with {
			t.Errorf("%s %s with credentials = %d, want %d: %.200s", c.method, c.path, status, c.with, b)
		}
	}
	// A browser asking for the dashboard is sent to the login page, which
	// sets a session cookie the dashboard and the API accept.
	status, hdr, _ := request(t, "GET", base+"/", "", map[string]string{"Accept": "text/html"})
	if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login") {
		t.Errorf("GET / from a browser = %d to %q, want 303 to /login", status, hdr.Get("Location"))
	}
	status, hdr, _ = request(t, "POST", base+"/login", url.Values{"token": {testAdminToken}, "next": {"/"}}.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	cookie := hdr.Get("Set-Cookie")
	if status != http.StatusSeeOther || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login = %d, cookie %q", status, cookie)
	}
	session := map[string]string{"Cookie": strings.Split(cookie, ";")[0]}
	for _, p := range []string{"/", "/api/calls", "/api/stats"} {
		if s, _, _ := request(t, "GET", base+p, "", session); s != 200 {
			t.Errorf("GET %s with the session cookie = %d", p, s)
		}
	}
	if s, _, _ := request(t, "POST", base+"/login", "token=wrong", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); s != 401 {
		t.Errorf("login with a wrong token = %d, want 401", s)
	}

	// The real OpenAI client with a client key: the key's name is the
	// call's user, and the key reaches neither the store nor the upstream.
	client := openai.NewClient(oaoption.WithBaseURL(base+"/v1/"), oaoption.WithAPIKey(testClientKey), oaoption.WithMaxRetries(0))
	var raw *http.Response
	if _, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	}, oaoption.WithResponseInto(&raw)); err != nil {
		t.Fatalf("openai-go with a client key: %v", err)
	}
	id := raw.Header.Get("X-Llmscope-Call-Id")
	var stored struct{ User string }
	eventually(t, "the call stored", 10*time.Second, func() bool {
		s, _, b := request(t, "GET", base+"/api/calls/"+id, "", bearer)
		return s == 200 && jsonInto(b, &stored) == nil
	})
	if stored.User != "alice" {
		t.Errorf("call of client key alice recorded with user %q", stored.User)
	}
	if _, wrong := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	}, oaoption.WithAPIKey("sk-wrong")); wrong == nil || !strings.Contains(wrong.Error(), "401") {
		t.Errorf("openai-go with an unknown key: %v, want a 401", wrong)
	}
	var out, errb bytes.Buffer
	run(context.Background(), []string{"calls", "--db", db, "--json"}, nil, &out, &errb)
	dump, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	for what, b := range map[string][]byte{"calls --json": out.Bytes(), "the store file": dump, "the store's WAL": wal} {
		if bytes.Contains(b, []byte(testClientKey)) || bytes.Contains(b, []byte(testAdminToken)) {
			t.Errorf("%s holds a key", what)
		}
	}
}

func jsonInto(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestBrowserAttacksAreRefused: a DNS-rebinding page (foreign Host) and a
// cross-origin form POST get 403 and reach neither the API nor the
// upstream; dot-segments never reach the upstream; the dashboard carries
// security headers.
func TestBrowserAttacksAreRefused(t *testing.T) {
	_, base, _, _ := startServe(t)
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	if s, _, b := request(t, "GET", base+"/api/calls", "", map[string]string{"Host": "evil.example:8700"}); s != 403 || !strings.Contains(b, "host_not_allowed") {
		t.Errorf("rebinding read of /api/calls = %d %s", s, b)
	}
	if s, _, _ := request(t, "POST", base+"/v1/chat/completions", chat, map[string]string{"Host": "evil.example"}); s != 403 {
		t.Errorf("POST /v1 with a foreign Host = %d, want 403", s)
	}
	if s, _, b := request(t, "POST", base+"/v1/chat/completions", chat,
		map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}); s != 403 || !strings.Contains(b, "origin_not_allowed") {
		t.Errorf("cross-origin text/plain POST = %d %s", s, b)
	}
	for _, h := range []map[string]string{{"Host": "localhost"}, {"Origin": base}, {}} {
		h["Content-Type"] = "application/json"
		if s, _, b := request(t, "POST", base+"/v1/chat/completions", chat, h); s != 200 {
			t.Errorf("legitimate POST %v = %d %s", h, s, b)
		}
	}
	if n := waitStats(t, base, 3).Totals.Calls; n != 3 {
		t.Errorf("%d calls recorded, want only the 3 legitimate ones", n)
	}
	// Dot-segments, written by hand so no client library cleans them.
	host := strings.TrimPrefix(base, "http://")
	for _, p := range []string{"/v1/%2e%2e/%2e%2e/admin", "/v1/.%2E/x", "/v1/chat/%2E/completions", "/v1/%252e%252e/x"} {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", p, host, len(chat), chat)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_path") {
			t.Errorf("POST %s = %d %s, want 400 invalid_path", p, resp.StatusCode, b)
		}
	}
	_, hdr, _ := request(t, "GET", base+"/", "", nil)
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("dashboard CSP %q", csp)
	}
	if hdr.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("dashboard X-Content-Type-Options %q", hdr.Get("X-Content-Type-Options"))
	}
}

// TestErrorBodiesHideInternals: a 502 tells the client the upstream is
// unreachable, not where it is.
func TestErrorBodiesHideInternals(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, base, _, _ := startServe(t, "--upstream", "http://"+dead+"/v1")
	status, _, b := request(t, "POST", base+"/v1/chat/completions", `{"model":"m","messages":[]}`, map[string]string{"Content-Type": "application/json"})
	if status != 502 || strings.Contains(b, dead) || strings.Contains(b, "127.0.0.1") || !strings.Contains(b, "upstream unreachable") {
		t.Errorf("502 body: %d %s", status, b)
	}
}

// TestServeRefusesAnOpenExposedAddress: on an address other machines can
// reach, serve refuses to run without authentication unless --insecure.
func TestServeRefusesAnOpenExposedAddress(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	serverKey := false
	start := func(args ...string) (exited bool, stderr string) {
		cmd := exec.Command(bin, append([]string{"serve", "--addr", "0.0.0.0:0", "--db", filepath.Join(t.TempDir(), "c.db")}, args...)...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=")
		if serverKey {
			// A provider key of the gateway's own, for an upstream that
			// is never reached.
			cmd.Env = append(cmd.Env, "OPENAI_API_KEY=sk-server-0123456789")
			cmd.Args = append(cmd.Args, "--upstream", "http://127.0.0.1:9/v1")
		}
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case err := <-done:
				return err != nil, errb.String()
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("serve %v neither exited nor listened", args)
			case <-time.After(50 * time.Millisecond):
				if strings.Contains(out.String(), "listening on") {
					_ = cmd.Process.Kill()
					<-done
					return false, errb.String()
				}
			}
		}
	}
	if exited, stderr := start(); !exited || !strings.Contains(stderr, "--admin-token") || !strings.Contains(stderr, "--insecure") {
		t.Errorf("open 0.0.0.0: exited %t, stderr %q", exited, stderr)
	}
	// With only the admin token, /v1 is open: fine while the gateway holds
	// no provider key (clients bring theirs), refused when it holds one.
	if exited, stderr := start("--admin-token", testAdminToken); exited {
		t.Errorf("0.0.0.0 with an admin token and no provider key of its own refused: %s", stderr)
	}
	serverKey = true
	if exited, stderr := start("--admin-token", testAdminToken); !exited || !strings.Contains(stderr, "--client-keys") {
		t.Errorf("0.0.0.0 with only an admin token and the gateway's own provider key: exited %t, stderr %q", exited, stderr)
	}
	if exited, stderr := start("--admin-token", testAdminToken, "--client-keys", writeClientKeys(t)); exited {
		t.Errorf("0.0.0.0 with an admin token, client keys and a provider key refused: %s", stderr)
	}
	serverKey = false
	if exited, stderr := start("--addr", "127.0.0.1:0", "--metrics-addr", "0.0.0.0:0"); !exited || !strings.Contains(stderr, "--metrics-addr") {
		t.Errorf("open metrics on 0.0.0.0: exited %t, stderr %q", exited, stderr)
	}
	if exited, stderr := start("--insecure"); exited {
		t.Errorf("--insecure refused: %s", stderr)
	}
	if exited, stderr := start("--admin-token", testAdminToken, "--client-keys", writeClientKeys(t)); exited {
		t.Errorf("authenticated 0.0.0.0 refused: %s", stderr)
	}
}

// TestMetricsAddrIsGuarded: /metrics on --metrics-addr needs the admin
// token as /metrics on --addr does.
func TestMetricsAddrIsGuarded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	startServe(t, "--admin-token", testAdminToken, "--metrics-addr", addr)
	url := "http://" + addr + "/metrics"
	eventually(t, "--metrics-addr to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if s, _, _ := request(t, "GET", url, "", nil); s != 401 {
		t.Errorf("--metrics-addr /metrics without the token = %d, want 401", s)
	}
	if s, _, b := request(t, "GET", url, "", map[string]string{"Authorization": "Bearer " + testAdminToken}); s != 200 || !strings.Contains(b, "llmscope_store_queue_depth") {
		t.Errorf("--metrics-addr /metrics with the token = %d", s)
	}
}
