package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"llmscope/budget"
)

// KeyStore is what RunKeys tests: a budget.KeyStore that closes.
type KeyStore interface {
	budget.KeyStore
	Close() error
}

// RunKeys runs the contract of budget.KeyStore as subtests of t: keys read
// back as created (owner, models, expiry, creation time); names and hashes
// are unique (ErrKeyExists) and lookups of unknown ones fail with
// ErrKeyNotFound; ListKeys sorts by name and shows no hash; a revocation
// or a rotation is seen at once through another store on the same
// database; every change, and nothing else, bumps KeysVersion; keys with
// NUL bytes or invalid UTF-8 are refused (ErrInvalidKey) on every store;
// concurrent creations of one name from several stores leave exactly one.
//
// newDB is called once per subtest; it returns a function that opens
// another store on one new, empty database each time it is called (as
// another gateway would) and closes it when the subtest ends.
func RunKeys(t *testing.T, newDB func(t *testing.T) func() KeyStore) {
	t.Helper()
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, open func() KeyStore)
	}{
		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyExists", testKeyExists},
		{"KeyNotFound", testKeyNotFound},
		{"KeyList", testKeyList},
		{"KeyRevoke", testKeyRevoke},
		{"KeyRotate", testKeyRotate},
		{"KeyVersion", testKeyVersion},
		{"KeyInvalid", testKeyInvalid},
		{"KeyAcrossStores", testKeyAcrossStores},
		{"KeyCreateRace", testKeyCreateRace},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDB(t)) })
	}
}

// secretHash is the hash of the secret of key name, rotation r.
func secretHash(name string, r int) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "sk-%s-%d", name, r))
}

func createKey(t *testing.T, s KeyStore, k budget.Key, hash [32]byte) {
	t.Helper()
	if err := s.CreateKey(t.Context(), k, hash); err != nil {
		t.Fatalf("CreateKey(%q): %v", k.Name, err)
	}
}

func keyByHash(t *testing.T, s KeyStore, hash [32]byte) budget.StoredKey {
	t.Helper()
	k, err := s.KeyByHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	return k
}

func keysVersion(t *testing.T, s KeyStore) int64 {
	t.Helper()
	v, err := s.KeysVersion(t.Context())
	if err != nil {
		t.Fatalf("KeysVersion: %v", err)
	}
	return v
}

func wantNotFound(t *testing.T, s KeyStore, hash [32]byte, label string) {
	t.Helper()
	if k, err := s.KeyByHash(t.Context(), hash); !errors.Is(err, budget.ErrKeyNotFound) {
		t.Errorf("%s: KeyByHash = %v, %v; want ErrKeyNotFound", label, k, err)
	}
}

// sameKey compares a stored key with the one created, times by Equal.
func sameKey(t *testing.T, label string, got budget.StoredKey, want budget.Key) {
	t.Helper()
	if !got.Expires.Equal(want.Expires) {
		t.Errorf("%s: Expires = %v, want %v", label, got.Expires, want.Expires)
	}
	got.Expires, want.Expires = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got.Key, want) {
		t.Errorf("%s: key = %#v, want %#v", label, got.Key, want)
	}
}

func testKeyRoundTrip(t *testing.T, open func() KeyStore) {
	s := open()
	full := budget.Key{
		Name: "ci-bot", User: "alice", Team: "ml", Models: []string{"gpt-4o*", "claude-*", "é?"},
		Expires: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600)),
	}
	bare := budget.Key{Name: "bare"}
	before := time.Now()
	createKey(t, s, full, secretHash(full.Name, 0))
	createKey(t, s, bare, secretHash(bare.Name, 0))
	after := time.Now()

	got := keyByHash(t, s, secretHash(full.Name, 0))
	sameKey(t, "full key", got, full)
	if got.Created.Before(before.Truncate(time.Microsecond)) || got.Created.After(after) {
		t.Errorf("Created = %v, want within [%v, %v]", got.Created, before, after)
	}
	if !got.RevokedAt.IsZero() || !got.Rotated.IsZero() {
		t.Errorf("a new key: RevokedAt %v, Rotated %v; want zero", got.RevokedAt, got.Rotated)
	}
	if err := budget.Allowed(&got.Key, "gpt-4o-mini", after); err != nil {
		t.Errorf("Allowed(gpt-4o-mini): %v", err)
	}
	if err := budget.Allowed(&got.Key, "gemini-2.0", after); !errors.Is(err, budget.ErrModelNotAllowed) {
		t.Errorf("Allowed(gemini-2.0) = %v, want ErrModelNotAllowed", err)
	}
	sameKey(t, "bare key", keyByHash(t, s, secretHash(bare.Name, 0)), bare)

	// A key created revoked reads back revoked.
	gone := budget.Key{Name: "gone", Revoked: true}
	createKey(t, s, gone, secretHash(gone.Name, 0))
	g := keyByHash(t, s, secretHash(gone.Name, 0))
	if !g.Revoked || g.RevokedAt.IsZero() {
		t.Errorf("a key created revoked: Revoked %t, RevokedAt %v", g.Revoked, g.RevokedAt)
	}
}

