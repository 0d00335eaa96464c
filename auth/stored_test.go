package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"llmscope"
	"llmscope/budget"
	"llmscope/sqlite"
)

// countingStore is a real SQLite store counting the KeyByHash reads that
// reach it, and able to fail them.
type countingStore struct {
	*sqlite.Store
	byHash atomic.Int64
	down   atomic.Bool
	hold   chan struct{} // when set, KeyByHash waits for it to close
}

var errDown = errors.New("store down")

func (c *countingStore) KeyByHash(ctx context.Context, h [32]byte) (budget.StoredKey, error) {
	c.byHash.Add(1)
	if c.hold != nil {
		<-c.hold
	}
	if c.down.Load() {
		return budget.StoredKey{}, errDown
	}
	return c.Store.KeyByHash(ctx, h)
}

func (c *countingStore) KeysVersion(ctx context.Context) (int64, error) {
	if c.down.Load() {
		return 0, errDown
	}
	return c.Store.KeysVersion(ctx)
}

func newKeyStore(t testing.TB) *countingStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &countingStore{Store: s}
}

func mustCreate(t testing.TB, ks budget.KeyStore, k budget.Key) string {
	t.Helper()
	secret, err := CreateKey(context.Background(), ks, k)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestStoreKeysCacheDroppedOnVersionChange(t *testing.T) {
	ctx := t.Context()
	ks := newKeyStore(t)
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if sk.Any() {
		t.Fatal("Any() on an empty store")
	}
	secret := mustCreate(t, ks, budget.Key{Name: "alice", User: "al", Team: "red"})
	if sk.Any() {
		t.Fatal("Any() changed before a Refresh")
	}
	if err := sk.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !sk.Any() {
		t.Fatal("Any() false after a key was stored and refreshed")
	}
	now := time.Now()
	for range 3 {
		k, err := sk.Lookup(ctx, HashSecret(secret), now)
		if err != nil || k.Name != "alice" || k.User != "al" || k.Team != "red" {
			t.Fatalf("Lookup = %+v, %v", k, err)
		}
	}
	if n := ks.byHash.Load(); n != 1 {
		t.Errorf("3 lookups of a warm key read the store %d times, want 1", n)
	}
	if err := ks.RevokeKey(ctx, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), now); err != nil {
		t.Fatalf("cached key refused before the version was polled: %v", err)
	}
	if err := sk.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), now); !errors.Is(err, budget.ErrRevoked) {
		t.Fatalf("revoked key after Refresh: %v, want ErrRevoked", err)
	}
	// Unknown keys are remembered too, until the version changes.
	fresh, _ := NewSecret()
	for range 3 {
		if _, err := sk.Lookup(ctx, HashSecret(fresh), now); !errors.Is(err, budget.ErrKeyNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	before := ks.byHash.Load()
	if _, err := sk.Lookup(ctx, HashSecret(fresh), now); !errors.Is(err, budget.ErrKeyNotFound) || ks.byHash.Load() != before {
		t.Errorf("an unknown key was read again from the store (%v)", err)
	}
	// Rotation: after the version change the old secret is unknown, the new one found.
	bob := mustCreate(t, ks, budget.Key{Name: "bob"})
	if err := sk.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(bob), now); err != nil {
		t.Fatal(err)
	}
	bob2, err := RotateKey(ctx, ks, "bob", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(bob), now); !errors.Is(err, budget.ErrKeyNotFound) {
		t.Errorf("old secret after rotation: %v", err)
	}
	if k, err := sk.Lookup(ctx, HashSecret(bob2), now); err != nil || k.Name != "bob" {
		t.Errorf("new secret after rotation: %+v, %v", k, err)
	}
}

// TestStoreKeysOneReadForConcurrentMisses: requests missing one key at
// the same time share one store read.
func TestStoreKeysOneReadForConcurrentMisses(t *testing.T) {
	ctx := t.Context()
	ks := newKeyStore(t)
	secret := mustCreate(t, ks, budget.Key{Name: "alice"})
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ks.hold = make(chan struct{})
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := sk.Lookup(ctx, HashSecret(secret), time.Now())
			errs <- err
		}()
	}
	for ks.byHash.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others miss too; fewer only weakens the test
	close(ks.hold)
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := ks.byHash.Load(); n != 1 {
		t.Errorf("20 concurrent misses read the store %d times, want 1", n)
	}
}

