package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"llmscope/gateway"
)

// rawGet sends "GET target" over a fresh connection, byte for byte as
// written (no client cleans or re-encodes it), and returns the answer.
func rawGet(t *testing.T, base, target string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestDotSegmentsNeverReachUpstream: a path with a "." or ".." segment,
// plain or percent-encoded (any case, twice encoded), or a backslash, is
// refused with 400 invalid_path and recorded, and the upstream sees
// nothing: with the gateway as the server's handler, and behind a
// ServeMux as serve mounts it (which may redirect some forms itself).
func TestDotSegmentsNeverReachUpstream(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	direct := httptest.NewServer(gw)
	defer direct.Close()
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	muxed := httptest.NewServer(mux)
	defer muxed.Close()

	bad := []string{
		"/v1/chat/../models",
		"/v1/./models",
		"/v1/models/..",
		"/v1/models/.",
		"/v1/%2e%2e/models",
		"/v1/%2E%2E/models",
		"/v1/.%2E/models",
		"/v1/%2e./models",
		"/v1/%2e/models",
		"/v1/models/%2e%2e",
		"/v1/%252e%252e/models",
		"/v1/%252E%252e/files",
		"/v1/%25252e%25252e/files",
		"/v1/..%2fadmin",
		"/v1/models/a%2F..%2Fb",
		"/v1/models/a%252F..%252Fb",
		`/v1/models\..\admin`,
		`/v1/models\admin`,
		"/v1/models%5cadmin",
		"/v1/models%5C..%5Cadmin",
		"/v1/models%255cadmin",
	}
	for _, target := range bad {
		for _, srv := range []struct {
			name string
			url  string
		}{{"direct", direct.URL}, {"mux", muxed.URL}} {
			resp, body := rawGet(t, srv.url, target)
			switch {
			case resp.StatusCode == http.StatusBadRequest:
				if !strings.Contains(body, `"invalid_path"`) {
					t.Errorf("%s %s: 400 without code invalid_path: %s", srv.name, target, body)
				}
				if c := s.one(t); c.Status != http.StatusBadRequest || c.ErrorType != "invalid_path" {
					t.Errorf("%s %s: recorded %d %q", srv.name, target, c.Status, c.ErrorType)
				}
			case srv.name == "mux" && resp.StatusCode >= 300 && resp.StatusCode < 400:
				// ServeMux answered a cleaned-up redirect itself; the
				// gateway never saw the request.
			default:
				t.Errorf("%s %s: %d %s, want 400 invalid_path", srv.name, target, resp.StatusCode, body)
			}
		}
	}
	mu.Lock()
	if len(seen) > 0 {
		t.Errorf("upstream saw %d refused requests: %q", len(seen), seen)
	}
	mu.Unlock()

	// Still legal: an encoded slash inside a segment, dots inside a name,
	// dots in the query.
	for _, target := range []string{"/v1/models/meta-llama%2FLlama-3", "/v1/models/gpt-3.5-turbo", "/v1/files/a..b", "/v1/models/x?q=1/../.."} {
		for _, base := range []string{direct.URL, muxed.URL} {
			resp, body := rawGet(t, base, target)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s%s: %d %s", base, target, resp.StatusCode, body)
			}
			s.one(t)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/v1/models/meta-llama%2FLlama-3", "/v1/models/meta-llama%2FLlama-3", "/v1/models/gpt-3.5-turbo", "/v1/models/gpt-3.5-turbo",
		"/v1/files/a..b", "/v1/files/a..b", "/v1/models/x", "/v1/models/x"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("upstream saw %q, want %q", seen, want)
	}
}

// TestDotSegmentHandlerDirect calls ServeHTTP with requests no server
// would clean first, the upstream counting what reaches it.
func TestDotSegmentHandlerDirect(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	s := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/v1/../admin", "/v1/%2e%2e/admin", "/v1/%252e%252e/admin", `/v1/a\b`, "/v1/chat/completions/."} {
		r := httptest.NewRequest(http.MethodPost, "http://x"+target, strings.NewReader(`{"model":"m","messages":[]}`))
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "invalid_path") {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
		s.one(t)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}
