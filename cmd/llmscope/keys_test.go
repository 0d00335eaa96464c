package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"

	"llmscope"
	"llmscope/auth"
)

// createKey runs `keys create` on db and returns the secret it printed:
// stdout must hold that one line and nothing else.
func createKey(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, errs, code := runCmd(t, "", append([]string{"keys", "create"}, append(args, "--db", db)...)...)
	if code != 0 {
		t.Fatalf("keys create %q: exit %d, %s", args, code, errs)
	}
	secret := strings.TrimSuffix(out, "\n")
	if strings.Contains(secret, "\n") || !strings.HasPrefix(secret, auth.SecretPrefix) || len(secret) != len(auth.SecretPrefix)+64 {
		t.Fatalf("keys create printed %q on stdout, want the secret alone", out)
	}
	if strings.Contains(errs, secret) {
		t.Errorf("keys create printed the secret on stderr too")
	}
	return secret
}

// chatAs sends one chat completion with openai-go and the key secret and
// returns the call id, or the error.
func chatAs(base, secret string) (string, error) {
	client := openai.NewClient(oaoption.WithBaseURL(base+"/v1/"), oaoption.WithAPIKey(secret), oaoption.WithMaxRetries(0))
	var raw *http.Response
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	}, oaoption.WithResponseInto(&raw))
	if err != nil {
		return "", err
	}
	return raw.Header.Get("X-Llmscope-Call-Id"), nil
}

// wantStatus checks that err is an openai-go API error with status.
func wantStatus(t *testing.T, what string, err error, status int, says string) {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
		t.Fatalf("%s: %v, want a %d", what, err, status)
	}
	if apiErr.Code != "invalid_api_key" || !strings.Contains(apiErr.Message, says) {
		t.Errorf("%s: code %q message %q, want invalid_api_key saying %q", what, apiErr.Code, apiErr.Message, says)
	}
}

// storedCall fetches the recorded call id through the API.
func storedCall(t *testing.T, base, id string) llmscope.Call {
	t.Helper()
	var c llmscope.Call
	eventually(t, "call "+id+" stored", 10*time.Second, func() bool {
		s, _, b := request(t, "GET", base+"/api/calls/"+id, "", map[string]string{"Authorization": "Bearer " + testAdminToken})
		return s == 200 && jsonInto(b, &c) == nil
	})
	return c
}

// TestKeysCommand: create prints the secret once; list shows the keys
// without secrets; duplicate and unknown names, revoked keys, bad names
// and past expiries are clear errors; read commands create no store.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "keys.db")
	if _, errs, code := runCmd(t, "", "keys", "list", "--db", db); code == 0 || !strings.Contains(errs, "no store at") {
		t.Errorf("keys list without a store: exit %d %q", code, errs)
	}
	for _, sub := range []string{"revoke", "rotate"} {
		if _, _, code := runCmd(t, "", "keys", sub, "alice", "--db", db); code == 0 {
			t.Errorf("keys %s without a store succeeded", sub)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("a read command created the store: %v", err)
	}
	if _, errs, code := runCmd(t, "", "keys", "create", "bad name", "--db", db); code == 0 || !strings.Contains(errs, "name") {
		t.Errorf("a bad name: exit %d %q", code, errs)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a refused create made a store: %v", err)
	}
	secret := createKey(t, db, "alice", "--user", "al", "--team", "red", "--models", "gpt-4o*,claude-*", "--expires", "2099-12-31")
	second := createKey(t, db, "--team", "blue", "bob") // the name after the flags
	if secret == second {
		t.Fatal("two keys got one secret")
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"create", "alice"}, `a key named "alice" exists`},
		{[]string{"create", "carol", "--expires", "2001-01-01"}, "in the past"},
		{[]string{"create", "carol", "--expires", "soon"}, "--expires"},
		{[]string{"create", "carol", "--models", "[x"}, "glob"},
		{[]string{"create"}, "name"},
		{[]string{"revoke", "nobody"}, `no key named "nobody"`},
		{[]string{"rotate", "nobody"}, `no key named "nobody"`},
	} {
		_, errs, code := runCmd(t, "", append(append([]string{"keys"}, bad.args...), "--db", db)...)
		if code == 0 || !strings.Contains(errs, bad.says) {
			t.Errorf("keys %q: exit %d, stderr %q; want it to say %q", bad.args, code, errs, bad.says)
		}
	}
	if _, _, code := runCmd(t, "", "keys", "frobnicate"); code != 2 {
		t.Errorf("an unknown subcommand: exit %d, want 2", code)
	}
	if out, errs, code := runCmd(t, "", "keys", "revoke", "bob", "--db", db); code != 0 || out != "" {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, code := runCmd(t, "", "keys", "rotate", "bob", "--db", db); code == 0 || !strings.Contains(errs, "revoked") {
		t.Errorf("rotating a revoked key: exit %d %q", code, errs)
	}
	out, errs, code := runCmd(t, "", "keys", "list", "--json", "--db", db)
	var keys []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys) != 2 {
		t.Fatalf("keys list --json: exit %d %q %q", code, out, errs)
	}
	a, b := keys[0], keys[1]
	if a["name"] != "alice" || a["user"] != "al" || a["team"] != "red" || a["revoked"] != false || a["revoked_at"] != nil ||
		!strings.HasPrefix(a["expires"].(string), "2100-01-01") || len(a["models"].([]any)) != 2 || a["created"] == nil {
		t.Errorf("alice listed as %v", a)
	}
	if b["name"] != "bob" || b["team"] != "blue" || b["revoked"] != true || b["revoked_at"] == nil {
		t.Errorf("bob listed as %v", b)
	}
	table, _, _ := runCmd(t, "", "keys", "list", "--db", db)
	if !strings.Contains(table, "alice") || !strings.Contains(table, "revoked") || !strings.Contains(table, "active") {
		t.Errorf("keys list:\n%s", table)
	}
	dump, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	for what, text := range map[string][]byte{"list --json": []byte(out), "the table": []byte(table), "the store file": dump, "its WAL": wal} {
		for _, s := range []string{secret, second} {
			if bytes.Contains(text, []byte(s)) {
				t.Errorf("%s holds a secret", what)
			}
		}
	}
}