func TestStoreKeysRunPolls(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ks := newKeyStore(t)
	secret := mustCreate(t, ks, budget.Key{Name: "alice"})
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { sk.Run(ctx); close(done) }()
	if _, err := sk.Lookup(ctx, HashSecret(secret), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ks.RevokeKey(ctx, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := sk.Lookup(ctx, HashSecret(secret), time.Now())
		if errors.Is(err, budget.ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the poller sees the revocation; the test's deadline bounds the wait
	}
	cancel()
	<-done
}

func TestStoreKeysExpiryPerRequest(t *testing.T) {
	ctx := t.Context()
	ks := newKeyStore(t)
	exp := time.Now().Add(time.Hour)
	secret := mustCreate(t, ks, budget.Key{Name: "alice", Expires: exp})
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), exp.Add(-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), exp); !errors.Is(err, budget.ErrExpired) {
		t.Errorf("at its expiry: %v, want ErrExpired (no poll needed)", err)
	}
}

func TestStoreKeysBounded(t *testing.T) {
	ctx := t.Context()
	ks := newKeyStore(t)
	var secrets []string
	for i := range 5 {
		secrets = append(secrets, mustCreate(t, ks, budget.Key{Name: fmt.Sprintf("k%d", i)}))
	}
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{MaxKeys: 2, MaxUnknown: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 50 {
		if _, err := sk.Lookup(ctx, HashSecret(fmt.Sprint("unknown-", i)), now); !errors.Is(err, budget.ErrKeyNotFound) {
			t.Fatal(err)
		}
		if _, unknown := sk.cached(); unknown > 3 {
			t.Fatalf("after %d unknown keys the cache holds %d, bound 3", i+1, unknown)
		}
	}
	for _, s := range secrets {
		if _, err := sk.Lookup(ctx, HashSecret(s), now); err != nil {
			t.Fatal(err)
		}
		if known, _ := sk.cached(); known > 2 {
			t.Fatalf("the cache holds %d keys, bound 2", known)
		}
	}
	if known, unknown := sk.cached(); known != 2 || unknown != 3 {
		t.Errorf("cached %d known, %d unknown; want the bounds 2, 3", known, unknown)
	}
}

func TestStoreKeysOutageKeepsCache(t *testing.T) {
	ctx := t.Context()
	ks := newKeyStore(t)
	secret := mustCreate(t, ks, budget.Key{Name: "alice"})
	sk, err := NewStoreKeys(ctx, ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), time.Now()); err != nil {
		t.Fatal(err)
	}
	ks.down.Store(true)
	if err := sk.Refresh(ctx); !errors.Is(err, errDown) {
		t.Fatalf("Refresh on a failing store: %v", err)
	}
	if _, err := sk.Lookup(ctx, HashSecret(secret), time.Now()); err != nil {
		t.Errorf("a cached key during an outage: %v", err)
	}
	other, _ := NewSecret()
	if _, err := sk.Lookup(ctx, HashSecret(other), time.Now()); !errors.Is(err, errStoreKeys) || !errors.Is(err, errDown) {
		t.Errorf("an uncached key during an outage: %v, want errStoreKeys wrapping the store's", err)
	}
}

