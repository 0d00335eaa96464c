package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/route"
	"llmscope/sim"
)

// providerStreams are the streamed requests BenchmarkProviderStream
// compares: the same short prompt in OpenAI's and Anthropic's wire format.
var providerStreams = []struct{ name, path, body string }{
	{"openai", "/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something short."}]}`},
	{"anthropic", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Say something short."}]}`},
}

// providerGateway returns a gateway recording as serve does (metrics,
// pricing, a Recorder to a store that discards) with both its OpenAI and
// Anthropic upstreams at base (the simulator's root) or transport.
func providerGateway(b *testing.B, base string, transport http.RoundTripper) *gateway.Gateway {
	var rec *llmscope.Recorder
	metrics := prom.New(func() int { return rec.QueueDepth() })
	rec = llmscope.NewRecorder(discardWriter{}, llmscope.RecorderConfig{OnDrop: metrics.Dropped})
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	gw, err := gateway.New(gateway.Config{Upstream: base + "/v1", Transport: transport, Pricer: pricing.Default(),
		OnCostUnknown: func(string) { metrics.CostUnknown() }, Sink: llmscope.Sinks{metrics, rec},
		Upstreams: []gateway.ProviderUpstream{{API: gateway.Anthropic(), URL: base}}})
	if err != nil {
		b.Fatal(err)
	}
	return gw
}

// BenchmarkProviderStream measures what the gateway adds to a streamed
// answer, OpenAI's and Anthropic's, against the same in-process simulator
// over loopback HTTP, one client at a time: each iteration sends the
// request directly and through the gateway, in turn. direct-p50-ns and
// gateway-p50-ns are the medians of each; added-p50-ns their difference.
// ns/op and allocs/op cover both requests (client, gateway and simulator
// all run in this process); BenchmarkProviderHandler has the gateway's own.
func BenchmarkProviderStream(b *testing.B) {
	s := httptest.NewServer(sim.New(sim.Config{}))
	defer s.Close()
	g := httptest.NewServer(providerGateway(b, s.URL, nil))
	defer g.Close()
	hc := benchClient()
	for _, p := range providerStreams {
		b.Run(p.name, func(b *testing.B) {
			var direct, through []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range []struct {
					base string
					d    *[]time.Duration
				}{{s.URL, &direct}, {g.URL, &through}} {
					start := time.Now()
					if err := post1(hc, t.base+p.path, p.body); err != nil {
						b.Fatal(err)
					}
					*t.d = append(*t.d, time.Since(start))
				}
			}
			d, gw := pct(direct, 0.5), pct(through, 0.5)
			b.ReportMetric(d, "direct-p50-ns")
			b.ReportMetric(gw, "gateway-p50-ns")
			b.ReportMetric(gw-d, "added-p50-ns")
		})
	}
}

// post1 sends one request with Anthropic's version header (OpenAI's
// simulator ignores it) and reads the answer to its end.
func post1(hc *http.Client, url, body string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return err
}

// replayTransport answers each request with the simulator's recorded
// answer to the same path and body, from memory.
type replayTransport map[string]canned

func (t replayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	a, ok := t[r.URL.Path+" "+string(body)]
	if !ok {
		return nil, fmt.Errorf("no answer for %s %s", r.URL.Path, body)
	}
	return &http.Response{StatusCode: 200, Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: -1, Request: r}, nil
}

// BenchmarkProviderHandler measures the CPU and allocations of the gateway
// handler alone for an OpenAI and an Anthropic stream, each replayed from
// memory (the simulator's answer), with no sockets.
func BenchmarkProviderHandler(b *testing.B) {
	s := httptest.NewServer(sim.New(sim.Config{}))
	answers := replayTransport{}
	for _, p := range providerStreams {
		req, _ := http.NewRequest(http.MethodPost, s.URL+p.path, strings.NewReader(p.body))
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers[p.path+" "+p.body] = canned{resp.Header, got}
	}
	s.Close()
	gw := providerGateway(b, "http://upstream.invalid", answers)
	for _, p := range providerStreams {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, p.path, strings.NewReader(p.body))
				r.Header.Set("Content-Type", "application/json")
				w := &statusResponse{discardResponse: discardResponse{h: http.Header{}}}
				gw.ServeHTTP(w, r)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

// statusResponse is a discardResponse that keeps the status.
type statusResponse struct {
	discardResponse
	code int
}

func (w *statusResponse) WriteHeader(code int) { w.code = code }

// BenchmarkRoutedCall measures what routing adds: the same OpenAI request
// (whole, and streamed) directly to the simulator, through a gateway with
// one upstream, and through a gateway whose route spreads the model over 3
// deployments (the same simulator), in turn, one client at a time.
// plain-added-p50-ns and routed-added-p50-ns are each gateway's median
// minus the direct median; routed/plain their ratio.
func BenchmarkRoutedCall(b *testing.B) {
	s := httptest.NewServer(sim.New(sim.Config{}))
	defer s.Close()
	var deps []route.DeploymentConfig
	for i := range 3 {
		deps = append(deps, route.DeploymentConfig{Name: fmt.Sprintf("d%d", i), API: route.APIOpenAI, URL: s.URL + "/v1", KeyEnv: "BENCH_KEY"})
	}
	rt, err := route.New(route.Config{Routes: []route.RouteConfig{{Name: "r", Match: "gpt-4o*", Deployments: deps}}},
		route.Options{Getenv: func(string) string { return "bench-key" }})
	if err != nil {
		b.Fatal(err)
	}
	routedGW, err := gateway.New(gateway.Config{Upstream: s.URL + "/v1", Router: rt, Pricer: pricing.Default(), Sink: discardSink{}})
	if err != nil {
		b.Fatal(err)
	}
	routed := httptest.NewServer(routedGW)
	defer routed.Close()
	plainGW, err := gateway.New(gateway.Config{Upstream: s.URL + "/v1", Pricer: pricing.Default(), Sink: discardSink{}})
	if err != nil {
		b.Fatal(err)
	}
	plain := httptest.NewServer(plainGW)
	defer plain.Close()
	hc := benchClient()
	for _, p := range []struct{ name, body string }{
		{"whole", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something short."}]}`},
		{"stream", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say something short."}]}`},
	} {
		b.Run(p.name, func(b *testing.B) {
			var direct, viaPlain, viaRoute []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range []struct {
					base string
					d    *[]time.Duration
				}{{s.URL, &direct}, {plain.URL, &viaPlain}, {routed.URL, &viaRoute}} {
					start := time.Now()
					if err := post1(hc, t.base+"/v1/chat/completions", p.body); err != nil {
						b.Fatal(err)
					}
					*t.d = append(*t.d, time.Since(start))
				}
			}
			d := pct(direct, 0.5)
			pa, ra := pct(viaPlain, 0.5)-d, pct(viaRoute, 0.5)-d
			b.ReportMetric(pa, "plain-added-p50-ns")
			b.ReportMetric(ra, "routed-added-p50-ns")
			b.ReportMetric(ra/pa, "routed/plain")
		})
	}
}

// discardSink drops calls.
type discardSink struct{}

func (discardSink) Record(*llmscope.Call) {}