// TestKeysServe: a key made with the keys command authenticates openai-go
// through serve and names the call's user, key and team; a forged user
// header changes nothing; rotation refuses the old secret; revocation
// through /api/keys refuses the key at once; an expired key is refused;
// no secret reaches the store file, the logs or the listings.
func TestKeysServe(t *testing.T) {
	db := filepath.Join(t.TempDir(), "calls.db")
	secret := createKey(t, db, "alice", "--user", "al", "--team", "red")
	_, base, _, stderr := startServe(t, "--db", db, "--admin-token", testAdminToken)
	admin := map[string]string{"Authorization": "Bearer " + testAdminToken, "Content-Type": "application/json"}
	secrets := []string{secret}

	id, err := chatAs(base, secret)
	if err != nil {
		t.Fatalf("openai-go with a stored key: %v", err)
	}
	if c := storedCall(t, base, id); c.User != "al" || c.Key != "alice" || c.Team != "red" {
		t.Errorf("recorded user, key, team = %q, %q, %q; want al, alice, red", c.User, c.Key, c.Team)
	}
	status, h, _ := request(t, "POST", base+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Authorization": "Bearer " + secret, "Content-Type": "application/json", "X-Llmscope-User": "mallory"})
	if status != 200 {
		t.Fatalf("with a forged user header: %d", status)
	}
	if c := storedCall(t, base, h.Get("X-Llmscope-Call-Id")); c.User != "al" || c.Key != "alice" {
		t.Errorf("a forged X-Llmscope-User: recorded user %q key %q", c.User, c.Key)
	}
	if status, _, _ := request(t, "POST", base+"/v1/chat/completions", "{}", map[string]string{"Content-Type": "application/json"}); status != 401 {
		t.Errorf("/v1 without a key on a store with keys: %d, want 401", status)
	}

	// Rotation with the command: the old secret stops within the poll
	// interval, the new one works.
	out, errs, code := runCmd(t, "", "keys", "rotate", "alice", "--db", db)
	rotated := strings.TrimSuffix(out, "\n")
	if code != 0 || !strings.HasPrefix(rotated, auth.SecretPrefix) || strings.Contains(rotated, "\n") {
		t.Fatalf("keys rotate: exit %d %q %q", code, out, errs)
	}
	secrets = append(secrets, rotated)
	start := time.Now()
	for {
		_, err := chatAs(base, secret)
		if err != nil {
			wantStatus(t, "the rotated-away secret", err, 401, "unknown")
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("the rotated-away secret still works 1 s after the rotation")
		}
	}
	t.Logf("rotation by the command took effect on serve after %v", time.Since(start))
	if _, err := chatAs(base, rotated); err != nil {
		t.Fatalf("the new secret: %v", err)
	}

	// Revocation through the API: refused on the very next request.
	if status, _, b := request(t, "POST", base+"/api/keys/alice/revoke", "", map[string]string{"Content-Type": "application/json"}); status != 401 {
		t.Fatalf("revoke without the admin token: %d %s", status, b)
	}
	if status, _, b := request(t, "POST", base+"/api/keys/alice/revoke", "", admin); status != 200 {
		t.Fatalf("revoke: %d %s", status, b)
	}
	_, err = chatAs(base, rotated)
	wantStatus(t, "the revoked key, right after", err, 401, "revoked")

	// Expiry: a key made through the API that expires in a moment.
	expires := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond)
	status, _, body := request(t, "POST", base+"/api/keys", `{"name":"brief","team":"blue","expires":"`+expires.Format(time.RFC3339Nano)+`"}`, admin)
	var made struct{ Secret string }
	if status != 201 || jsonInto(body, &made) != nil || made.Secret == "" {
		t.Fatalf("POST /api/keys: %d %s", status, body)
	}
	secrets = append(secrets, made.Secret)
	if _, err := chatAs(base, made.Secret); err != nil && time.Now().Before(expires) {
		t.Fatalf("the key before its expiry: %v", err)
	}
	time.Sleep(time.Until(expires))
	_, err = chatAs(base, made.Secret)
	wantStatus(t, "the key after its expiry", err, 401, "expired")

	listJSON, _, _ := runCmd(t, "", "keys", "list", "--json", "--db", db)
	_, _, apiList := request(t, "GET", base+"/api/keys", "", admin)
	var calls bytes.Buffer
	run(context.Background(), []string{"calls", "--db", db, "--json"}, nil, &calls, &bytes.Buffer{})
	dump, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	for what, text := range map[string][]byte{"keys list --json": []byte(listJSON), "GET /api/keys": []byte(apiList),
		"calls --json": calls.Bytes(), "the store file": dump, "its WAL": wal, "serve's log": []byte(stderr.String())} {
		for _, s := range secrets {
			if bytes.Contains(text, []byte(s)) {
				t.Errorf("%s holds a secret", what)
			}
		}
	}
	if !strings.Contains(apiList, `"brief"`) || !strings.Contains(apiList, `"revoked":true`) {
		t.Errorf("GET /api/keys: %s", apiList)
	}
}

