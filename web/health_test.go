package web_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"llmscope/auth"
	"llmscope/sqlite"
	"llmscope/web"
)

// TestHealthzHidesDetailsFromTheNetwork: behind a guard with an admin
// token, /healthz stays open and tells what fails, but only a caller with
// the token sees the errors, which may name internal addresses.
func TestHealthzHidesDetailsFromTheNetwork(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const token = "health-admin-token-0123"
	hash := auth.HashToken(token)
	guard, err := auth.New(auth.Config{AdminTokenHash: &hash})
	if err != nil {
		t.Fatal(err)
	}
	failing := func() error { return errors.New(`mlflow: Post "http://10.0.0.5:5000/v1/traces": connection refused`) }
	srv := httptest.NewServer(guard.Wrap(web.New(store, map[string]web.Health{"export_mlflow": failing}, nil)))
	defer srv.Close()
	get := func(authz string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"export_mlflow":"failing"`) || strings.Contains(body, "10.0.0.5") {
		t.Errorf("open /healthz = %d %s", status, body)
	}
	if status, body := get("Bearer " + token); status != http.StatusServiceUnavailable || !strings.Contains(body, "10.0.0.5") {
		t.Errorf("/healthz with the token = %d %s, want the details", status, body)
	}
}
