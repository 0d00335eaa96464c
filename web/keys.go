package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"llmscope/auth"
	"llmscope/budget"
)

// keysAPI serves /api/keys over a KeyStore.
type keysAPI struct {
	ks      budget.KeyStore
	changed func(context.Context) error
	h       *Handler
}

// MountKeys serves the client keys of ks under /api/keys (the guard in
// front asks for the admin token):
//
//	GET  /api/keys               {"keys":[…]}, sorted by name
//	POST /api/keys               {name,user,team,models,expires} → 201, the key and its "secret"
//	POST /api/keys/{name}/revoke the key, revoked
//	POST /api/keys/{name}/rotate the key and its new "secret"
//
// A secret appears once, in the answer that made it; no answer, log line
// or list shows a secret or a hash. changed, when not nil, runs after
// every change (the guard's StoreKeys.Refresh: the change holds on this
// gateway at once). Errors are OpenAI error bodies: 400 a malformed or
// invalid key, 404 an unknown name, 409 a name in use or a revoked key
// to rotate. Call it before serving.
func (h *Handler) MountKeys(ks budget.KeyStore, changed func(context.Context) error) {
	k := &keysAPI{ks: ks, changed: changed, h: h}
	h.mux.HandleFunc("GET /api/keys", k.list)
	h.mux.HandleFunc("POST /api/keys", k.create)
	h.mux.HandleFunc("POST /api/keys/{name}/revoke", k.revoke)
	h.mux.HandleFunc("POST /api/keys/{name}/rotate", k.rotate)
}

// keyRequest is the body of POST /api/keys. Models is a list of globs or
// one comma-separated string; Expires is what auth.ParseExpiry reads.
type keyRequest struct {
	Name    string          `json:"name"`
	User    string          `json:"user"`
	Team    string          `json:"team"`
	Models  json.RawMessage `json:"models"`
	Expires string          `json:"expires"`
}

// KeyJSON is a stored key as /api/keys and `keys list --json` show it:
// every field present (null times when unset), never a secret or hash.
type KeyJSON struct {
	Name      string     `json:"name"`
	User      string     `json:"user"`
	Team      string     `json:"team"`
	Models    []string   `json:"models"` // [] allows every model
	Expires   *time.Time `json:"expires"`
	Revoked   bool       `json:"revoked"`
	Created   time.Time  `json:"created"`
	RevokedAt *time.Time `json:"revoked_at"`
	RotatedAt *time.Time `json:"rotated_at"`
}

// KeyView returns k as KeyJSON.
func KeyView(k budget.StoredKey) KeyJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	models := k.Models
	if models == nil {
		models = []string{}
	}
	return KeyJSON{Name: k.Name, User: k.User, Team: k.Team, Models: models, Expires: opt(k.Expires),
		Revoked: k.Revoked || !k.RevokedAt.IsZero(), Created: k.Created, RevokedAt: opt(k.RevokedAt), RotatedAt: opt(k.Rotated)}
}

// KeyViews returns keys as KeyJSON, never nil.
func KeyViews(keys []budget.StoredKey) []KeyJSON {
	out := make([]KeyJSON, 0, len(keys))
	for _, k := range keys {
		out = append(out, KeyView(k))
	}
	return out
}

// keyWithSecret is a key as the answer that made its secret shows it.
type keyWithSecret struct {
	KeyJSON
	Secret string `json:"secret"`
}

// maxKeyRequest bounds the body of POST /api/keys.
const maxKeyRequest = 64 << 10

