package openai

import (
	"net/http"
	"strconv"
)

// WriteError answers with OpenAI's error body
// {"error":{"message":…,"type":…,"param":null,"code":…}}.
func WriteError(w http.ResponseWriter, status int, typ, code, message string) {
	b := make([]byte, 0, 96+len(message))
	b = append(b, `{"error":{"message":`...)
	b = strconv.AppendQuote(b, message)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendQuote(b, code)
	}
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
