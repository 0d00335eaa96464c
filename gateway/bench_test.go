package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/gateway"
	"llmscope/openai"
	"llmscope/pricing"
	"llmscope/prom"
	"llmscope/sim"
)

// benchBodies are the request kinds of the proxy benchmarks.
var benchBodies = map[string]string{
	"nonstream": `{"model":"gpt-4o-mini","temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
	"stream":    `{"model":"gpt-4o-mini","stream":true,"temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
	// The client asks for usage itself: no injection, the same upstream work on every path.
	"stream_usage": `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"messages":[{"role":"user","content":"Say something short."}]}`,
}

var benchKinds = []string{"nonstream", "stream", "stream_usage", "nonstream_50k", "stream_50k"}

func init() {
	// Chat bodies with a 50 KB user message of prose (as the load harness
	// sends): what the gateway does per byte of the request shows here.
	prompt := benchProse(50 << 10)
	benchBodies["nonstream_50k"] = `{"messages":[{"content":"You are a helpful assistant.","role":"system"},{"content":"` +
		prompt + `","role":"user"}],"model":"gpt-4o-mini","temperature":0.7}`
	benchBodies["stream_50k"] = `{"messages":[{"content":"You are a helpful assistant.","role":"system"},{"content":"` +
		prompt + `","role":"user"}],"model":"gpt-4o-mini","stream":true,"temperature":0.7}`
}

// benchProse returns n bytes of deterministic English-like text.
func benchProse(n int) string {
	words := strings.Fields(`the quick brown fox jumps over a lazy dog while seven
	engineers measure latency of every request through an observability
	gateway and count tokens cost errors time to first token in a table`)
	var b strings.Builder
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[x%uint32(len(words))])
	}
	return b.String()[:n]
}

// discardWriter is a store that accepts every batch and keeps nothing.
type discardWriter struct{}

func (discardWriter) Write(context.Context, []*llmscope.Call) error { return nil }

// benchTarget is one server a benchmark sends requests to.
type benchTarget struct{ name, url string }

// benchTargets starts a zero-latency simulator and the servers in front of
// it: "direct" (the simulator itself), "reverseproxy" (a bare
// httputil.ReverseProxy that records nothing: the floor of one extra hop),
// "gateway" (llmscope's gateway with a sink that drops every call) and
// "recorded" (the gateway as serve wires it: Prometheus metrics, pricing and
// a Recorder queueing to a store that discards the batches).
//
// The reverse proxy sends with the gateway's default transport, so both keep
// as many connections alive as their clients use (http.DefaultTransport
// keeps 2 per host, and is shared with every httptest.Server's Close).
func benchTargets(b *testing.B) []benchTarget {
	up := httptest.NewServer(sim.New(sim.Config{}))
	b.Cleanup(up.Close)
	gw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Sink: llmscope.SinkFunc(func(*llmscope.Call) {})})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(gw)
	b.Cleanup(front.Close)

	var rec *llmscope.Recorder
	metrics := prom.New(func() int { return rec.QueueDepth() })
	rec = llmscope.NewRecorder(discardWriter{}, llmscope.RecorderConfig{OnDrop: metrics.Dropped})
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	rgw, err := gateway.New(gateway.Config{Upstream: up.URL + "/v1", Pricer: pricing.Default(),
		OnCostUnknown: func(string) { metrics.CostUnknown() }, Sink: llmscope.Sinks{metrics, rec}})
	if err != nil {
		b.Fatal(err)
	}
	recorded := httptest.NewServer(rgw)
	b.Cleanup(recorded.Close)
	b.Cleanup(func() {
		if n := rec.Dropped(); n > 0 {
			b.Errorf("recorder dropped %d calls", n)
		}
	})

	upURL, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.FlushInterval = -1
	rp.Transport = gateway.NewTransport()
	bare := httptest.NewServer(rp)
	b.Cleanup(bare.Close)
	return []benchTarget{{"direct", up.URL}, {"reverseproxy", bare.URL}, {"gateway", front.URL}, {"recorded", recorded.URL}}
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

// fetch sends one chat request and reads the answer to its end.
func fetch(hc *http.Client, target string, body []byte) error {
	resp, err := hc.Post(target+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// reportPercentiles reports the 50th and 99th percentile of d as metrics
// named prefix+"p50-ns" and prefix+"p99-ns".
func reportPercentiles(b *testing.B, prefix string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	b.ReportMetric(pct(d, 0.50), prefix+"p50-ns")
	b.ReportMetric(pct(d, 0.99), prefix+"p99-ns")
}

// BenchmarkProxy measures one request through the gateway against the same
// request sent to the simulator directly, over loopback HTTP, with a
// zero-latency simulator, one client at a time. The difference is what the
// gateway adds; allocs/op counts client, gateway and simulator together (all
// run in this process). p50-ns and p99-ns are percentiles of the requests'
// own durations.
func BenchmarkProxy(b *testing.B) {
	targets := benchTargets(b)
	hc := benchClient()
	for _, kind := range benchKinds {
		for _, target := range targets {
			b.Run(kind+"/"+target.name, func(b *testing.B) {
				body := []byte(benchBodies[kind])
				lat := make([]time.Duration, 0, 4096)
				b.ReportAllocs()
				for b.Loop() {
					t := time.Now()
					if err := fetch(hc, target.url, body); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t))
				}
				reportPercentiles(b, "", lat)
			})
		}
	}
}

