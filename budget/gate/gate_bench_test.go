package gate_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"llmscope"
	"llmscope/budget"
	"llmscope/budget/gate"
	"llmscope/gateway"
	"llmscope/pricing"
	"llmscope/sim"
)

// replay is an in-memory upstream answering every request with one
// recorded answer of the simulator, so the handler's CPU is measured, not
// the network.
type replay struct {
	header http.Header
	body   []byte
}

func newReplay(b *testing.B, body string) *replay {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	resp, err := http.Post(up.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return &replay{resp.Header, got}
}

func (r *replay) RoundTrip(req *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, req.Body)
	req.Body.Close()
	return &http.Response{StatusCode: 200, Header: r.header.Clone(), Body: io.NopCloser(bytes.NewReader(r.body)), ContentLength: -1, Request: req}, nil
}

type discardSink struct{}

func (discardSink) Record(*llmscope.Call) {}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// BenchmarkGateHandler measures the latency the checks add to the gateway
// handler on a warm key: the same gateway with and without Config.Admit
// (a Gate with a key, a user and a team budget on a MemLedger, key and user
// rate limits in requests and tokens on a MemCounter), serving the same
// chat request from memory, alternately, so that drift hits both alike.
// off-p50-ns and on-p50-ns are the handler's latency percentiles,
// added-p50-ns their difference (the goal: ≤ 20 µs).
func BenchmarkGateHandler(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "chat"
		body := `{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Name three colours of the rainbow and say why the sky is blue in one sentence."}]}`
		if stream {
			name = "chat-stream"
			body = strings.Replace(body, `"max_tokens":64`, `"max_tokens":64,"stream":true,"stream_options":{"include_usage":true}`, 1)
		}
		b.Run(name, func(b *testing.B) {
			up := newReplay(b, body)
			enf, err := budget.New([]budget.Budget{
				{Name: "key-day", Kind: budget.KindKey, Period: budget.Day, LimitUSD: 1e6},
				{Name: "user-month", Kind: budget.KindUser, Period: budget.Month, LimitUSD: 1e6, Soft: 0.8},
				{Name: "exp-total", Kind: budget.KindExperiment, Period: budget.Total, LimitUSD: 1e6},
			}, budget.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go enf.Run(ctx)
			lim, err := budget.NewLimiter(budget.RateLimits{
				Key:  budget.KindRates{Default: budget.Rate{RPM: 1 << 40, TPM: 1 << 50}},
				User: budget.KindRates{Default: budget.Rate{RPM: 1 << 40, TPM: 1 << 50}},
			}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			prices := pricing.Default()
			gate := gate.New(gate.Options{Enforcer: enf, Limiter: lim, Prices: prices})
			mk := func(admit gateway.Admitter) *gateway.Gateway {
				gw, err := gateway.New(gateway.Config{Upstream: "http://upstream.invalid/v1", Transport: up, Pricer: prices, Sink: discardSink{}, Admit: admit})
				if err != nil {
					b.Fatal(err)
				}
				return gw
			}
			off, on := mk(nil), mk(gate)
			serve := func(h http.Handler) time.Duration {
				r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("X-Llmscope-User", "bench-user")
				r = r.WithContext(llmscope.WithClient(r.Context(), "bench-key"))
				t0 := time.Now()
				h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
				return time.Since(t0)
			}
			for range 200 { // warm: leases granted, pools filled
				serve(off)
				serve(on)
			}
			var dOff, dOn []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				dOff = append(dOff, serve(off))
				dOn = append(dOn, serve(on))
			}
			p50 := func(d []time.Duration) float64 {
				slices.Sort(d)
				return float64(d[len(d)/2])
			}
			p99 := func(d []time.Duration) float64 { return float64(d[len(d)*99/100]) }
			a, c := p50(dOff), p50(dOn)
			b.ReportMetric(a, "off-p50-ns")
			b.ReportMetric(c, "on-p50-ns")
			b.ReportMetric(c-a, "added-p50-ns")
			b.ReportMetric(p99(dOn)-p99(dOff), "added-p99-ns")
		})
	}
}
