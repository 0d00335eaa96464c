// Package web serves llmscope's JSON API (/api/*), health check and
// dashboard. It reads the store only.
package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"llmscope"
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

func (h *Handler) listCalls(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	calls, err := h.store.List(r.Context(), f)
	if err != nil {
		h.log.Error("list calls", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "list calls: "+err.Error())
		return
	}
	if calls == nil {
		calls = []*llmscope.Call{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"calls": calls})
}

func (h *Handler) getCall(w http.ResponseWriter, r *http.Request) {
	c, err := h.store.Get(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, llmscope.ErrNotFound):
		writeError(w, http.StatusNotFound, "invalid_request_error", "no call with id "+strconv.Quote(r.PathValue("id")))
	case err != nil:
		h.log.Error("get call", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "get call: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if g := r.URL.Query().Get("group_by"); g != "" && g != "model" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "group_by must be \"model\"")
		return
	}
	s, err := h.store.Stats(r.Context(), f)
	if err != nil {
		h.log.Error("stats", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "stats: "+err.Error())
		return
	}
	if s.Groups == nil {
		s.Groups = []llmscope.Summary{}
	}
	writeJSON(w, http.StatusOK, s)
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	status, code := "ok", http.StatusOK
	checks := map[string]string{}
	for name, check := range h.health {
		if err := check(); err != nil {
			checks[name] = err.Error()
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