func testKeyExists(t *testing.T, open func() KeyStore) {
	s := open()
	createKey(t, s, budget.Key{Name: "a", User: "u1"}, secretHash("a", 0))
	v := keysVersion(t, s)
	if err := s.CreateKey(t.Context(), budget.Key{Name: "a", User: "u2"}, secretHash("a2", 0)); !errors.Is(err, budget.ErrKeyExists) {
		t.Errorf("CreateKey of a stored name = %v, want ErrKeyExists", err)
	}
	if err := s.CreateKey(t.Context(), budget.Key{Name: "b"}, secretHash("a", 0)); !errors.Is(err, budget.ErrKeyExists) {
		t.Errorf("CreateKey with a stored hash = %v, want ErrKeyExists", err)
	}
	if got := keyByHash(t, s, secretHash("a", 0)); got.User != "u1" {
		t.Errorf("after refused creations: user %q, want u1", got.User)
	}
	wantNotFound(t, s, secretHash("a2", 0), "the refused key's hash")
	if keys := listKeys(t, s); len(keys) != 1 {
		t.Errorf("after refused creations: %d keys, want 1", len(keys))
	}
	if got := keysVersion(t, s); got != v {
		t.Errorf("refused creations moved KeysVersion from %d to %d", v, got)
	}
}

func testKeyNotFound(t *testing.T, open func() KeyStore) {
	s := open()
	wantNotFound(t, s, secretHash("nobody", 0), "empty store")
	createKey(t, s, budget.Key{Name: "a"}, secretHash("a", 0))
	wantNotFound(t, s, secretHash("nobody", 0), "unknown hash")
	if err := s.RevokeKey(t.Context(), "nobody", time.Now()); !errors.Is(err, budget.ErrKeyNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrKeyNotFound", err)
	}
	if err := s.RotateKey(t.Context(), "nobody", secretHash("x", 1), time.Now()); !errors.Is(err, budget.ErrKeyNotFound) {
		t.Errorf("RotateKey(unknown) = %v, want ErrKeyNotFound", err)
	}
}

func listKeys(t *testing.T, s KeyStore) []budget.StoredKey {
	t.Helper()
	keys, err := s.ListKeys(t.Context())
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	return keys
}

func testKeyList(t *testing.T, open func() KeyStore) {
	s := open()
	if keys := listKeys(t, s); keys == nil || len(keys) != 0 {
		t.Fatalf("ListKeys of an empty store = %#v, want an empty, non-nil slice", keys)
	}
	names := []string{"b", "a", "B", "a-1", "é", "z", "_"}
	for _, n := range names {
		createKey(t, s, budget.Key{Name: n, User: "u-" + n}, secretHash(n, 0))
	}
	keys := listKeys(t, s)
	var got []string
	for _, k := range keys {
		got = append(got, k.Name)
		if k.User != "u-"+k.Name {
			t.Errorf("key %q: user %q", k.Name, k.User)
		}
		h := secretHash(k.Name, 0)
		for _, text := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k)} {
			if strings.Contains(strings.ToLower(text), hex.EncodeToString(h[:4])) {
				t.Errorf("key %q shows its hash: %s", k.Name, text)
			}
		}
	}
	if want := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Errorf("ListKeys names = %q, want %q (byte order)", got, want)
	}
}