// TestKeysAcrossGateways: two serves on one Postgres; a key revoked
// through one is refused by it at once and by the other within 1 s (the
// poll interval is 100 ms).
func TestKeysAcrossGateways(t *testing.T) {
	url := newPostgresDB(t)
	secret := createKey(t, url, "alice", "--user", "al", "--team", "red")
	_, a, _, _ := startServe(t, "--db", url, "--admin-token", testAdminToken)
	_, b, _, _ := startServe(t, "--db", url, "--admin-token", testAdminToken)
	for _, base := range []string{a, b} {
		id, err := chatAs(base, secret)
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if c := storedCall(t, base, id); c.User != "al" || c.Key != "alice" || c.Team != "red" {
			t.Errorf("%s: recorded user, key, team = %q, %q, %q", base, c.User, c.Key, c.Team)
		}
	}
	admin := map[string]string{"Authorization": "Bearer " + testAdminToken}
	if status, _, body := request(t, "POST", a+"/api/keys/alice/revoke", "", admin); status != 200 {
		t.Fatalf("revoke on a: %d %s", status, body)
	}
	revoked := time.Now()
	_, err := chatAs(a, secret)
	wantStatus(t, "the revoking gateway, at once", err, 401, "revoked")
	for {
		_, err := chatAs(b, secret)
		if err != nil {
			wantStatus(t, "the other gateway", err, 401, "revoked")
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("the other gateway still accepts the revoked key 1 s after the revocation")
		}
	}
	t.Logf("the other gateway refused the revoked key %v after the revocation", time.Since(revoked))
}

// TestKeysCountAsClientAuthentication: serve on a non-loopback address
// with the admin token and a provider key of its own refuses to run with
// /v1 open, and runs once the store holds a key.
func TestKeysCountAsClientAuthentication(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "c.db")
	start := func() (exited bool, stderr string) {
		cmd := exec.Command(bin, "serve", "--addr", "0.0.0.0:0", "--db", db, "--admin-token", testAdminToken,
			"--upstream", "http://127.0.0.1:9/v1") // never reached
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "OPENAI_API_KEY=sk-server-0123456789", "OPENAI_BASE_URL=")
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case err := <-done:
				return err != nil, errb.String()
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatal("serve neither exited nor listened")
			case <-time.After(50 * time.Millisecond):
				if strings.Contains(out.String(), "listening on") {
					_ = cmd.Process.Kill()
					<-done
					return false, errb.String()
				}
			}
		}
	}
	if exited, stderr := start(); !exited || !strings.Contains(stderr, "--client-keys") {
		t.Fatalf("without keys: exited %t, stderr %q", exited, stderr)
	}
	createKey(t, db, "alice")
	if exited, stderr := start(); exited {
		t.Errorf("with a stored key: refused: %s", stderr)
	}
}
