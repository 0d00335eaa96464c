package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// assets holds the dashboard: index.html, app.js, style.css and the vendored
// chart library (vendor/chart.umd.min.js, Chart.js 4.6.1, MIT, with its
// LICENSE). Nothing is loaded from outside the binary.
//
//go:embed assets
var assets embed.FS

// dashboard serves the single-page dashboard; it reads /api/*.
func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// assetFiles serves the embedded assets below /assets/.
var assetFiles = func() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/assets/", http.FileServerFS(sub))
}()

// asset serves GET /assets/{file...}: the dashboard's scripts, styles and
// vendored library. Directory listings are not served.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") {
		h.notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	assetFiles.ServeHTTP(w, r)
}
