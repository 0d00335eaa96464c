package web

import (
	"embed"
	"net/http"
)

//go:embed assets/index.html
var assets embed.FS

// dashboard serves the single-page dashboard; it reads /api/*.
func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}
