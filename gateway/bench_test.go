package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"llmscope"
	"llmscope/gateway"
	"llmscope/sim"
)

// BenchmarkProxy measures one request through the gateway against the same
// request sent to the simulator directly, over loopback HTTP, with a
// zero-latency simulator. The difference is what the gateway adds; allocs/op
// counts client, gateway and simulator together (all run in this process).
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	sink := llmscope.SinkFunc(func(*llmscope.Call) {})
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	// The floor: a bare reverse proxy that records nothing.
	upURL, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.FlushInterval = -1
	bare := httptest.NewServer(rp)
	defer bare.Close()
	bodies := map[string]string{
		"nonstream": `{"model":"gpt-4o-mini","temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
		"stream":    `{"model":"gpt-4o-mini","stream":true,"temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	for _, kind := range []string{"nonstream", "stream"} {
		for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"reverseproxy", bare.URL}, {"gateway", front.URL}} {
			b.Run(kind+"/"+target.name, func(b *testing.B) {
				body := []byte(bodies[kind])
				b.ReportAllocs()
				for b.Loop() {
					resp, err := hc.Post(target.url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		}
	}
}
