package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestOTLPCollectorExport: serve sends one span per call to an OTLP/HTTP
// collector given by --otlp-endpoint, and serves /metrics on --metrics-addr.
func TestOTLPCollectorExport(t *testing.T) {
	var mu sync.Mutex
	spans := map[string]string{} // span name by trace id
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[string(s.TraceId)] = s.Name
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	defer collector.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := ln.Addr().String()
	ln.Close()
	_, base, _, _ := startServe(t, "--otlp-endpoint", collector.URL+"/v1/traces", "--metrics-addr", metricsAddr)
	for i := range 5 {
		chatCall(t, base, i%2 == 0, 0.4, nil)
	}
	eventually(t, "5 spans at the collector", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(spans) == 5
	})
	mu.Lock()
	for _, name := range spans {
		if name != "chat gpt-4o-mini" {
			t.Errorf("span name %q", name)
		}
	}
	mu.Unlock()
	r, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), "llmscope_requests_total") {
		t.Errorf("--metrics-addr does not serve the metrics")
	}
}
