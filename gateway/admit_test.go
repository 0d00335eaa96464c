package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/pricing"
	"llmscope/sim"
)

// fakeAdmitter refuses requests whose model is "refuse-me" and admits
// the others with a ticket that counts its settlements.
type fakeAdmitter struct {
	mu      sync.Mutex
	seen    []string // the models asked about
	bodies  int      // requests that came with their body
	done    []*llmscope.Call
	doneCnt atomic.Int64
}

type fakeTicket struct{ a *fakeAdmitter }

func (t fakeTicket) Header(h http.Header) { h.Set("x-ratelimit-limit-requests", "77") }
func (t fakeTicket) Done(c *llmscope.Call) {
	t.a.doneCnt.Add(1)
	t.a.mu.Lock()
	t.a.done = append(t.a.done, c)
	t.a.mu.Unlock()
}

func (a *fakeAdmitter) Admit(_ context.Context, ad *gateway.Admission, h http.Header) (gateway.Ticket, *gateway.Refusal) {
	a.mu.Lock()
	a.seen = append(a.seen, ad.Call.RequestModel)
	if len(ad.Body) > 0 {
		a.bodies++
	}
	a.mu.Unlock()
	h.Set("x-ratelimit-remaining-requests", "5")
	if ad.Call.RequestModel == "refuse-me" {
		return nil, &gateway.Refusal{Status: 429, Type: "budget_exceeded", Code: "budget_exceeded", Message: "budget b spent",
			Header: http.Header{"Retry-After": {"30"}, "X-Should-Retry": {"false"}}}
	}
	return fakeTicket{a}, nil
}

// The admission hook sees each request with its model and body before it
// is forwarded; a refusal is answered in the request's API error shape
// (OpenAI's, Anthropic's) with the hook's headers, recorded with its
// status and code, and never forwarded; an admitted request's ticket sets
// its headers over the upstream's and is settled once with the recorded
// call, cost included.
func TestAdmit(t *testing.T) {
	var upstream atomic.Int64
	s := sim.New(sim.Config{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstream.Add(1)
		w.Header().Set("x-ratelimit-limit-requests", "10000") // the upstream's own figure
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	adm := &fakeAdmitter{}
	sink := newSink()
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: sink, Pricer: pricing.Default(), Admit: adm,
		Upstreams: []gateway.ProviderUpstream{{API: gateway.Anthropic(), URL: up.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	post := func(path, body string) (*http.Response, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for _, tc := range []struct{ path, body, shape string }{
		{"/v1/chat/completions", `{"model":"refuse-me","messages":[{"role":"user","content":"hi"}]}`, `"error":{"message":"budget b spent","type":"budget_exceeded"`},
		{"/v1/messages", `{"model":"refuse-me","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, `"type":"error"`},
	} {
		resp, body := post(tc.path, tc.body)
		if resp.StatusCode != 429 || !strings.Contains(body, tc.shape) || !strings.Contains(body, "budget b spent") {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") != "30" || resp.Header.Get("X-Should-Retry") != "false" || resp.Header.Get("x-ratelimit-remaining-requests") != "5" {
			t.Errorf("%s: headers %v", tc.path, resp.Header)
		}
		c := sink.one(t)
		if c.Status != 429 || c.ErrorType != "budget_exceeded" || c.RequestModel != "refuse-me" {
			t.Errorf("%s: recorded %d %q %q", tc.path, c.Status, c.ErrorType, c.RequestModel)
		}
	}
	if n := upstream.Load(); n != 0 {
		t.Fatalf("refused requests reached the upstream: %d", n)
	}
	for _, body := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
	} {
		resp, b := post("/v1/chat/completions", body)
		if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-requests") != "77" || resp.Header.Get("x-ratelimit-remaining-requests") != "5" {
			t.Errorf("admitted: %d %v %s", resp.StatusCode, resp.Header, b)
		}
		sink.one(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if adm.doneCnt.Load() != 2 {
		t.Fatalf("tickets settled %d times, want 2", adm.doneCnt.Load())
	}
	for _, c := range adm.done {
		if c.Cost == nil || c.Cost.TotalUSD <= 0 || c.Usage.TotalTokens == 0 {
			c, _ := json.Marshal(c)
			t.Errorf("ticket settled before cost and usage were known: %s", c)
		}
	}
	if adm.bodies != 4 || len(adm.seen) != 4 {
		t.Errorf("admitter saw %v, %d with a body", adm.seen, adm.bodies)
	}
}