func testKeyRevoke(t *testing.T, open func() KeyStore) {
	s := open()
	createKey(t, s, budget.Key{Name: "a", Team: "ml"}, secretHash("a", 0))
	createKey(t, s, budget.Key{Name: "b"}, secretHash("b", 0))
	at := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	if err := s.RevokeKey(t.Context(), "a", at); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	k := keyByHash(t, s, secretHash("a", 0))
	if !k.Revoked || !k.RevokedAt.Equal(at) || k.Team != "ml" {
		t.Errorf("revoked key: Revoked %t, RevokedAt %v, team %q; want true, %v, ml", k.Revoked, k.RevokedAt, k.Team, at)
	}
	if err := budget.Allowed(&k.Key, "m", at); !errors.Is(err, budget.ErrRevoked) {
		t.Errorf("Allowed(revoked key) = %v, want ErrRevoked", err)
	}
	if k := keyByHash(t, s, secretHash("b", 0)); k.Revoked {
		t.Error("revoking a revoked b")
	}
	v := keysVersion(t, s)
	if err := s.RevokeKey(t.Context(), "a", at.Add(time.Hour)); err != nil {
		t.Errorf("revoking a revoked key: %v", err)
	}
	if k := keyByHash(t, s, secretHash("a", 0)); !k.RevokedAt.Equal(at) {
		t.Errorf("a second revocation moved RevokedAt to %v, want %v", k.RevokedAt, at)
	}
	if got := keysVersion(t, s); got != v {
		t.Errorf("a second revocation moved KeysVersion from %d to %d", v, got)
	}
	if err := s.RotateKey(t.Context(), "a", secretHash("a", 1), at); !errors.Is(err, budget.ErrRevoked) {
		t.Errorf("RotateKey(revoked) = %v, want ErrRevoked", err)
	}
	wantNotFound(t, s, secretHash("a", 1), "a revoked key's refused rotation")
}

