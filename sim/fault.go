package sim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultHeader is the request header that injects faults into one request.
// Its value is a comma-separated list of items:
//
//	status=429      answer with that status (400–599) and the route's error
//	                body: OpenAI's (and Azure's), Anthropic's (529 is its
//	                overloaded_error) or Gemini's
//	reset_after=3   streams: drop the connection after 3 SSE data events;
//	                non-streams: drop it before writing anything
//	delay=200ms     wait that long (time.ParseDuration) before responding
//	no_usage        never send usage, in JSON bodies or streams
//
// Items may be repeated across several header lines; a later item wins.
const FaultHeader = "X-Sim-Fault"

// maxFaultDelay bounds delay= so one header cannot park a handler for hours.
const maxFaultDelay = 10 * time.Minute

// fault is a parsed FaultHeader. The zero value injects nothing except that
// resetAfter must be -1 for "no reset": use noFault.
type fault struct {
	status     int           // 0: none
	resetAfter int           // -1: none
	delay      time.Duration // 0: none
	noUsage    bool
}

var noFault = fault{resetAfter: -1}

// String renders f in the header syntax; parseFault(f.String()) == f.
func (f fault) String() string {
	var items []string
	if f.status != 0 {
		items = append(items, "status="+strconv.Itoa(f.status))
	}
	if f.resetAfter >= 0 {
		items = append(items, "reset_after="+strconv.Itoa(f.resetAfter))
	}
	if f.delay != 0 {
		items = append(items, "delay="+f.delay.String())
	}
	if f.noUsage {
		items = append(items, "no_usage")
	}
	return strings.Join(items, ",")
}

// parseFault parses the values of FaultHeader. Empty items are ignored; an
// unknown or malformed item is an error that quotes it.
func parseFault(values ...string) (fault, error) {
	f := noFault
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if err := f.parseItem(item); err != nil {
				return noFault, fmt.Errorf("invalid %s item %q: %w", FaultHeader, item, err)
			}
		}
	}
	return f, nil
}

func (f *fault) parseItem(item string) error {
	key, val, hasVal := strings.Cut(item, "=")
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	if key == "no_usage" {
		if hasVal {
			return errors.New("no_usage takes no value")
		}
		f.noUsage = true
		return nil
	}
	if !hasVal {
		return errors.New("want key=value or no_usage")
	}
	switch key {
	case "status":
		n, err := strconv.Atoi(val)
		if err != nil || n < 400 || n > 599 {
			return errors.New("status must be an integer from 400 to 599")
		}
		f.status = n
	case "reset_after":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return errors.New("reset_after must be a non-negative integer")
		}
		f.resetAfter = n
	case "delay":
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 || d > maxFaultDelay {
			return fmt.Errorf("delay must be a duration from 0 to %s", maxFaultDelay)
		}
		f.delay = d
	default:
		return errors.New("unknown fault (want status, reset_after, delay or no_usage)")
	}
	return nil
}

// errReset reports that the connection was dropped on purpose.
var errReset = errors.New("sim: connection reset by fault injection")

// resetConn drops the client connection without finishing the response: on
// HTTP/1 it hijacks and closes the socket, so a chunked stream ends without
// its terminating chunk; elsewhere it aborts the handler, which resets the
// HTTP/2 stream. Whatever was flushed before stays delivered.
func resetConn(w http.ResponseWriter) error {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if err := conn.Close(); err != nil {
		return fmt.Errorf("sim: close hijacked connection: %w", err)
	}
	return errReset
}

// errorKind returns the OpenAI error type and code for a simulated status.
func errorKind(status int) (typ, code string) {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_exceeded", "rate_limit_exceeded"
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusNotFound:
		return "invalid_request_error", "not_found"
	case status == http.StatusServiceUnavailable:
		return "service_unavailable", "service_unavailable"
	case status >= 500:
		return "server_error", ""
	default:
		return "invalid_request_error", ""
	}
}
