package sdk_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"llmscope/sdk"
	"llmscope/sim"
)

// BenchmarkTransport measures what the recording transport adds to a call:
// the same request to the zero-latency simulator through a plain transport
// and through the SDK's. allocs/op counts client and simulator too.
func BenchmarkTransport(b *testing.B) {
	up := httptest.NewServer(sim.New(sim.Config{}))
	defer up.Close()
	rec, err := sdk.New(context.Background(), sdk.Config{Store: &memStore{}})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close(context.Background())
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	bodies := map[string]string{
		"nonstream": `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say something short."}]}`,
		"stream":    `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say something short."}]}`,
	}
	for _, kind := range []string{"nonstream", "stream"} {
		for _, c := range []struct {
			name string
			hc   *http.Client
		}{{"plain", plain}, {"sdk", rec.HTTPClient()}} {
			b.Run(kind+"/"+c.name, func(b *testing.B) {
				body := []byte(bodies[kind])
				b.ReportAllocs()
				for b.Loop() {
					resp, err := c.hc.Post(up.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}
