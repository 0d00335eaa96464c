package loadtest

import (
	"io"
	"net/http"
	"sync/atomic"

	"llmscope/otlp"
)

// OTLPSink is a discarding OTLP/HTTP traces receiver: it answers every POST
// with 200 and an empty protobuf ExportTraceServiceResponse, and counts the
// requests, body bytes and spans it was sent. The zero value is ready.
type OTLPSink struct {
	requests, bytes, spans, bad atomic.Uint64
}

// ServeHTTP implements http.Handler.
func (s *OTLPSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		s.bad.Add(1)
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.bytes.Add(uint64(len(b)))
	if req, err := otlp.DecodeRequest(b); err != nil {
		s.bad.Add(1)
	} else {
		s.spans.Add(uint64(req.SpanCount()))
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK) // an empty body is the empty ExportTraceServiceResponse
}

// SinkStats is what an OTLPSink received.
type SinkStats struct {
	Requests  uint64 `json:"requests"`
	Spans     uint64 `json:"spans"`
	Bytes     uint64 `json:"bytes"`
	Malformed uint64 `json:"malformed"`
}

// Stats returns what s has received so far.
func (s *OTLPSink) Stats() SinkStats {
	return SinkStats{Requests: s.requests.Load(), Spans: s.spans.Load(), Bytes: s.bytes.Load(), Malformed: s.bad.Load()}
}
