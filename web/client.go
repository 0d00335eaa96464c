package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"llmscope"
)

// Client reads the JSON API of a running llmscope serve. Its List and
// Stats match llmscope.Store's, so code that reads calls can read them from
// a store or from a gateway alike.
type Client struct {
	Base  string       // e.g. "http://127.0.0.1:8700"
	HTTP  *http.Client // nil: a client with a 30 s timeout
	Token string       // the gateway's admin token, when it has one
}

// Query returns the query parameters that select f (the inverse of
// ParseFilter); a limit above MaxLimit is cut to it.
func Query(f llmscope.Filter) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("model", f.Model)
	set("run", f.Run)
	set("experiment", f.Experiment)
	set("operation", f.Operation)
	set("group_by", f.GroupBy)
	if f.MaxGroups > 0 {
		q.Set("max_groups", strconv.Itoa(f.MaxGroups))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(min(f.Limit, MaxLimit)))
	}
	if !f.OmitText {
		q.Set("text", "true") // as Store.List gives them
	}
	if f.Before != nil {
		q.Set("cursor", formatCursor(*f.Before))
	}
	return q
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	u := strings.TrimRight(c.Base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("llmscope API: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("llmscope API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("llmscope API %s: %w", path, llmscope.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("llmscope API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("llmscope API %s: %w", path, err)
	}
	return nil
}

// List returns the calls matching f, newest first, following the API's
// pages (an answer holds at most MaxLimit calls and MaxListBytes of them)
// until it has f.Limit calls or the last.
func (c *Client) List(ctx context.Context, f llmscope.Filter) ([]*llmscope.Call, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	q := Query(f)
	var calls []*llmscope.Call
	for {
		var out struct {
			Calls []*llmscope.Call `json:"calls"`
			Next  string           `json:"next"`
		}
		q.Set("limit", strconv.Itoa(min(limit-len(calls), MaxLimit)))
		if err := c.get(ctx, "/api/calls", q, &out); err != nil {
			return nil, err
		}
		calls = append(calls, out.Calls...)
		if out.Next == "" || len(calls) >= limit {
			break
		}
		q.Set("cursor", out.Next)
	}
	return calls, nil
}

// Stats summarises the calls matching f (f.Limit is ignored).
func (c *Client) Stats(ctx context.Context, f llmscope.Filter) (*llmscope.Stats, error) {
	f.Limit = 0
	var st llmscope.Stats
	if err := c.get(ctx, "/api/stats", Query(f), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Get returns one call; an error wrapping llmscope.ErrNotFound when the
// gateway has not stored it (yet).
func (c *Client) Get(ctx context.Context, id string) (*llmscope.Call, error) {
	var call llmscope.Call
	if err := c.get(ctx, "/api/calls/"+url.PathEscape(id), nil, &call); err != nil {
		return nil, err
	}
	return &call, nil
}

// Wait returns the call with the given id once the gateway has stored it,
// polling until ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (*llmscope.Call, error) {
	for {
		call, err := c.Get(ctx, id)
		if err == nil {
			return call, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("call %s: %w (last: %v)", id, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