func testKeyRotate(t *testing.T, open func() KeyStore) {
	s := open()
	orig := budget.Key{Name: "a", User: "alice", Team: "ml", Models: []string{"gpt-*"}, Expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	createKey(t, s, orig, secretHash("a", 0))
	createKey(t, s, budget.Key{Name: "b"}, secretHash("b", 0))
	created := keyByHash(t, s, secretHash("a", 0)).Created
	at := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	if err := s.RotateKey(t.Context(), "a", secretHash("a", 1), at); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	wantNotFound(t, s, secretHash("a", 0), "the old hash after rotation")
	k := keyByHash(t, s, secretHash("a", 1))
	sameKey(t, "rotated key", k, orig)
	if !k.Rotated.Equal(at) || !k.Created.Equal(created) {
		t.Errorf("rotated key: Rotated %v, Created %v; want %v, %v", k.Rotated, k.Created, at, created)
	}
	if err := s.RotateKey(t.Context(), "a", secretHash("b", 0), at); !errors.Is(err, budget.ErrKeyExists) {
		t.Errorf("RotateKey to b's hash = %v, want ErrKeyExists", err)
	}
	if k := keyByHash(t, s, secretHash("b", 0)); k.Name != "b" {
		t.Errorf("b's hash finds %q", k.Name)
	}
	keyByHash(t, s, secretHash("a", 1)) // still a's
}

func testKeyVersion(t *testing.T, open func() KeyStore) {
	s := open()
	v0 := keysVersion(t, s)
	step := func(label string, change func() error, bumps bool) {
		t.Helper()
		v := keysVersion(t, s)
		err := change()
		got := keysVersion(t, s)
		switch {
		case bumps && err != nil:
			t.Fatalf("%s: %v", label, err)
		case bumps && got <= v:
			t.Errorf("%s: KeysVersion %d → %d, want it to grow", label, v, got)
		case !bumps && got != v:
			t.Errorf("%s (refused: %v): KeysVersion %d → %d, want unchanged", label, err, v, got)
		}
	}
	ctx := t.Context()
	step("create", func() error { return s.CreateKey(ctx, budget.Key{Name: "a"}, secretHash("a", 0)) }, true)
	step("create b", func() error { return s.CreateKey(ctx, budget.Key{Name: "b"}, secretHash("b", 0)) }, true)
	step("create a again", func() error { return s.CreateKey(ctx, budget.Key{Name: "a"}, secretHash("a", 9)) }, false)
	step("rotate", func() error { return s.RotateKey(ctx, "a", secretHash("a", 1), time.Now()) }, true)
	step("rotate to b's hash", func() error { return s.RotateKey(ctx, "a", secretHash("b", 0), time.Now()) }, false)
	step("revoke", func() error { return s.RevokeKey(ctx, "a", time.Now()) }, true)
	step("revoke again", func() error { return s.RevokeKey(ctx, "a", time.Now()) }, false)
	step("revoke unknown", func() error { return s.RevokeKey(ctx, "x", time.Now()) }, false)
	step("list", func() error { _, err := s.ListKeys(ctx); return err }, false)
	if v := keysVersion(t, s); v <= v0 {
		t.Errorf("KeysVersion %d after changes, %d before", v, v0)
	}
}

func testKeyInvalid(t *testing.T, open func() KeyStore) {
	s := open()
	v := keysVersion(t, s)
	for _, k := range []budget.Key{
		{Name: ""},
		{Name: "a\x00b"},
		{Name: "a\xffb"},
		{Name: "u", User: "al\x00ice"},
		{Name: "t", Team: "\xc3("},
		{Name: "m", Models: []string{"gpt\x00"}},
		{Name: "g", Models: []string{"gpt-["}}, // a malformed glob
	} {
		err := s.CreateKey(t.Context(), k, secretHash(k.Name, 0))
		if !errors.Is(err, budget.ErrInvalidKey) {
			t.Errorf("CreateKey(%+q) = %v, want ErrInvalidKey", k.Name, err)
		}
		wantNotFound(t, s, secretHash(k.Name, 0), fmt.Sprintf("refused key %+q", k.Name))
	}
	if keys := listKeys(t, s); len(keys) != 0 {
		t.Errorf("refused keys were stored: %v", keys)
	}
	if got := keysVersion(t, s); got != v {
		t.Errorf("refused keys moved KeysVersion from %d to %d", v, got)
	}
}

// testKeyAcrossStores: what one store (gateway) changes, another sees at
// its next read.
func testKeyAcrossStores(t *testing.T, open func() KeyStore) {
	a, b := open(), open()
	createKey(t, a, budget.Key{Name: "k", User: "alice"}, secretHash("k", 0))
	v := keysVersion(t, b)
	if k := keyByHash(t, b, secretHash("k", 0)); k.User != "alice" {
		t.Fatalf("b sees user %q", k.User)
	}
	if err := a.RotateKey(t.Context(), "k", secretHash("k", 1), time.Now()); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, b, secretHash("k", 0), "old hash on b after rotation on a")
	keyByHash(t, b, secretHash("k", 1))
	v2 := keysVersion(t, b)
	if v2 <= v {
		t.Errorf("b's KeysVersion %d → %d after a rotation on a", v, v2)
	}
	if err := a.RevokeKey(t.Context(), "k", time.Now()); err != nil {
		t.Fatal(err)
	}
	if k := keyByHash(t, b, secretHash("k", 1)); !k.Revoked {
		t.Error("b does not see a's revocation")
	}
	if v3 := keysVersion(t, b); v3 <= v2 {
		t.Errorf("b's KeysVersion %d → %d after a revocation on a", v2, v3)
	}
	if err := b.CreateKey(t.Context(), budget.Key{Name: "k"}, secretHash("k", 5)); !errors.Is(err, budget.ErrKeyExists) {
		t.Errorf("b creating a's key name = %v, want ErrKeyExists", err)
	}
}

// testKeyCreateRace: 3 stores × 8 goroutines create one name (each with
// its own secret): exactly one succeeds, the others get ErrKeyExists.
func testKeyCreateRace(t *testing.T, open func() KeyStore) {
	stores := []KeyStore{open(), open(), open()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []int
		others []error
	)
	for i := range 24 {
		wg.Go(func() {
			err := stores[i%3].CreateKey(t.Context(), budget.Key{Name: "race", User: fmt.Sprint(i)}, secretHash("race", i))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, i)
			} else if !errors.Is(err, budget.ErrKeyExists) {
				others = append(others, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || len(others) != 0 {
		t.Fatalf("concurrent creations: %d succeeded (%v), unexpected errors %v; want 1 and none", len(won), won, others)
	}
	k := keyByHash(t, stores[0], secretHash("race", won[0]))
	if k.User != fmt.Sprint(won[0]) {
		t.Errorf("the winner's key has user %q, want %d", k.User, won[0])
	}
}