// storedGuard returns a guard over a fresh store holding alice (user al,
// team red), an expiring key and a revoked one, with their secrets.
func storedGuard(t testing.TB, cfg Config, clk *clock) (http.Handler, *recorder, map[string]string) {
	t.Helper()
	ks := newKeyStore(t)
	secrets := map[string]string{
		"alice":   mustCreate(t, ks, budget.Key{Name: "alice", User: "al", Team: "red", Models: []string{"gpt-4o*"}}),
		"nouser":  mustCreate(t, ks, budget.Key{Name: "nouser"}),
		"expires": mustCreate(t, ks, budget.Key{Name: "expires", Expires: clk.Now().Add(time.Minute)}),
		"revoked": mustCreate(t, ks, budget.Key{Name: "revoked"}),
	}
	if err := ks.RevokeKey(context.Background(), "revoked", time.Now()); err != nil {
		t.Fatal(err)
	}
	sk, err := NewStoreKeys(context.Background(), ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.StoredKeys, cfg.Now = sk, clk.Now
	next := &recorder{}
	return newGuard(t, cfg).Wrap(next), next, secrets
}

func TestGuardStoredKeys(t *testing.T) {
	clk := newClock()
	h, next, secrets := storedGuard(t, Config{AdminTokenHash: adminHash()}, clk)
	for _, tc := range []struct {
		hdr             []string
		user, key, team string
	}{
		{[]string{"Authorization", "Bearer " + secrets["alice"], "X-Llmscope-User", "mallory"}, "al", "alice", "red"},
		{[]string{"X-Api-Key", secrets["alice"]}, "al", "alice", "red"},
		{[]string{"Api-Key", secrets["nouser"]}, "nouser", "nouser", ""},
		{[]string{"X-Goog-Api-Key", secrets["expires"]}, "expires", "expires", ""},
	} {
		if w := serve(h, req("POST", "/v1/chat/completions", tc.hdr...)); w.Code != 200 {
			t.Fatalf("%v: status %d, body %s", tc.hdr[0], w.Code, w.Body)
		}
		got := next.last(t)
		if u := got.Header.Values("X-Llmscope-User"); len(u) != 1 || u[0] != tc.user {
			t.Errorf("%s: X-Llmscope-User = %q, want %q", tc.hdr[0], u, tc.user)
		}
		k, ok := llmscope.ClientKeyFrom(got.Context())
		if !ok || k.Name != tc.key || k.Team != tc.team || k.CallUser() != tc.user {
			t.Errorf("%s: context key %+v (%v)", tc.hdr[0], k, ok)
		}
		if name, ok := llmscope.ClientFrom(got.Context()); !ok || name != tc.key {
			t.Errorf("ClientFrom = %q, %v", name, ok)
		}
		for _, c := range credentialHeaders {
			if got.Header.Get(c) != "" {
				t.Errorf("%s reached next", c)
			}
		}
	}
	n := next.count()
	for _, tc := range []struct {
		name, secret, msg string
	}{
		{"revoked", secrets["revoked"], "revoked"},
		{"unknown", "sk-llms-0000", "missing or unknown"},
		{"none", "", "missing or unknown"},
	} {
		var r *http.Request
		if tc.secret == "" {
			r = req("POST", "/v1/chat/completions")
		} else {
			r = req("POST", "/v1/chat/completions", "Authorization", "Bearer "+tc.secret)
		}
		w := serve(h, r)
		wantError(t, w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key")
		if !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: body %s does not say %q", tc.name, w.Body, tc.msg)
		}
		if tc.secret != "" && strings.Contains(w.Body.String(), tc.secret) {
			t.Errorf("%s: the error echoes the key", tc.name)
		}
	}
	clk.Add(time.Minute)
	w := serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer "+secrets["expires"]))
	wantError(t, w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key")
	if !strings.Contains(w.Body.String(), "expired") {
		t.Errorf("expired key: body %s", w.Body)
	}
	if next.count() != n {
		t.Errorf("a refused request reached next")
	}
}

func TestGuardStoredKeysWithPassProviderKeys(t *testing.T) {
	h, next, secrets := storedGuard(t, Config{PassProviderKeys: true}, newClock())
	w := serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer sk-proj-provider", "X-Llmscope-User", "mallory"))
	if w.Code != 200 {
		t.Fatalf("provider key: %d %s", w.Code, w.Body)
	}
	got := next.last(t)
	if _, ok := llmscope.ClientKeyFrom(got.Context()); ok || got.Header.Get("X-Llmscope-User") != "" || got.Header.Get("Authorization") == "" {
		t.Errorf("a provider key was taken for a client key, or the forged user kept")
	}
	wantError(t, serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer "+secrets["revoked"])),
		http.StatusUnauthorized, "invalid_request_error", "invalid_api_key")
	if w := serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer "+secrets["alice"])); w.Code != 200 {
		t.Fatalf("stored key: %d", w.Code)
	}
	if _, ok := llmscope.ClientKeyFrom(next.last(t).Context()); !ok {
		t.Error("a stored key did not mark the request as key-authenticated")
	}
}

func TestGuardStoreWithoutKeysStaysOpen(t *testing.T) {
	ks := newKeyStore(t)
	sk, err := NewStoreKeys(t.Context(), ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := &recorder{}
	g := newGuard(t, Config{StoredKeys: sk})
	h := g.Wrap(next)
	if _, clients := g.Protected(); clients {
		t.Error("Protected with an empty store")
	}
	if w := serve(h, req("POST", "/v1/chat/completions", "X-Llmscope-User", "bob")); w.Code != 200 {
		t.Fatalf("open gateway: %d", w.Code)
	}
	if next.last(t).Header.Get("X-Llmscope-User") != "bob" {
		t.Error("the open gateway dropped the user label")
	}
	// The first stored key closes /v1; revoking it does not reopen it.
	mustCreate(t, ks, budget.Key{Name: "alice"})
	if err := ks.RevokeKey(t.Context(), "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := sk.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, clients := g.Protected(); !clients {
		t.Error("not Protected with a (revoked) key in the store")
	}
	wantError(t, serve(h, req("POST", "/v1/chat/completions")), http.StatusUnauthorized, "invalid_request_error", "invalid_api_key")
}

func TestGuardKeyStoreOutage(t *testing.T) {
	ks := newKeyStore(t)
	mustCreate(t, ks, budget.Key{Name: "alice"})
	sk, err := NewStoreKeys(t.Context(), ks, StoreKeysConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := newGuard(t, Config{StoredKeys: sk}).Wrap(&recorder{})
	ks.down.Store(true)
	w := serve(h, req("POST", "/v1/chat/completions", "Authorization", "Bearer sk-llms-new"))
	wantError(t, w, http.StatusServiceUnavailable, "server_error", "key_store_unavailable")
	if strings.Contains(w.Body.String(), errDown.Error()) {
		t.Errorf("the store's error reached the client: %s", w.Body)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"30d":                  now.AddDate(0, 0, 30),
		"12h":                  now.Add(12 * time.Hour),
		"2026-12-31":           time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-31T10:00:00Z": time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-3d", "0d", "-1h", "31/12/2026"} {
		if _, err := ParseExpiry(bad, now); err == nil {
			t.Errorf("ParseExpiry(%q) accepted", bad)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+64 {
		t.Errorf("secrets %q, %q", a, b)
	}
	if err := CheckKey(&budget.Key{Name: "a/b"}); err == nil {
		t.Error("a name with a slash accepted")
	}
	if err := CheckKey(&budget.Key{Name: "a", Team: "x\ny"}); err == nil {
		t.Error("a team with a newline accepted")
	}
}

// BenchmarkWrapStoredKey measures the guard on a /v1 request without
// keys, with a file key, and with a warm stored key: the difference is
// what checking a stored key adds per request.
func BenchmarkWrapStoredKey(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	ks := newKeyStore(b)
	secret := mustCreate(b, ks, budget.Key{Name: "alice", User: "al", Team: "red"})
	sk, err := NewStoreKeys(context.Background(), ks, StoreKeysConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		cfg  Config
		auth string
	}{
		{"keys=off", Config{MaxInflight: 1024}, "Bearer sk-proj-provider-key"},
		{"keys=file", Config{MaxInflight: 1024, ClientKeys: mustKeys(b)}, "Bearer " + aliceKey},
		{"keys=stored", Config{MaxInflight: 1024, StoredKeys: sk}, "Bearer " + secret},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newGuard(b, bc.cfg).Wrap(next)
			r := req("POST", "/v1/chat/completions", "Authorization", bc.auth, "Content-Type", "application/json")
			w := &discard{h: http.Header{}}
			h.ServeHTTP(w, r) // warm
			if ks.byHash.Load() > 1 {
				b.Fatal("the stored key is not cached")
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
