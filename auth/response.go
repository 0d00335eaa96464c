package auth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// writeError answers with OpenAI's error body, the shape of every error
// llmscope raises itself.
func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	}
	b, _ := json.Marshal(struct {
		Error body `json:"error"`
	}{body{Message: message, Type: typ, Code: code}})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// responseWriter removes Access-Control-Allow-Credentials from every
// response before its header goes out: relayed upstream CORS headers must
// never let another origin read responses with the user's credentials.
// Unwrap keeps http.ResponseController working through it.
type responseWriter struct {
	http.ResponseWriter
	wrote bool
}

var writers = sync.Pool{New: func() any { return new(responseWriter) }}

func getWriter(w http.ResponseWriter) *responseWriter {
	rw := writers.Get().(*responseWriter)
	rw.ResponseWriter, rw.wrote = w, false
	return rw
}

func putWriter(rw *responseWriter) {
	rw.ResponseWriter = nil
	writers.Put(rw)
}

func (w *responseWriter) strip() {
	delete(w.ResponseWriter.Header(), "Access-Control-Allow-Credentials")
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.strip()
		w.wrote = code >= 200 || code == http.StatusSwitchingProtocols
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.strip()
		w.wrote = true
	}
	return w.ResponseWriter.Write(b)
}

// FlushError flushes the underlying writer (sending the header first).
func (w *responseWriter) FlushError() error {
	if !w.wrote {
		w.strip()
		w.wrote = true
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError without the error, for http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