func (k *keysAPI) list(w http.ResponseWriter, r *http.Request) {
	keys, err := k.ks.ListKeys(r.Context())
	if err != nil {
		k.fail(w, "list keys", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": KeyViews(keys)})
}

func (k *keysAPI) create(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxKeyRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		keyError(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object with name, user, team, models, expires: "+err.Error())
		return
	}
	models, err := parseModels(req.Models)
	if err != nil {
		keyError(w, http.StatusBadRequest, "invalid_key", err.Error())
		return
	}
	now := time.Now()
	expires, err := auth.ParseExpiry(req.Expires, now)
	if err != nil {
		keyError(w, http.StatusBadRequest, "invalid_key", err.Error())
		return
	}
	if !expires.IsZero() && !expires.After(now) {
		keyError(w, http.StatusBadRequest, "invalid_key", "expires is in the past")
		return
	}
	key := budget.Key{Name: req.Name, User: req.User, Team: req.Team, Models: models, Expires: expires}
	secret, err := auth.CreateKey(r.Context(), k.ks, key)
	if err != nil {
		k.fail(w, "create key", err)
		return
	}
	k.didChange(r.Context())
	stored, err := k.ks.KeyByHash(r.Context(), auth.HashSecret(secret))
	if err != nil { // stored a moment ago: answer with what was asked
		stored = budget.StoredKey{Key: key, Created: now}
	}
	k.h.log.Info("client key created", "key", stored.String())
	writeJSON(w, http.StatusCreated, keyWithSecret{KeyView(stored), secret})
}

func (k *keysAPI) revoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := k.ks.RevokeKey(r.Context(), name, time.Now()); err != nil {
		k.fail(w, "revoke key", err)
		return
	}
	k.didChange(r.Context())
	stored, err := k.byName(r.Context(), name)
	if err != nil {
		k.fail(w, "revoke key", err)
		return
	}
	k.h.log.Info("client key revoked", "key", stored.String())
	writeJSON(w, http.StatusOK, KeyView(stored))
}

func (k *keysAPI) rotate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	secret, err := auth.RotateKey(r.Context(), k.ks, name, time.Now())
	if err != nil {
		k.fail(w, "rotate key", err)
		return
	}
	k.didChange(r.Context())
	stored, err := k.ks.KeyByHash(r.Context(), auth.HashSecret(secret))
	if err != nil {
		k.fail(w, "rotate key", err)
		return
	}
	k.h.log.Info("client key rotated", "key", stored.String())
	writeJSON(w, http.StatusOK, keyWithSecret{KeyView(stored), secret})
}

// didChange runs the changed hook; its failure only delays the change
// on this gateway to its next poll.
func (k *keysAPI) didChange(ctx context.Context) {
	if k.changed == nil {
		return
	}
	if err := k.changed(ctx); err != nil {
		k.h.log.Warn("client keys changed but not re-read; the next poll will", "err", err)
	}
}

// byName returns the named key.
func (k *keysAPI) byName(ctx context.Context, name string) (budget.StoredKey, error) {
	keys, err := k.ks.ListKeys(ctx)
	if err != nil {
		return budget.StoredKey{}, err
	}
	for _, s := range keys {
		if s.Name == name {
			return s, nil
		}
	}
	return budget.StoredKey{}, fmt.Errorf("key %q: %w", name, budget.ErrKeyNotFound)
}

// fail answers err of a KeyStore: the client's faults by kind, anything
// else a 500 logged here (store errors name no secret: the stores are
// given hashes only and do not print them).
func (k *keysAPI) fail(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, budget.ErrInvalidKey):
		keyError(w, http.StatusBadRequest, "invalid_key", err.Error())
	case errors.Is(err, budget.ErrKeyNotFound):
		keyError(w, http.StatusNotFound, "key_not_found", "no key has this name")
	case errors.Is(err, budget.ErrKeyExists):
		keyError(w, http.StatusConflict, "key_exists", "a key with this name exists")
	case errors.Is(err, budget.ErrRevoked):
		keyError(w, http.StatusConflict, "key_revoked", "the key is revoked: create a new one")
	default:
		k.h.log.Error(what, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]any{
			"message": what + " failed; see the gateway's log", "type": "server_error", "param": nil, "code": "internal_error"}})
	}
}

// keyError answers with OpenAI's error body shape and a code.
func keyError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": code}})
}

// parseModels reads models as a JSON list of strings or one
// comma-separated string; absent or null is none.
func parseModels(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("models must be a list of model globs or one comma-separated string")
	}
	return SplitModels(s), nil
}

// SplitModels splits a comma-separated list of model globs, dropping
// blanks.
func SplitModels(s string) []string {
	var out []string
	for m := range strings.SplitSeq(s, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}
