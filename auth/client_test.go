package auth

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"llmscope"
)

const (
	aliceKey = "sk-llmscope-alice-0123456789"
	bobKey   = "sk-llmscope-bob-0123456789"
)

func mustKeys(t testing.TB) *Keys {
	t.Helper()
	k, err := NewKeys(Key{Name: "alice", Hash: HashToken(aliceKey)}, Key{Name: "bob", Hash: HashToken(bobKey)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestClientKeys(t *testing.T) {
	next := &recorder{}
	h := newGuard(t, Config{AdminTokenHash: adminHash(), ClientKeys: mustKeys(t)}).Wrap(next)
	for _, tc := range []struct {
		hdr  []string
		user string
	}{
		{[]string{"Authorization", "Bearer " + aliceKey}, "alice"},
		{[]string{"Authorization", "Bearer " + bobKey, "X-Llmscope-User", "alice"}, "bob"},
		{[]string{"X-Api-Key", aliceKey, "Anthropic-Version", "2023-06-01"}, "alice"},
		{[]string{"Api-Key", bobKey}, "bob"},
		{[]string{"X-Goog-Api-Key", aliceKey}, "alice"},
	} {
		r := req("POST", "/v1/chat/completions", tc.hdr...)
		if w := serve(h, r); w.Code != 200 {
			t.Fatalf("%v: status %d, body %s", tc.hdr, w.Code, w.Body)
		}
		got := next.last(t)
		if u := got.Header.Values("X-Llmscope-User"); len(u) != 1 || u[0] != tc.user {
			t.Errorf("%v: X-Llmscope-User = %q, want %q", tc.hdr, u, tc.user)
		}
		for _, c := range credentialHeaders {
			if v := got.Header.Get(c); v != "" {
				t.Errorf("%v: %s reached next", tc.hdr, c)
			}
		}
		if tc.hdr[0] == "X-Api-Key" && got.Header.Get("Anthropic-Version") != "2023-06-01" {
			t.Error("other headers lost")
		}
		if r.Header.Get(tc.hdr[0]) == "" {
			t.Error("the caller's request was modified")
		}
	}
	if n := next.count(); n != 5 {
		t.Fatalf("next reached %d times", n)
	}
	for _, hdr := range [][]string{
		nil,
		{"Authorization", "Bearer sk-unknown-key-987654321"},
		{"Authorization", "Bearer " + adminToken}, // the admin token is no client key
		{"Authorization", "Basic " + aliceKey},
		{"X-Api-Key", "sk-unknown-key-987654321"},
	} {
		w := serve(h, req("POST", "/v1/chat/completions", hdr...))
		wantError(t, w, 401, "invalid_request_error", "invalid_api_key")
		if strings.Contains(w.Body.String(), "sk-unknown") || strings.Contains(w.Body.String(), adminToken) {
			t.Errorf("%v: error body echoes the key: %s", hdr, w.Body)
		}
	}
	if next.count() != 5 {
		t.Error("an unknown key reached next")
	}
	// Client keys do not open admin routes.
	wantError(t, serve(h, req("GET", "/api/calls", "Authorization", "Bearer "+aliceKey)), 401, "invalid_request_error", "unauthorized")
	// /v1beta (Gemini) is a gateway route too.
	wantError(t, serve(h, req("POST", "/v1beta/models/gemini-2.0-flash:generateContent")), 401, "invalid_request_error", "invalid_api_key")
	// So is /openai (Azure OpenAI), whose clients send api-key: a client
	// key there is found and not passed on.
	wantError(t, serve(h, req("POST", "/openai/deployments/d/chat/completions")), 401, "invalid_request_error", "invalid_api_key")
	before := next.count()
	serve(h, req("POST", "/openai/deployments/d/chat/completions?api-version=2024-10-21", "Api-Key", aliceKey))
	if next.count() != before+1 {
		t.Fatal("a client key in api-key refused on /openai")
	}
	if got := next.last(t); got.Header.Get("Api-Key") != "" || got.Header.Get("X-Llmscope-User") != "alice" {
		t.Errorf("Azure client key request: %v", got.Header)
	}
}

func TestPassProviderKeys(t *testing.T) {
	next := &recorder{}
	h := newGuard(t, Config{ClientKeys: mustKeys(t), PassProviderKeys: true}).Wrap(next)

	const provider = "Bearer sk-proj-provider-key"
	serve(h, req("POST", "/v1/chat/completions", "Authorization", provider, "X-Llmscope-User", "carol"))
	got := next.last(t)
	if got.Header.Get("Authorization") != provider || got.Header.Get("X-Llmscope-User") != "" {
		t.Errorf("provider key request: %v, want its key kept and no user label it cannot vouch for", got.Header)
	}
	if _, ok := llmscope.ClientFrom(got.Context()); ok {
		t.Error("a provider key request is marked as authenticated by a client key")
	}
	serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer "+aliceKey))
	if got := next.last(t); got.Header.Get("Authorization") != "" || got.Header.Get("X-Llmscope-User") != "alice" {
		t.Errorf("client key with PassProviderKeys: %v", got.Header)
	} else if name, ok := llmscope.ClientFrom(got.Context()); !ok || name != "alice" {
		t.Errorf("client key request not marked: %q %t", name, ok)
	}
	// A client key behind another credential header is still found, and
	// neither goes upstream.
	serve(h, req("POST", "/v1/chat/completions", "Authorization", "Basic Zm9vOmJhcg==", "X-Api-Key", aliceKey))
	if got := next.last(t); got.Header.Get("Authorization") != "" || got.Header.Get("X-Api-Key") != "" || got.Header.Get("X-Llmscope-User") != "alice" {
		t.Errorf("client key in X-Api-Key after a Basic Authorization: %v", got.Header)
	}
	serve(h, req("POST", "/v1beta/models/g:generateContent?key=provider"))
	if next.count() != 4 {
		t.Error("Gemini ?key= refused")
	}
	wantError(t, serve(h, req("POST", "/v1/chat/completions")), 401, "invalid_request_error", "invalid_api_key")

	// Without client keys, the provider key is all there is.
	next = &recorder{}
	h = newGuard(t, Config{PassProviderKeys: true}).Wrap(next)
	serve(h, req("POST", "/v1/chat/completions", "Authorization", provider))
	if next.last(t).Header.Get("Authorization") != provider {
		t.Error("provider key not passed")
	}
	wantError(t, serve(h, req("POST", "/v1/chat/completions")), 401, "invalid_request_error", "invalid_api_key")
}

func TestGatewayOpenWithoutKeys(t *testing.T) {
	next := &recorder{}
	h := newGuard(t, Config{AdminTokenHash: adminHash()}).Wrap(next)
	r := req("POST", "/v1/chat/completions", "Authorization", "Bearer anything", "X-Llmscope-User", "dave")
	if w := serve(h, r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if got := next.last(t); got != r {
		t.Error("request replaced though no keys are configured")
	}
}

func TestInflightCap(t *testing.T) {
	const n = 3
	entered := make(chan struct{})
	release := make(chan struct{})
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			entered <- struct{}{}
			<-release
		}
	})
	g := newGuard(t, Config{MaxInflight: n})
	h := g.Wrap(next)
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() { codes <- serve(h, req("POST", "/v1/chat/completions")).Code })
	}
	for range n {
		<-entered
	}
	if got := g.Inflight(); got != n {
		t.Errorf("Inflight() = %d, want %d", got, n)
	}
	w := serve(h, req("GET", "/api/calls"))
	wantError(t, w, 503, "server_error", "overloaded")
	if w.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "3 requests") {
		t.Errorf("message does not name the limit: %s", w.Body)
	}
	if w := serve(h, req("GET", "/healthz")); w.Code != 200 {
		t.Errorf("/healthz at the cap: status %d", w.Code)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("held request: status %d", c)
		}
	}
	if got := g.Inflight(); got != 0 {
		t.Errorf("Inflight() after = %d", got)
	}
	// The slots are free again.
	go func() { <-entered }()
	if w := serve(h, req("GET", "/api/calls")); w.Code != 200 {
		t.Errorf("after the held requests: status %d", w.Code)
	}
}
