// Package web serves llmscope's JSON API (/api/*), health check and
// dashboard. It reads the store only.
package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"llmscope"
	"llmscope/auth"
)

// Health reports the state of a component for /healthz: nil when healthy.
type Health func() error

// Handler serves the JSON API, /healthz and the dashboard.
type Handler struct {
	store  llmscope.Store
	health map[string]Health
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns a Handler reading store. health names the checks /healthz runs.
func New(store llmscope.Store, health map[string]Health, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: store, health: health, log: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /api/calls", h.listCalls)
	h.mux.HandleFunc("GET /api/calls/{id}", h.getCall)
	h.mux.HandleFunc("GET /api/stats", h.stats)
	h.mux.HandleFunc("GET /api/compare", h.compare)
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /{$}", h.dashboard)
	h.mux.HandleFunc("GET /assets/", h.asset)
	h.mux.HandleFunc("/", h.notFound)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// MaxLimit is the largest limit /api/calls accepts; use export for more.
const MaxLimit = 10000

// ParseFilter reads a Filter from the query parameters limit, model, run,
// experiment, operation, since and until. since/until accept RFC 3339 times or
// a duration back from now ("15m", "24h").
func ParseFilter(q map[string][]string, now time.Time) (llmscope.Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f := llmscope.Filter{Model: get("model"), Run: get("run"), Experiment: get("experiment"), Operation: get("operation")}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxLimit {
			return f, fmt.Errorf("limit %q is not an integer from 0 to %d", v, MaxLimit)
		}
		f.Limit = n
	}
	var err error
	if f.Since, err = parseTime(get("since"), now); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseTime(get("until"), now); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	return f, nil
}

func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", v)
	}
	return t, nil
}

// MaxListBytes bounds the encoded calls of one /api/calls answer: a page
// that would grow past it ends early, with a next cursor (a page always
// holds at least one call).
const MaxListBytes = 8 << 20

// listCalls serves GET /api/calls: the calls ParseFilter selects, newest
// first, without their captured texts unless text=true. When more calls
// match than the answer holds (the limit, or MaxListBytes), it carries
// "next", a cursor that cursor=… continues from.
func (h *Handler) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if v := q.Get("text"); v != "" {
		withText, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "text must be true or false")
			return
		}
		f.OmitText = !withText
	} else {
		f.OmitText = true
	}
	if v := q.Get("cursor"); v != "" {
		p, err := parseCursor(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "cursor is not one this API gave")
			return
		}
		f.Before = &p
	}
	page, err := h.page(r, f)
	if err != nil {
		h.log.Error("list calls", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "list calls failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}

// page returns the encoded answer to /api/calls for f: {"calls":[…]} and,
// when more calls match, "next". It reads the store in batches (small ones
// when texts are included), so memory follows the answer's size.
func (h *Handler) page(r *http.Request, f llmscope.Filter) ([]byte, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	batch := 1000
	if !f.OmitText {
		batch = 50
	}
	out := append(make([]byte, 0, 4096), `{"calls":[`...)
	n, more := 0, false
	var last *llmscope.Call
	for n < limit && !more {
		f.Limit = min(limit-n, batch) + 1 // one more: are there more calls?
		calls, err := h.store.List(r.Context(), f)
		if err != nil {
			return nil, err
		}
		for i, c := range calls {
			if n == limit || i == f.Limit-1 {
				more = n == limit
				break
			}
			b, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode call %q: %w", c.ID, err)
			}
			if n > 0 && len(out)+len(b) > MaxListBytes {
				more = true
				break
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, b...)
			n++
			last = c
		}
		if len(calls) < f.Limit {
			break // the store has no more
		}
		p := llmscope.PositionOf(last)
		f.Before = &p
	}
	out = append(out, ']')
	if more {
		next, _ := json.Marshal(formatCursor(llmscope.PositionOf(last)))
		out = append(append(out, `,"next":`...), next...)
	}
	return append(out, "}\n"...), nil
}

// formatCursor returns the opaque cursor of p: base64url of its start in
// unix nanoseconds and its id.
func formatCursor(p llmscope.Position) string {
	s := "z"
	if !p.Start.IsZero() {
		s = strconv.FormatInt(p.Start.UnixNano(), 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s + " " + p.ID))
}

// parseCursor reads a cursor formatCursor made.
func parseCursor(v string) (llmscope.Position, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return llmscope.Position{}, fmt.Errorf("cursor: %w", err)
	}
	ts, id, ok := strings.Cut(string(b), " ")
	if !ok || id == "" {
		return llmscope.Position{}, errors.New("cursor: no id")
	}
	if ts == "z" {
		return llmscope.Position{ID: id}, nil
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return llmscope.Position{}, fmt.Errorf("cursor: %w", err)
	}
	return llmscope.Position{Start: time.Unix(0, ns).UTC(), ID: id}, nil
}

func (h *Handler) getCall(w http.ResponseWriter, r *http.Request) {
	c, err := h.store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, llmscope.ErrNotFound):
		writeError(w, http.StatusNotFound, "invalid_request_error", "no call with id "+strconv.Quote(r.PathValue("id")))
	case err != nil:
		h.log.Error("get call", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "get call failed")
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// stats serves GET /api/stats: totals and one group per distinct value of
// group_by's keys (comma-separated, of llmscope.GroupKeys; model by
// default), at most max_groups groups (llmscope.DefaultMaxGroups by
// default), in llmscope.Stats's JSON form.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q, time.Now())
	if err == nil {
		f.GroupBy, f.MaxGroups, err = ParseGrouping(q.Get("group_by"), q.Get("max_groups"))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	s, err := h.store.Stats(r.Context(), f)
	if err != nil {
		h.log.Error("stats", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "stats failed")
		return
	}
	if s.Groups == nil {
		s.Groups = []llmscope.Summary{}
	}
	writeJSON(w, http.StatusOK, s)
}

// MaxGroups is the largest max_groups /api/stats accepts.
const MaxGroups = 100000

// ParseGrouping checks the group_by and max_groups of a stats request and
// returns them as Filter.GroupBy and Filter.MaxGroups: the keys normalised
// ("model" alone becomes "", the default grouping), max_groups an integer
// from 1 to MaxGroups ("" gives 0, the default).
func ParseGrouping(groupBy, maxGroups string) (string, int, error) {
	keys, err := llmscope.ParseGroupBy(groupBy)
	if err != nil {
		return "", 0, fmt.Errorf("group_by: %w", err)
	}
	g := strings.Join(keys, ",")
	if g == llmscope.GroupModel {
		g = ""
	}
	n := 0
	if maxGroups != "" {
		n, err = strconv.Atoi(maxGroups)
		if err != nil || n < 1 || n > MaxGroups {
			return "", 0, fmt.Errorf("max_groups %q is not an integer from 1 to %d", maxGroups, MaxGroups)
		}
	}
	return g, n, nil
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	checks := map[string]string{}
	public := auth.Public(r.Context())
	for name, check := range h.health {
		if err := check(); err != nil {
			checks[name] = err.Error()
			if public {
				checks[name] = "failing" // the details need the admin token
			}
			status, code = "degraded", http.StatusServiceUnavailable
		} else {
			checks[name] = "ok"
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "invalid_request_error", "unknown path "+r.URL.Path)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// writeError answers with OpenAI's error body shape.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}
