package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/internal/mlflowtest"
	"llmscope/internal/wire"
	"llmscope/mlflow"
	"llmscope/otlp"
)

// timedTransport adds up the time spent waiting on the server.
type timedTransport struct {
	base http.RoundTripper
	ns   atomic.Int64
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.ns.Add(int64(time.Since(start)))
	return resp, err
}

type noStats struct{}

func (noStats) Stats(context.Context, llmscope.Filter) (*llmscope.Stats, error) {
	return &llmscope.Stats{}, nil
}

// benchText is about 1 KB of prose.
var benchText = strings.Repeat("The quick brown fox jumps over the lazy dog near the river bank. ", 16)

// BenchmarkMLflowExport measures how many calls per second the MLflow
// exporter delivers into a real tracking server, in batches of 200, and how
// much of the time is spent waiting on the server (server-ns/op) against
// llmscope's own work (ours-ns/op).
func BenchmarkMLflowExport(b *testing.B) {
	ml := mlflowtest.Start(b)
	for _, kind := range []string{"unnamed", "named-run", "unnamed-captured"} {
		b.Run(kind, func(b *testing.B) {
			tt := &timedTransport{base: http.DefaultTransport}
			hc := &http.Client{Transport: tt, Timeout: time.Minute}
			client, err := mlflow.NewClient(mlflow.Config{TrackingURI: ml.URL, HTTPClient: hc})
			if err != nil {
				b.Fatal(err)
			}
			exp, err := mlflow.NewExporter(mlflow.ExporterConfig{
				Client: client, Stats: noStats{}, Host: "bench", Started: time.Now(),
				Traces: wire.MLflowTraces{Sender: otlp.NewSender(ml.URL+"/v1/traces", nil, hc), Options: otlp.Options{Capture: true, AutologNames: true}},
			})
			if err != nil {
				b.Fatal(err)
			}
			const batch = 200
			seq := int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				calls := make([]*llmscope.Call, n)
				for j := range calls {
					seq++
					c := &llmscope.Call{ID: llmscope.NewID(), Seq: seq, Start: time.Now(), DurationMS: 120, Operation: llmscope.OpChat,
						Provider: "openai", RequestModel: "gpt-4o-mini", ResponseModel: "gpt-4o-mini", Status: 200,
						Experiment: "bench-" + kind, Usage: llmscope.Usage{InputTokens: 20, OutputTokens: 80, TotalTokens: 100, Source: llmscope.UsageReported},
						Cost: &llmscope.Cost{InputUSD: 3e-6, OutputUSD: 4.8e-5, TotalUSD: 5.1e-5}}
					if kind == "named-run" {
						c.Run = fmt.Sprintf("bench-run-%d", b.N)
					}
					if kind == "unnamed-captured" { // a prompt and an answer of about 1 KB each
						c.Input = `[{"role":"system","content":"You are terse."},{"role":"user","content":"` + benchText + `"}]`
						c.Output = benchText
					}
					c.TraceID = llmscope.TraceIDFor(c.ID)
					calls[j] = c
				}
				if err := exp.Export(context.Background(), calls); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := b.Elapsed()
			server := time.Duration(tt.ns.Load())
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
			b.ReportMetric(float64(server.Nanoseconds())/float64(b.N), "server-ns/op")
			b.ReportMetric(float64((elapsed-server).Nanoseconds())/float64(b.N), "ours-ns/op")
		})
	}
}