// BenchmarkProxyParallel measures throughput with 16 concurrent clients
// (ns/op is the inverse of it; req/s says it directly) for the same targets
// as BenchmarkProxy.
func BenchmarkProxyParallel(b *testing.B) {
	const clients = 16
	targets := benchTargets(b)
	hc := benchClient()
	par := (clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	for _, kind := range benchKinds {
		for _, target := range targets {
			b.Run(kind+"/"+target.name, func(b *testing.B) {
				body := []byte(benchBodies[kind])
				b.ReportAllocs()
				b.SetParallelism(par)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := fetch(hc, target.url, body); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			})
		}
	}
}

// BenchmarkProxyLatency sends each request to every target in turn (the
// first target rotating), so that the noise of a shared machine falls on all
// of them alike, and reports percentiles per target: latency for every kind,
// and for streams the time to the first content event too. The ratios are
// the targets' own figures: added-p50-x and added-p99-x are the latency the
// recorded gateway adds over the direct call divided by what the bare
// reverse proxy adds; ttft-added-us is how much more time to first content
// the recorded gateway adds than the reverse proxy, at the median.
func BenchmarkProxyLatency(b *testing.B) {
	targets := benchTargets(b)
	hc := benchClient()
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			body := []byte(benchBodies[kind])
			lat := make([][]time.Duration, len(targets))
			ttft := make([][]time.Duration, len(targets))
			n := 0
			for b.Loop() {
				for j := range targets {
					i := (n + j) % len(targets)
					start := time.Now()
					first, err := fetchFirst(hc, targets[i].url, body)
					if err != nil {
						b.Fatalf("%s: %v", targets[i].name, err)
					}
					lat[i] = append(lat[i], time.Since(start))
					ttft[i] = append(ttft[i], first)
				}
				n++
			}
			p50 := func(d []time.Duration) float64 { return pct(d, 0.50) }
			p99 := func(d []time.Duration) float64 { return pct(d, 0.99) }
			for i, t := range targets {
				b.ReportMetric(p50(lat[i]), t.name+"-p50-ns")
				b.ReportMetric(p99(lat[i]), t.name+"-p99-ns")
			}
			direct, rp, rec := 0, 1, 3
			b.ReportMetric((p50(lat[rec])-p50(lat[direct]))/(p50(lat[rp])-p50(lat[direct])), "added-p50-x")
			b.ReportMetric((p99(lat[rec])-p99(lat[direct]))/(p99(lat[rp])-p99(lat[direct])), "added-p99-x")
			if !strings.HasPrefix(kind, "nonstream") {
				for i, t := range targets {
					b.ReportMetric(p50(ttft[i]), t.name+"-ttft-p50-ns")
				}
				b.ReportMetric((p50(ttft[rec])-p50(ttft[rp]))/1e3, "ttft-added-us")
			}
		})
	}
}

// fetchFirst is fetch that also returns the time to the first content event
// of a stream (to the end of the answer for other answers).
func fetchFirst(hc *http.Client, target string, body []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := hc.Post(target+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var first time.Duration
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	for {
		line, err := r.ReadSlice('\n')
		if first == 0 && bytes.Contains(line, []byte(`"content":"`)) && !bytes.Contains(line, []byte(`"content":""`)) {
			first = time.Since(start)
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return 0, err
		}
	}
	if first == 0 {
		first = time.Since(start)
	}
	return first, nil
}

// pct returns the q-quantile of d in nanoseconds (d is sorted in place).
func pct(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(q*float64(len(d))))].Nanoseconds())
}

// BenchmarkProxyThroughput is BenchmarkProxyParallel with the targets
// taking turns: each iteration sends every target 128 requests from 16
// concurrent clients, the first target rotating, so the noise of a shared
// machine falls on all of them alike. It reports each target's req/s and
// throughput-x, the recorded gateway's throughput over the reverse proxy's.
func BenchmarkProxyThroughput(b *testing.B) {
	const clients, turn = 16, 128
	targets := benchTargets(b)
	hc := benchClient()
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			body := []byte(benchBodies[kind])
			busy := make([]time.Duration, len(targets))
			n := 0
			for b.Loop() {
				for j := range targets {
					i := (n + j) % len(targets)
					var next atomic.Int64
					var failed atomic.Value
					var wg sync.WaitGroup
					start := time.Now()
					for range clients {
						wg.Go(func() {
							for next.Add(1) <= turn {
								if err := fetch(hc, targets[i].url, body); err != nil {
									failed.Store(err)
									return
								}
							}
						})
					}
					wg.Wait()
					busy[i] += time.Since(start)
					if err := failed.Load(); err != nil {
						b.Fatalf("%s: %v", targets[i].name, err)
					}
				}
				n++
			}
			rps := make([]float64, len(targets))
			for i, t := range targets {
				rps[i] = float64(n*turn) / busy[i].Seconds()
				b.ReportMetric(rps[i], t.name+"-req/s")
			}
			b.ReportMetric(rps[3]/rps[1], "throughput-x")
		})
	}
}

