package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

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
		// The client asks for usage itself: no injection, the same upstream work on every path.
		"stream_usage": `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	for _, kind := range []string{"nonstream", "stream", "stream_usage"} {
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

// BenchmarkStreamTTFT measures the client-side time to the first content
// event of a streamed chat through the gateway, once with usage reported by
// the upstream and once without (the gateway then estimates it with the
// tokenizer). The estimate runs after the stream ends, so ttft-ns must not
// differ between the two. Each iteration waits (untimed) until the call is
// recorded, so an estimate never competes with the next request for CPU.
func BenchmarkStreamTTFT(b *testing.B) {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	recorded := make(chan *llmscope.Call, 1)
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: llmscope.SinkFunc(func(c *llmscope.Call) { recorded <- c })})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("Tell me about observability. ", 40) + `"}]}`)
	for _, c := range []struct{ name, target, fault string }{
		{"direct/usage=reported", up.URL, ""}, {"direct/usage=none", up.URL, "no_usage"},
		{"gateway/usage=reported", front.URL, ""}, {"gateway/usage=estimated", front.URL, "no_usage"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ttft time.Duration
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, c.target+"/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if c.fault != "" {
					req.Header.Set("X-Sim-Fault", c.fault)
				}
				start := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				r := bufio.NewReader(resp.Body)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						b.Fatal(err)
					}
					if strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
						ttft += time.Since(start)
						break
					}
				}
				_, _ = io.Copy(io.Discard, r)
				resp.Body.Close()
				if c.target == front.URL {
					b.StopTimer()
					if call := <-recorded; c.fault != "" && call.Usage.Source != llmscope.UsageEstimated {
						b.Fatalf("usage source %q", call.Usage.Source)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(ttft.Nanoseconds())/float64(b.N), "ttft-ns")
		})
	}
}
