// Package mlflow is a small client for the MLflow tracking server's REST API
// (experiments, runs, params, metrics, tags) and for reading back the traces
// that llmscope exports over OTLP. It uses the standard library only.
//
// Tested against MLflow 3.17.2 (see scripts/mlflow-venv.sh).
package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// TrackingURI is the server's base URL, e.g. "http://127.0.0.1:5000"
	// (a path prefix such as "https://host/mlflow" is kept).
	TrackingURI string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Username and Password, when Token is empty and Username is set, are
	// sent as HTTP Basic auth.
	Username, Password string
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// MaxRetries is the number of retries after the first attempt; 0 means
	// the default 5, a negative value disables retries.
	MaxRetries int
	// RetryBase is the first backoff step (default 200 ms); attempt n sleeps
	// a random duration in [0, min(RetryBase·2ⁿ, 30 s)] ("full jitter").
	RetryBase time.Duration
}

const (
	defaultMaxRetries = 5
	defaultRetryBase  = 200 * time.Millisecond
	maxBackoff        = 30 * time.Second
	maxErrorBody      = 64 << 10
	apiPrefix         = "/api/2.0/mlflow/"
)

// Client calls one MLflow tracking server. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	auth       string
	hc         *http.Client
	maxRetries int
	retryBase  time.Duration
	sleep      func(ctx context.Context, d time.Duration) error // replaced in tests
}

// NewClient validates cfg and returns a Client. TrackingURI must be an
// absolute http or https URL.
func NewClient(cfg Config) (*Client, error) {
	raw := strings.TrimSpace(cfg.TrackingURI)
	if raw == "" {
		return nil, errors.New("mlflow: tracking URI is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mlflow: tracking URI: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mlflow: tracking URI %q: want http(s)://host[:port][/prefix]", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	c := &Client{
		base:       u,
		hc:         cfg.HTTPClient,
		maxRetries: cfg.MaxRetries,
		retryBase:  cfg.RetryBase,
		sleep:      sleepCtx,
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = defaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.retryBase <= 0 {
		c.retryBase = defaultRetryBase
	}
	switch {
	case cfg.Token != "":
		c.auth = "Bearer " + cfg.Token
	case cfg.Username != "":
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(cfg.Username, cfg.Password)
		c.auth = req.Header.Get("Authorization")
	}
	return c, nil
}

// URL returns the tracking URI the client talks to.
func (c *Client) URL() string { return c.base.String() }

// APIError is an error answer from the server. Code is MLflow's error_code
// (e.g. "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS",
// "INVALID_PARAMETER_VALUE"); it is empty for answers without one, such as
// the OTLP endpoint's {"detail": …} errors or a proxy's HTML page.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	s := "HTTP " + strconv.Itoa(e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// isStatus reports whether err wraps an *APIError with HTTP status status.
func isStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// IsCode reports whether err wraps an *APIError whose Code is code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// decodeAPIError builds an APIError from an error response body.
func decodeAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var v struct {
		Code    string          `json:"error_code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil && (v.Code != "" || v.Message != "" || len(v.Detail) > 0) {
		e.Code, e.Message = v.Code, v.Message
		if e.Message == "" && len(v.Detail) > 0 {
			var s string
			if json.Unmarshal(v.Detail, &s) == nil {
				e.Message = s
			} else {
				e.Message = string(v.Detail) // FastAPI validation errors are a list
			}
		}
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}

// retryableStatus lists the statuses the Python client retries too.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff returns the full-jitter delay before retry number attempt (0-based).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase << min(attempt, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// request describes one HTTP exchange.
type request struct {
	method      string
	path        string // absolute path below the tracking URI, e.g. "/v1/traces"
	query       url.Values
	body        []byte
	contentType string
	header      http.Header
}

// send performs r with retries and returns the 2xx response body. Requests
// are retried on connection errors and on 408/429/500/502/503/504 (also
// non-idempotent POSTs, as MLflow's own client does); a Retry-After header
// in seconds raises the delay (up to 30 s). ctx bounds all attempts.
func (c *Client) send(ctx context.Context, r request) ([]byte, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	target := u.String()
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		req, err := http.NewRequestWithContext(ctx, r.method, target, body)
		if err != nil {
			return nil, err
		}
		for k, vs := range r.header {
			req.Header[k] = vs
		}
		if r.body != nil {
			req.Header.Set("Content-Type", r.contentType)
		}
		req.Header.Set("Accept", "application/json")
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		data, status, retryAfter, err := c.roundTrip(req)
		if err == nil && status/100 == 2 {
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil {
			err = decodeAPIError(status, data)
			if !retryableStatus(status) {
				return nil, err
			}
		}
		if attempt >= c.maxRetries {
			if attempt > 0 {
				return nil, fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return nil, err
		}
		d := max(c.backoff(attempt), min(retryAfter, maxBackoff))
		if serr := c.sleep(ctx, d); serr != nil {
			return nil, serr
		}
	}
}

// roundTrip does one attempt; err is set only for transport failures.
func (c *Client) roundTrip(req *http.Request) (body []byte, status int, retryAfter time.Duration, err error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	limit := int64(256 << 20)
	if resp.StatusCode/100 != 2 {
		limit = maxErrorBody
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read response: %w", err)
	}
	if s, e := strconv.Atoi(resp.Header.Get("Retry-After")); e == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return body, resp.StatusCode, retryAfter, nil
}

// call sends a JSON request (in may be nil) and decodes the answer into out
// (may be nil). path is relative to /api/2.0/mlflow/ unless it starts with "/".
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	if !strings.HasPrefix(path, "/") {
		path = apiPrefix + path
	}
	r := request{method: method, path: path, query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		r.body, r.contentType = b, "application/json"
	}
	data, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
