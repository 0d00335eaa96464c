package otlp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"llmscope"
)

// receiver is a fake OTLP/HTTP endpoint: it records the last request and
// answers with the given status, content type and body.
type receiver struct {
	status      int
	contentType string
	body        []byte

	mu     sync.Mutex
	header http.Header
	req    *coltracepb.ExportTraceServiceRequest
	n      int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var got coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &got); err != nil {
		http.Error(w, "bad protobuf", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.header, r.req = req.Header.Clone(), &got
	r.n++
	r.mu.Unlock()
	if r.contentType != "" {
		w.Header().Set("Content-Type", r.contentType)
	}
	if r.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "7")
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func serve(t *testing.T, r *receiver) *Sender {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return NewSender(srv.URL+"/v1/traces", map[string]string{"Authorization": "Bearer tok"}, srv.Client())
}

func mustProto(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendSuccess(t *testing.T) {
	r := &receiver{status: 200, contentType: "application/x-protobuf",
		body: mustProto(t, &coltracepb.ExportTraceServiceResponse{})}
	s := serve(t, r)
	calls := []*llmscope.Call{chatCall(), embeddingsCall()}
	err := s.Send(context.Background(), calls, Options{}, map[string]string{
		"x-mlflow-experiment-id": "7", "x-mlflow-run-id": "abc", "Content-Type": "text/plain",
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, want := range map[string]string{
		"Content-Type":           "application/x-protobuf",
		"Authorization":          "Bearer tok",
		"X-Mlflow-Experiment-Id": "7",
		"X-Mlflow-Run-Id":        "abc",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if !proto.Equal(r.req, pb(Spans(calls, Options{}))) {
		t.Error("the receiver got other spans than Spans maps")
	}
}

func TestSendNothing(t *testing.T) {
	r := &receiver{status: 200}
	if err := serve(t, r).Send(context.Background(), nil, Options{}, nil); err != nil {
		t.Fatal(err)
	}
	if r.n != 0 {
		t.Errorf("sent %d requests for no calls", r.n)
	}
}

func TestSendEmptyBodyAndWarning(t *testing.T) {
	warn := &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{ErrorMessage: "slow down"}}
	for name, r := range map[string]*receiver{
		"empty":   {status: 200},
		"warning": {status: 200, contentType: "application/x-protobuf", body: mustProto(t, warn)},
		"202":     {status: 202, contentType: "application/json", body: []byte("{}")},
	} {
		if err := serve(t, r).Send(context.Background(), []*llmscope.Call{chatCall()}, Options{}, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSendPartialSuccess(t *testing.T) {
	resp := &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
		RejectedSpans: 1, ErrorMessage: "span too large"}}
	js, err := protojson.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*receiver{
		"protobuf": {status: 200, contentType: "application/x-protobuf", body: mustProto(t, resp)},
		"json":     {status: 200, contentType: "application/json; charset=utf-8", body: js},
	} {
		err := serve(t, r).Send(context.Background(), []*llmscope.Call{chatCall(), streamFailedCall()}, Options{}, nil)
		var pe *PartialError
		if !errors.As(err, &pe) || pe.Rejected != 1 || pe.Message != "span too large" {
			t.Errorf("%s: err = %v, want PartialError{1, span too large}", name, err)
		}
		if Retryable(err) {
			t.Errorf("%s: partial success is retryable", name)
		}
	}
}

func TestSendHTTPErrors(t *testing.T) {
	long := strings.Repeat("x", 2000)
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{503, true}, {429, true}, {408, true}, {500, true}, {400, false}, {401, false}, {404, false}, {422, false}} {
		r := &receiver{status: tc.status, contentType: "application/json", body: []byte(`{"detail":"` + long + `"}`)}
		err := serve(t, r).Send(context.Background(), []*llmscope.Call{chatCall()}, Options{}, nil)
		var he *HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("%d: err = %v, want *HTTPError", tc.status, err)
		}
		if he.Status != tc.status || he.Retryable() != tc.retryable || Retryable(err) != tc.retryable {
			t.Errorf("%d: status %d, retryable %v, want %v", tc.status, he.Status, he.Retryable(), tc.retryable)
		}
		if len(he.Body) != 512 || !strings.HasPrefix(he.Body, `{"detail":"xxx`) {
			t.Errorf("%d: body has %d bytes, want the first 512", tc.status, len(he.Body))
		}
		if tc.status == 503 && he.RetryAfter != 7*time.Second {
			t.Errorf("503: RetryAfter = %v, want 7s", he.RetryAfter)
		}
	}
}

func TestSendMalformed(t *testing.T) {
	for name, r := range map[string]*receiver{
		"html":     {status: 200, contentType: "text/html", body: []byte("<html>oops</html>")},
		"protobuf": {status: 200, contentType: "application/x-protobuf", body: []byte{0x0a, 0xff}},
		"json":     {status: 200, contentType: "application/json", body: []byte(`{"partialSuccess":`)},
	} {
		err := serve(t, r).Send(context.Background(), []*llmscope.Call{chatCall()}, Options{}, nil)
		if !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("%s: err = %v, want ErrMalformedResponse", name, err)
		}
		if Retryable(err) {
			t.Errorf("%s: malformed 2xx is retryable", name)
		}
	}
}

func TestSendConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := NewSender(url+"/v1/traces", nil, nil).Send(context.Background(), []*llmscope.Call{chatCall()}, Options{}, nil)
	var he *HTTPError
	if err == nil || errors.As(err, &he) || !Retryable(err) {
		t.Errorf("err = %v, want a retryable transport error", err)
	}
	if !strings.HasPrefix(err.Error(), "otlp: post traces: ") {
		t.Errorf("err = %q, want it wrapped with context", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = NewSender(url, nil, nil).Send(ctx, []*llmscope.Call{chatCall()}, Options{}, nil)
	if !errors.Is(err, context.Canceled) || Retryable(err) {
		t.Errorf("cancelled: err = %v, want context.Canceled, not retryable", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "-1": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// pb is r as the generated message (a test-only dependency: the package
// itself encodes requests with protowire, see Request).
func pb(r *Request) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: r.ResourceSpans}
}
