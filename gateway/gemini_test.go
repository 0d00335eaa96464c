package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

// Gemini calls go to the Gemini upstream and are recorded with the model
// of their path; a key in ?key= is replaced by the server's x-goog-api-key
// and appears in no record.
func TestGeminiThroughGateway(t *testing.T) {
	var mu sync.Mutex
	var upURL string
	var upHeader http.Header
	s := sim.New(sim.Config{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upURL, upHeader = r.URL.String(), r.Header.Clone()
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	defer up.Close()
	sk := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: sk, Capture: true,
		Upstreams: []gateway.ProviderUpstream{{API: gateway.Gemini(), URL: up.URL, APIKey: "server-goog-key"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := httptest.NewServer(gw)
	defer g.Close()
	body := `{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"temperature":0.3,"maxOutputTokens":64}}`
	for _, c := range []struct {
		path   string
		stream bool
	}{
		{"/v1beta/models/gemini-2.5-flash:generateContent?key=CLIENT-SECRET-KEY", false},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=CLIENT-SECRET-KEY", true},
	} {
		status, _, got := post(t, g.URL+c.path, body, nil)
		direct, _, want := post(t, up.URL+strings.Replace(c.path, "key=CLIENT-SECRET-KEY", "key=x", 1), body, nil)
		if status != 200 || direct != 200 || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d %s\nwant %d %s", c.path, status, got, direct, want)
		}
		call := sk.one(t)
		// The direct request above went around the gateway: upURL is the
		// gateway's only when read before it; check the recorded call.
		b, _ := json.Marshal(call)
		if bytes.Contains(b, []byte("CLIENT-SECRET-KEY")) || bytes.Contains(b, []byte("server-goog-key")) {
			t.Fatalf("a key in the record: %s", b)
		}
		if call.Provider != "gcp.gemini" || call.Operation != llmscope.OpChat || call.RequestModel != "gemini-2.5-flash" ||
			call.Stream != c.stream || call.Usage.Source != llmscope.UsageReported || call.Usage.InputTokens == 0 ||
			call.Params.Temperature == nil || call.Endpoint != strings.Split(c.path, "?")[0] {
			t.Errorf("recorded %s", b)
		}
	}
	// What the gateway sent: the server's key in its header, no ?key=.
	status, _, _ := post(t, g.URL+"/v1beta/models/gemini-2.5-flash:generateContent?key=CLIENT-SECRET-KEY", body, nil)
	sk.one(t)
	mu.Lock()
	defer mu.Unlock()
	if status != 200 || strings.Contains(upURL, "CLIENT-SECRET-KEY") || upHeader.Get("X-Goog-Api-Key") != "server-goog-key" {
		t.Errorf("upstream got %s %v", upURL, upHeader)
	}
	// llmscope's own errors come in Gemini's shape.
	status, _, got := post(t, g.URL+"/v1beta/models/gemini-2.5-flash:generateContent/%2e%2e/x", body, nil)
	var e struct {
		Error struct {
			Code   int
			Status string
		}
	}
	if err := json.Unmarshal(got, &e); err != nil || status != 400 || e.Error.Code != 400 || e.Error.Status == "" {
		t.Errorf("%d %s", status, got)
	}
	sk.one(t)
}

// Gemini's v1 model methods (google-genai's default) are Gemini's; OpenAI's
// /v1/models paths, fine-tuned ids with colons included, stay OpenAI's.
func TestGeminiV1Match(t *testing.T) {
	api := gateway.Gemini()
	for path, want := range map[string]bool{
		"/v1/models/gemini-2.5-flash:generateContent":       true,
		"/v1/models/gemini-2.5-flash:streamGenerateContent": true,
		"/v1/models/text-embedding-004:embedContent":        true,
		"/v1beta/models/gemini-2.5-flash:countTokens":       true,
		"/v1/models":             false,
		"/v1/models/gpt-4o-mini": false,
		"/v1/models/ft:gpt-4o-mini:org:custom:abc123": false,
		"/v1/chat/completions":                        false,
		"/v1/messages":                                false,
	} {
		if got := api.Match(path); got != want {
			t.Errorf("Match(%s) = %v, want %v", path, got, want)
		}
	}
}
