package web_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"llmscope"
	"llmscope/auth"
	"llmscope/sqlite"
	"llmscope/web"
)

const keysAdminToken = "admin-token-0123456789abcdef"

// TestKeysAPI drives /api/keys behind the guard, as serve mounts it: the
// admin token is needed, a created key works on /v1 at once, a revoked or
// rotated-away secret is refused at once, and no secret or hash shows up
// in a listing, an error or the log.
func TestKeysAPI(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sk, err := auth.NewStoreKeys(ctx, store, auth.StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := web.New(store, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h.MountKeys(store, sk.Refresh)
	adminHash := auth.HashToken(keysAdminToken)
	mux := http.NewServeMux()
	var gotKey *llmscope.ClientKey
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		gotKey, _ = llmscope.ClientKeyFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("/", h)
	g, err := auth.New(auth.Config{AdminTokenHash: &adminHash, StoredKeys: sk, AllowedHosts: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Wrap(mux))
	defer srv.Close()

	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	chat := func(secret string) int {
		code, _ := do("POST", "/v1/chat/completions", secret, `{}`)
		return code
	}
	var secrets []string
	wantErr := func(code int, body string, status int, errCode string) {
		t.Helper()
		var e struct {
			Error struct{ Message, Type, Code string }
		}
		if code != status || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != errCode || e.Error.Type == "" || e.Error.Message == "" {
			t.Errorf("status %d body %s; want %d code %s", code, body, status, errCode)
		}
	}

	expect := func(method, path, body string, status int, errCode string) {
		t.Helper()
		code, got := do(method, path, keysAdminToken, body)
		wantErr(code, got, status, errCode)
	}
	if code, _ := do("GET", "/api/keys", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/keys without the admin token: %d", code)
	}
	if code, _ := do("POST", "/api/keys", "", `{"name":"x"}`); code != http.StatusUnauthorized {
		t.Fatalf("POST /api/keys without the admin token: %d", code)
	}
	code, body := do("POST", "/api/keys", keysAdminToken, `{"name":"alice","user":"al","team":"red","models":"gpt-4o*, claude-*","expires":"30d"}`)
	var created struct {
		Name, User, Team, Secret string
		Models                   []string
		Expires                  string
	}
	if err := json.Unmarshal([]byte(body), &created); code != http.StatusCreated || err != nil {
		t.Fatalf("create: %d %s", code, body)
	}
	if created.Name != "alice" || created.User != "al" || created.Team != "red" || len(created.Models) != 2 || created.Expires == "" ||
		!strings.HasPrefix(created.Secret, auth.SecretPrefix) {
		t.Errorf("create answered %s", body)
	}
	secrets = append(secrets, created.Secret)
	if c := chat(created.Secret); c != http.StatusOK || gotKey == nil || gotKey.Name != "alice" || gotKey.Team != "red" || gotKey.User != "al" {
		t.Fatalf("the new key on /v1: %d, %+v", c, gotKey)
	}

	expect("POST", "/api/keys", `{"name":"alice"}`, http.StatusConflict, "key_exists")
	expect("POST", "/api/keys", `{"name":""}`, http.StatusBadRequest, "invalid_key")
	expect("POST", "/api/keys", `{"name":"bad name"}`, http.StatusBadRequest, "invalid_key")
	expect("POST", "/api/keys", `{"name":"b","models":["[x"]}`, http.StatusBadRequest, "invalid_key")
	expect("POST", "/api/keys", `{"name":"b","expires":"tomorrow"}`, http.StatusBadRequest, "invalid_key")
	expect("POST", "/api/keys", `{"name":"b","secret":"mine"}`, http.StatusBadRequest, "invalid_request")
	expect("POST", "/api/keys", `not json`, http.StatusBadRequest, "invalid_request")
	expect("POST", "/api/keys/nobody/revoke", "", http.StatusNotFound, "key_not_found")
	expect("POST", "/api/keys/nobody/rotate", "", http.StatusNotFound, "key_not_found")

	code, body = do("POST", "/api/keys/alice/rotate", keysAdminToken, "")
	var rotated struct {
		Name, Secret string
		RotatedAt    string `json:"rotated_at"`
	}
	if err := json.Unmarshal([]byte(body), &rotated); code != http.StatusOK || err != nil || rotated.Name != "alice" ||
		rotated.Secret == created.Secret || rotated.RotatedAt == "" || !strings.HasPrefix(rotated.Secret, auth.SecretPrefix) {
		t.Fatalf("rotate: %d %s", code, body)
	}
	secrets = append(secrets, rotated.Secret)
	if c := chat(created.Secret); c != http.StatusUnauthorized {
		t.Errorf("the rotated-away secret right after the rotation: %d, want 401", c)
	}
	if c := chat(rotated.Secret); c != http.StatusOK {
		t.Errorf("the new secret: %d", c)
	}

	code, body = do("POST", "/api/keys/alice/revoke", keysAdminToken, "")
	if code != http.StatusOK || !strings.Contains(body, `"revoked":true`) || strings.Contains(body, "secret") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	code, body = do("POST", "/v1/chat/completions", rotated.Secret, `{}`)
	wantErr(code, body, http.StatusUnauthorized, "invalid_api_key")
	if !strings.Contains(body, "revoked") {
		t.Errorf("a revoked key's refusal does not say so: %s", body)
	}
	expect("POST", "/api/keys/alice/rotate", "", http.StatusConflict, "key_revoked")
	if code, _ := do("POST", "/api/keys/alice/revoke", keysAdminToken, ""); code != http.StatusOK {
		t.Errorf("revoking a revoked key: %d, want 200 (nothing changes)", code)
	}

	code, body = do("GET", "/api/keys", keysAdminToken, "")
	var list struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list.Keys) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, field := range []string{"name", "user", "team", "models", "expires", "revoked", "created", "revoked_at", "rotated_at"} {
		if _, ok := list.Keys[0][field]; !ok {
			t.Errorf("list lacks %s: %s", field, body)
		}
	}
	for _, s := range secrets {
		sum := auth.HashSecret(s)
		for where, text := range map[string]string{"list": body, "log": logs.String()} {
			if strings.Contains(text, s) || strings.Contains(text, hex.EncodeToString(sum[:])) {
				t.Errorf("the %s shows a secret or its hash", where)
			}
		}
	}
	if !strings.Contains(logs.String(), "client key revoked") {
		t.Errorf("changes are not logged: %s", logs.String())
	}
}
