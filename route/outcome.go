package route

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Outcome is what the gateway saw of one attempt, given to Plan.Report.
type Outcome struct {
	// Status is the upstream's HTTP status, 0 when no response arrived.
	Status int
	// Header is the response's header (Retry-After, retry-after-ms), or nil.
	Header http.Header
	// Err is the transport or stream error, nil when the answer arrived
	// whole (or, with Status >= 400, was not read).
	Err error
	// Timeout says the attempt ran out of time (the deployment's timeout);
	// an Err that is a deadline or reports Timeout() counts too.
	Timeout bool
	// Committed says bytes of this answer already reached the client: the
	// answer is final whatever happens next, and the plan ends.
	Committed bool
}

// Kind classifies an attempt's result.
type Kind string

// Kinds of results. KindOK and KindRejected end a plan; KindStatus,
// KindTimeout, KindConnection and KindStream are retryable; KindBroken
// (failure after the first byte reached the client) and KindCanceled end it.
const (
	KindOK         Kind = "ok"         // 1xx-3xx answer
	KindRejected   Kind = "rejected"   // non-retryable 4xx (400, 401, 403, 404, 413, 422, ...)
	KindStatus     Kind = "status"     // retryable status: 408, 409, 429, 5xx but 501, 505
	KindTimeout    Kind = "timeout"    // no response headers in time
	KindConnection Kind = "connection" // could not connect or send
	KindStream     Kind = "stream"     // the answer broke before its first byte reached the client
	KindBroken     Kind = "broken"     // the answer broke after bytes reached the client
	KindCanceled   Kind = "canceled"   // the client went away
)

// Retryable reports whether a status may be retried elsewhere or later:
// 408, 409, 429 and 5xx except 501 and 505.
func Retryable(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusConflict, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
		return false
	}
	return status >= 500 && status <= 599
}

// Classify returns the Kind of an outcome.
func Classify(o Outcome) Kind {
	switch {
	case o.Err != nil && errors.Is(o.Err, context.Canceled):
		return KindCanceled
	case o.Committed:
		if o.Err != nil {
			return KindBroken
		}
		return kindOfStatus(o.Status)
	case o.Err != nil && o.Status == 0:
		if o.Timeout || isTimeout(o.Err) {
			return KindTimeout
		}
		return KindConnection
	case o.Err != nil:
		if o.Status >= 400 {
			return kindOfStatus(o.Status)
		}
		return KindStream
	case o.Status == 0 && o.Timeout:
		return KindTimeout
	case o.Status == 0:
		return KindConnection
	}
	return kindOfStatus(o.Status)
}

func kindOfStatus(status int) Kind {
	switch {
	case Retryable(status):
		return KindStatus
	case status >= 400:
		return KindRejected
	}
	return KindOK
}

// retryable reports whether another attempt may follow a result of kind k.
func (k Kind) retryable() bool {
	switch k {
	case KindStatus, KindTimeout, KindConnection, KindStream:
		return true
	}
	return false
}

// failure reports whether a result of kind k counts against the
// deployment's health.
func (k Kind) failure() bool { return k.retryable() || k == KindBroken }

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// maxRetryAfter bounds parsed waits so that they never overflow.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// RetryAfter returns the wait an answer asks for: retry-after-ms
// (milliseconds, may be fractional) when valid, else Retry-After (seconds,
// or an HTTP date relative to now; a past date is 0). ok is false when
// neither header holds a valid value. The result is never negative and at
// most about 100 years.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if h == nil {
		return 0, false
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(ms) && ms >= 0 {
			return clampWait(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(s) || s < 0 {
			return 0, false
		}
		return clampWait(s * float64(time.Second)), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if !t.After(now) {
		return 0, true
	}
	return min(t.Sub(now), maxRetryAfter), true
}

func clampWait(ns float64) time.Duration {
	if ns >= float64(maxRetryAfter) {
		return maxRetryAfter
	}
	return time.Duration(ns)
}
