package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope/gateway"
	"llmscope/route"
	"llmscope/sim"
)

// A deployment's model renames the model upstream; the call keeps the
// model the client asked for, and names the deployment that answered.
func TestRouteRenamesModel(t *testing.T) {
	e := newEnv(t, sim.Config{}, func(c *gateway.Config) {
		rt, err := route.New(route.Config{Routes: []route.RouteConfig{{Name: "r", Match: "alias-*", Deployments: []route.DeploymentConfig{
			{Name: "dep", API: route.APIOpenAI, URL: c.Upstream, KeyEnv: "K", Model: "gpt-4o-mini"},
		}}}}, route.Options{Getenv: func(string) string { return "deployment-key" }})
		if err != nil {
			t.Fatal(err)
		}
		c.Router = rt
	})
	status, _, body := post(t, e.gw.URL+"/v1/chat/completions", `{"model":"alias-small","messages":[{"role":"user","content":"hi"}]}`, nil)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	h, sent := e.upstream.last()
	var up struct{ Model string }
	if err := json.Unmarshal(sent, &up); err != nil || up.Model != "gpt-4o-mini" || h.Get("Authorization") != "Bearer deployment-key" {
		t.Errorf("upstream got model %q, Authorization %q (%v)", up.Model, h.Get("Authorization"), err)
	}
	c := e.sink.one(t)
	if c.RequestModel != "alias-small" || c.Upstream != "dep" || c.Attempts != 1 || !strings.HasPrefix(c.ResponseModel, "gpt-4o-mini") {
		t.Errorf("recorded request model %q upstream %q attempts %d response model %q", c.RequestModel, c.Upstream, c.Attempts, c.ResponseModel)
	}
	gw := e.gw.Config.Handler.(*gateway.Gateway)
	for i := 0; gw.BufferedBytes() != 0 && i < 200; i++ {
		time.Sleep(10 * time.Millisecond) // the handler frees the body after the answer
	}
	if n := gw.BufferedBytes(); n != 0 {
		t.Errorf("%d bytes of bodies still charged after the call", n)
	}
}

// A Gemini deployment's model replaces the model in the path; the client's
// ?key= never reaches the deployment.
func TestRouteRenamesGeminiModel(t *testing.T) {
	var mu sync.Mutex
	var gotURL, gotKey string
	s := sim.New(sim.Config{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotURL, gotKey = r.URL.String(), r.Header.Get("X-Goog-Api-Key")
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	rt, err := route.New(route.Config{Routes: []route.RouteConfig{{Name: "g", Match: "alias-*", Deployments: []route.DeploymentConfig{
		{Name: "gem", API: route.APIGemini, URL: up.URL, KeyEnv: "K", Model: "gemini-2.5-flash"},
	}}}}, route.Options{Getenv: func(string) string { return "deployment-key" }})
	if err != nil {
		t.Fatal(err)
	}
	sink := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Router: rt, Sink: sink,
		Upstreams: []gateway.ProviderUpstream{{API: gateway.Gemini(), URL: up.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	status, _, body := post(t, srv.URL+"/v1beta/models/alias-fast:generateContent?key=client-secret",
		`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, nil)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotURL != "/v1beta/models/gemini-2.5-flash:generateContent" || gotKey != "deployment-key" {
		t.Errorf("deployment got %q with key %q", gotURL, gotKey)
	}
	if c := sink.one(t); c.Upstream != "gem" || c.RequestModel != "alias-fast" {
		t.Errorf("recorded upstream %q model %q", c.Upstream, c.RequestModel)
	}
}
