package sim

import (
	"net/http"
	"strconv"

	"llmscope/anthropic"
)

// api names the wire format of a route: it decides the shape of the route's
// error answers.
type api uint8

const (
	apiOpenAI    api = iota // OpenAI, and Azure OpenAI, which answers like it
	apiAnthropic            // Anthropic Messages
	apiGemini               // Gemini generateContent
)

// StatusOverloaded is Anthropic's 529 "overloaded_error"; X-Sim-Fault:
// status=529 injects it on any route.
const StatusOverloaded = 529

// anthropicError answers status with Anthropic's error body
// {"type":"error","error":{"type":…,"message":…},"request_id":…}; a 429
// carries retry-after: 1.
func (x *exchange) anthropicError(status int, msg string) {
	b := x.s.getBuf()
	defer x.s.putBuf(b)
	*b = append(*b, `{"type":"error","error":{"type":"`...)
	*b = append(*b, anthropic.ErrorTypeOf(status)...)
	*b = append(*b, `","message":`...)
	*b = appendString(*b, msg)
	*b = append(*b, `},"request_id":"`...)
	*b = append(*b, x.errorRequestID()...)
	*b = append(*b, "\"}\n"...)
	h := x.w.Header()
	h.Set("Request-Id", x.errorRequestID())
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	x.writeJSON(status, *b)
}

// errorRequestID is the request id of an error answer: drawn from the
// request's method and path, so the same failing request gets the same id.
func (x *exchange) errorRequestID() string {
	h := newHasher(x.s.cfg.Seed, x.r.Method)
	h.str(x.r.URL.Path)
	return "req_011" + base62ID(h.sum()^saltReq, 21)
}

// geminiError answers status with Gemini's error body
// {"error":{"code":…,"message":…,"status":…}}; a 429 also carries a
// google.rpc.RetryInfo detail of 1s.
func (x *exchange) geminiError(status int, msg string) {
	b := x.s.getBuf()
	defer x.s.putBuf(b)
	*b = append(*b, `{"error":{"code":`...)
	*b = strconv.AppendInt(*b, int64(status), 10)
	*b = append(*b, `,"message":`...)
	*b = appendString(*b, msg)
	*b = append(*b, `,"status":"`...)
	*b = append(*b, geminiStatus(status)...)
	*b = append(*b, '"')
	if status == http.StatusTooManyRequests {
		*b = append(*b, `,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1s"}]`...)
	}
	*b = append(*b, "}}\n"...)
	x.writeJSON(status, *b)
}

// base62ID returns n base62 characters drawn from seed.
func base62ID(seed uint64, n int) string {
	r := rng{s: seed}
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[r.intn(len(base62))]
	}
	return string(b)
}

// geminiStatus returns the google.rpc status name Gemini's errors carry for
// an HTTP status. (Package gemini has the same mapping, gemini.Status; its
// tests run against this simulator, so the simulator cannot import it.)
func geminiStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}
