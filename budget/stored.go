package budget

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StoredKey is a client key as a store keeps it: the Key (Revoked is set
// exactly when RevokedAt is) with its history. The secret is never stored,
// and the SHA-256 the store looks keys up by is not part of it, so no
// String, log line or JSON of a StoredKey can show either.
type StoredKey struct {
	Key
	Created   time.Time `json:"created"`
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: not revoked
	Rotated   time.Time `json:"rotated_at,omitzero"` // the latest rotation; zero: never rotated
}

// String describes k for logs: its name, owner and state.
func (k StoredKey) String() string {
	state := "active"
	switch {
	case !k.RevokedAt.IsZero():
		state = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
	case !k.Expires.IsZero():
		state = "expires " + k.Expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("key %q (user %q, team %q, %s)", k.Name, k.User, k.Team, state)
}

// The errors of a KeyStore; test them with errors.Is.
var (
	// ErrKeyExists: a key with the name, or the hash, exists already.
	ErrKeyExists = errors.New("key exists")
	// ErrKeyNotFound: no key has the name or the hash.
	ErrKeyNotFound = errors.New("key not found")
	// ErrInvalidKey: the key cannot be stored (Validate refuses it, or
	// one of its strings holds a NUL byte or invalid UTF-8).
	ErrInvalidKey = errors.New("invalid key")
)

// KeyStore keeps client keys by the SHA-256 of their secret: the SQLite
// and Postgres stores implement it. Every change is one transaction and
// bumps KeysVersion in it, so that a gateway can cache the keys and
// notice a change (a revocation, a rotation) at its next poll: it reads
// KeysVersion first and, when it changed, reloads (ListKeys, or KeyByHash
// on demand) and remembers the version it read before reloading.
type KeyStore interface {
	// CreateKey stores k (validated with Key.Validate; Revoked keys are
	// stored revoked) with the SHA-256 of its secret. A name or a hash
	// already stored is an error wrapping ErrKeyExists; a key that
	// cannot be stored, one wrapping ErrInvalidKey.
	CreateKey(ctx context.Context, k Key, hash [32]byte) error
	// KeyByHash returns the key whose secret hashes to hash, revoked and
	// expired keys included (Allowed refuses them), or an error wrapping
	// ErrKeyNotFound.
	KeyByHash(ctx context.Context, hash [32]byte) (StoredKey, error)
	// ListKeys returns every key, sorted by name (byte order); none is an
	// empty, non-nil slice.
	ListKeys(ctx context.Context) ([]StoredKey, error)
	// RevokeKey revokes the named key as of at; its hash is refused from
	// then on. Revoking a revoked key changes nothing (the first time
	// stays). An unknown name is an error wrapping ErrKeyNotFound.
	RevokeKey(ctx context.Context, name string, at time.Time) error
	// RotateKey replaces the named key's hash with newHash as of at: the
	// old hash stops working at once; the name, owner, models and expiry
	// stay. An unknown name wraps ErrKeyNotFound, a revoked key
	// ErrRevoked, a newHash in use ErrKeyExists.
	RotateKey(ctx context.Context, name string, newHash [32]byte, at time.Time) error
	// KeysVersion returns a number that every committed change of the
	// keys increases: equal numbers mean equal keys.
	KeysVersion(ctx context.Context) (int64, error)
}

// HolderExpirer is a shared Ledger that can give back the shares of
// holders gone silent (the stores implement it): ExpireHolders removes
// every share of each holder that has not acquired or committed on any
// key for idle, takes them from Held, and returns how many it removed.
// Run it now and then (every few minutes) with idle well beyond the sync
// interval and the longest call: a live holder whose share is expired
// may overshoot the limit by that share.
type HolderExpirer interface {
	ExpireHolders(ctx context.Context, idle time.Duration) (int64, error)
}

// CounterPruner is a shared Counter whose old windows are deleted on
// demand (the stores implement it): PruneCounters deletes the counts of
// windows starting before before (Unix seconds) and returns how many.
// Run it about once a minute with the previous window's start.
type CounterPruner interface {
	PruneCounters(ctx context.Context, before int64) (int64, error)
}
