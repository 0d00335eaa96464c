package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"llmscope"
)

// ErrMalformedResponse is wrapped by the error Send returns when the
// receiver answered 2xx with a body that is not an ExportTraceServiceResponse.
// The receiver took the request, so the caller should treat the spans as
// accepted (not retry them) and only log and count the error.
var ErrMalformedResponse = errors.New("malformed otlp response")

// maxResponse bounds how much of a response body Send reads.
const maxResponse = 1 << 20

// HTTPError is returned by Send when the receiver answered with a non-2xx
// status.
type HTTPError struct {
	Status int
	Body   string // the first 512 bytes of the response body
	// RetryAfter is the delay the receiver asked for in a Retry-After header
	// (seconds or HTTP date); 0 when absent.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("otlp: http status %d", e.Status)
	}
	return fmt.Sprintf("otlp: http status %d: %s", e.Status, e.Body)
}

// Retryable reports whether the same request may succeed later: true for
// 408, 429 and 5xx, false for any other status.
func (e *HTTPError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// PartialError is returned by Send when the receiver accepted the request
// but rejected some spans (OTLP partial success). The rejected spans were
// refused for good: sending them again will not help.
type PartialError struct {
	Rejected int64
	Message  string
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("otlp: partial success: %d spans rejected: %s", e.Rejected, e.Message)
}

// Retryable reports whether err, returned by Send, is worth retrying: an
// HTTPError that says so, or a transport error (connection refused or
// reset, timeout) that is not the caller's own context ending. A partial
// success or a malformed 2xx response is never retryable.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Retryable()
	}
	var pe *PartialError
	if errors.As(err, &pe) || errors.Is(err, ErrMalformedResponse) {
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// Sender posts spans to one OTLP/HTTP traces endpoint. It is safe for
// concurrent use. It never retries: the caller owns retries and backoff.
type Sender struct {
	endpoint string
	headers  map[string]string
	hc       *http.Client
}

// NewSender returns a Sender posting to endpoint, the full URL of the
// traces endpoint (e.g. http://127.0.0.1:5000/v1/traces), with headers on
// every request (e.g. authorization). headers is copied. A nil hc means a
// client with a 30 s timeout.
func NewSender(endpoint string, headers map[string]string, hc *http.Client) *Sender {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	h := make(map[string]string, len(headers))
	for k, v := range headers {
		h[k] = v
	}
	return &Sender{endpoint: endpoint, headers: h, hc: hc}
}

// Endpoint returns the URL the Sender posts to.
func (s *Sender) Endpoint() string { return s.endpoint }

// Send maps calls with Spans(calls, opts) and posts them in one request,
// binary protobuf, with the Sender's headers and then extraHeaders (which
// win; e.g. x-mlflow-experiment-id, x-mlflow-run-id). Content-Type is always
// application/x-protobuf. Sending no calls sends nothing and returns nil.
//
// It returns nil when the receiver answered 2xx with an
// ExportTraceServiceResponse (protobuf, or JSON when the response says so)
// or an empty body, including a partial success that rejected no span (a
// warning). Otherwise:
//   - *PartialError: 2xx, but some spans were rejected (do not resend them);
//   - an error wrapping ErrMalformedResponse: 2xx with an undecodable body;
//     the data counts as accepted, the caller logs and counts the error;
//   - *HTTPError: any other status; see HTTPError.Retryable;
//   - any other error: the request could not be made or its response not
//     read (connection refused, timeout, ctx done), returned wrapped.
func (s *Sender) Send(ctx context.Context, calls []*llmscope.Call, opts Options, extraHeaders map[string]string) error {
	if len(calls) == 0 {
		return nil
	}
	body, err := Spans(calls, opts).Marshal()
	if err != nil {
		return fmt.Errorf("otlp: marshal spans: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlp: new request: %w", err)
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	for k, v := range extraHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "llmscope-otlp")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("otlp: post traces: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // allow connection reuse
		_ = resp.Body.Close()
	}()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &HTTPError{
			Status:     resp.StatusCode,
			Body:       string(b),
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("otlp: read response: %w", err)
	}
	if len(b) > maxResponse {
		return fmt.Errorf("otlp: response over %d bytes: %w", maxResponse, ErrMalformedResponse)
	}
	return decodeResponse(resp.Header.Get("Content-Type"), b)
}

// decodeResponse interprets a 2xx body (see Send).
func decodeResponse(contentType string, b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var ps partialSuccess
	var err error
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if ps, err = decodeResponseJSON(b); err != nil {
			return fmt.Errorf("otlp: decode json response: %w: %w", ErrMalformedResponse, err)
		}
	} else if ps, err = decodeResponseProto(b); err != nil {
		return fmt.Errorf("otlp: decode protobuf response: %w: %w", ErrMalformedResponse, err)
	}
	if ps.RejectedSpans > 0 {
		return &PartialError{Rejected: ps.RejectedSpans, Message: ps.ErrorMessage}
	}
	return nil
}

// retryAfter parses a Retry-After header value: delay seconds or an HTTP
// date. It returns 0 when v is empty, invalid or in the past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