// BenchmarkStreamTTFT measures the client-side time to the first content
// event of a streamed chat through the gateway, once with usage reported by
// the upstream and once without (the gateway then estimates it with the
// tokenizer). The estimate runs after the stream ends, so ttft-ns must not
// differ between the two. Each iteration waits (untimed) until the call is
// recorded, so an estimate never competes with the next request for CPU.
// The reverseproxy cases are the floor of one extra hop.
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
	upURL, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(upURL)
	rp.FlushInterval = -1
	bare := httptest.NewServer(rp)
	defer bare.Close()
	hc := benchClient()
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("Tell me about observability. ", 40) + `"}]}`)
	for _, c := range []struct{ name, target, fault string }{
		{"direct/usage=reported", up.URL, ""}, {"direct/usage=none", up.URL, "no_usage"},
		{"reverseproxy/usage=reported", bare.URL, ""}, {"reverseproxy/usage=none", bare.URL, "no_usage"},
		{"gateway/usage=reported", front.URL, ""}, {"gateway/usage=estimated", front.URL, "no_usage"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var ttft time.Duration
			lat := make([]time.Duration, 0, 4096)
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
						d := time.Since(start)
						ttft += d
						lat = append(lat, d)
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
			reportPercentiles(b, "ttft-", lat)
		})
	}
}

// cannedUpstream answers every request with the simulator's answer to the
// same body, recorded once: an in-memory upstream, so a benchmark of the
// handler alone measures CPU, not the network.
type cannedUpstream struct {
	answers map[string]canned // by request body
}

type canned struct {
	header http.Header
	body   []byte
}

func newCannedUpstream(b testing.TB, bodies ...string) *cannedUpstream {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	c := &cannedUpstream{answers: map[string]canned{}}
	for _, body := range bodies {
		resp, err := http.Post(up.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		c.answers[body] = canned{resp.Header, got}
	}
	return c
}

func (c *cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	// A RoundTripper closes the request body, as http.Transport does: the
	// gateway frees a body's buffer when its transport has closed it.
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	a, ok := c.answers[string(body)]
	if !ok {
		return nil, fmt.Errorf("no canned answer for %s", body)
	}
	return &http.Response{StatusCode: 200, Header: a.header.Clone(), Body: io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: -1, Request: r}, nil
}

// discardResponse is a ResponseWriter that flushes into nothing.
type discardResponse struct{ h http.Header }

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}
func (d *discardResponse) Flush()                      {}

// BenchmarkHandler measures the CPU cost of the handlers alone: the
// gateway (recording as serve does) and a bare httputil.ReverseProxy, each
// serving a request from memory against an in-memory upstream that replays
// the simulator's answers. No sockets, so the figures are steadier than
// BenchmarkProxy's on a busy machine; allocs/op are the handler's own.
func BenchmarkHandler(b *testing.B) {
	bodies := []string{}
	for _, kind := range benchKinds {
		bodies = append(bodies, benchBodies[kind])
		if strings.Contains(benchBodies[kind], `"stream":true`) && !strings.Contains(benchBodies[kind], "include_usage") {
			injected, err := openai.InjectIncludeUsage([]byte(benchBodies[kind]))
			if err != nil {
				b.Fatal(err)
			}
			bodies = append(bodies, string(injected))
		}
	}
	up := newCannedUpstream(b, bodies...)
	var rec *llmscope.Recorder
	metrics := prom.New(func() int { return rec.QueueDepth() })
	rec = llmscope.NewRecorder(discardWriter{}, llmscope.RecorderConfig{OnDrop: metrics.Dropped})
	defer rec.Close(context.Background())
	gw, err := gateway.New(gateway.Config{Upstream: "http://upstream.invalid/v1", Transport: up, Pricer: pricing.Default(),
		OnCostUnknown: func(string) { metrics.CostUnknown() }, Sink: llmscope.Sinks{metrics, rec}})
	if err != nil {
		b.Fatal(err)
	}
	target, _ := url.Parse("http://upstream.invalid")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.Transport = up
	for _, kind := range benchKinds {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"reverseproxy", rp}, {"gateway", gw}} {
			b.Run(kind+"/"+h.name, func(b *testing.B) {
				body := benchBodies[kind]
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					h.h.ServeHTTP(&discardResponse{h: http.Header{}}, r)
				}
			})
		}
	}
}
