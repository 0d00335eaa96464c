package gateway_test

import (
	"encoding/json"
	"strings"
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
