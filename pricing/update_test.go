package pricing

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve answers every request with handler and returns the server's URL.
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC) }

func TestUpdate(t *testing.T) {
	body := readTrimmed(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	path := filepath.Join(t.TempDir(), "llmscope", "prices.json")
	u, err := Update(t.Context(), path, UpdateOptions{URL: url, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Models) < 150 || u.FetchedDate() != "2026-11-30" || u.URL != url {
		t.Errorf("update: %d models, fetched %s from %s", len(u.Models), u.FetchedDate(), u.URL)
	}
	got, err := ReadUpdated(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Models) != len(u.Models) || !got.Fetched.Equal(fixedNow()) {
		t.Errorf("read back %d models fetched %v", len(got.Models), got.Fetched)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}

	// The updated file sits between the embedded table and the overrides.
	over := write(t, "models:\n  - {model: gpt-5.5, input: 4, output: 20, source: contract, as_of: 2026-01-01}\n")
	tab, err := LoadAll(path, over)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tab.Lookup("gpt-5.5"); p.Origin != over {
		t.Errorf("gpt-5.5 from %s, want the overrides", p.Origin)
	}
	if p, _ := tab.Lookup("claude-sonnet-4-5"); p.Origin != path || p.Source != "litellm" || p.AsOf != "2026-11-30" {
		t.Errorf("claude-sonnet-4-5 from %s (%s %s), want the updated file", p.Origin, p.Source, p.AsOf)
	}
	if p, _ := tab.Lookup("gpt-4-32k"); p == nil || p.Origin != "builtin" {
		t.Errorf("embedded-only entry lost: %+v", p)
	}
	desc := tab.Describe()
	for _, want := range []string{"updated file " + path + " fetched 2026-11-30, ", " models", "overrides from " + over} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe() = %q, want %q in it", desc, want)
		}
	}
	if d := Default().Describe(); d != "embedded table as of 2026-11-30" {
		t.Errorf("Default().Describe() = %q", d)
	}
	// A missing updated file is no error.
	if tab, err := LoadAll(filepath.Join(t.TempDir(), "none.json"), ""); err != nil || tab.Info().UpdatedPath != "" {
		t.Errorf("missing updated file: %v %+v", err, tab.Info())
	}
}

func TestUpdateFailureKeepsThePreviousFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.json")
	good := readTrimmed(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	if _, err := Update(t.Context(), path, UpdateOptions{URL: url, Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	few := `{"gpt-x": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}`
	for name, c := range map[string]struct {
		handler http.HandlerFunc
		timeout time.Duration
		want    string
	}{
		"bad json": {handler: func(w http.ResponseWriter, r *http.Request) { w.Write(good[:len(good)/2]) }, want: "want a JSON object of models"},
		"html":     {handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>rate limited</html>")) }, want: "want a JSON object of models"},
		"http 500": {handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, want: "HTTP 500 Internal Server Error"},
		"http 404": {handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, want: "HTTP 404 Not Found"},
		"too few":  {handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(few)) }, want: "only 1 models of OpenAI, Anthropic and Gemini, want at least 100"},
		"negative": {handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Replace(good, []byte(`"input_cost_per_token": 5e-06`), []byte(`"input_cost_per_token": -5e-06`), 1))
		}, want: "negative price"},
		"timeout": {handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}, timeout: 50 * time.Millisecond, want: "fetch prices"},
		"too large": {handler: func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte(" "), 2<<20)) }, want: "larger than"},
	} {
		ctx := context.Background()
		var cancel context.CancelFunc = func() {}
		if c.timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
		}
		_, err := Update(ctx, path, UpdateOptions{URL: serve(t, c.handler), Now: fixedNow, MaxBytes: 1 << 20})
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: the previous file changed", name)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s: left behind %v", name, entries)
		}
	}
	if !bytes.Contains(good, []byte(`"input_cost_per_token": 5e-06`)) {
		t.Error("the negative case found nothing to break")
	}
}

func TestReadUpdatedRejects(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		`{"format": "other/9", "models": []}`:                                      `format "other/9"`,
		`{"format": "llmscope-prices/1", "models": [{"model": "a", "input": -1}]}`: "negative price",
		`not json`: "updated prices",
	} {
		path := filepath.Join(dir, "p.json")
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := LoadAll(path, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadAll(%s) error = %v, want %q", content, err, want)
		}
	}
}
