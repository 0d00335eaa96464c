package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope/budget"
	"llmscope/internal/schema"
)

var _ budget.KeyStore = (*Store)(nil)

// keyColumns are client_keys' columns as scanKey reads them.
const keyColumns = `name, "user", team, models, expires, revoked_at, created, rotated_at`

// errNoChange ends a key transaction that changed nothing: it rolls back
// (the version bump with it) and the method returns nil.
var errNoChange = errors.New("no change")

// CreateKey stores k with the SHA-256 of its secret, as budget.KeyStore
// says. Postgres text cannot hold NUL bytes or invalid UTF-8: such keys
// are refused (ErrInvalidKey) before anything is sent.
func (s *Store) CreateKey(ctx context.Context, k budget.Key, hash [32]byte) error {
	if err := checkKey(&k); err != nil {
		return fmt.Errorf("postgres: create key %q: %w", k.Name, err)
	}
	models, err := json.Marshal(append([]string{}, k.Models...))
	if err != nil {
		return fmt.Errorf("postgres: create key %q: %w", k.Name, err)
	}
	now := time.Now()
	var revoked *int64
	if k.Revoked {
		n := now.UnixNano()
		revoked = &n
	}
	err = s.keyTx(ctx, func(tx pgx.Tx) error {
		var clash string
		err := tx.QueryRow(ctx, `SELECT CASE WHEN name = $1 THEN 'name' ELSE 'hash' END
			FROM client_keys WHERE name = $1 OR hash = $2 LIMIT 1`, k.Name, hash[:]).Scan(&clash)
		switch {
		case err == nil:
			return fmt.Errorf("a key with this %s exists: %w", clash, budget.ErrKeyExists)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO client_keys (name, hash, "user", team, models, expires, revoked_at, created, rotated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)`,
			k.Name, hash[:], k.User, k.Team, string(models), nullTime(k.Expires), revoked, now.UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create key %q: %w", k.Name, err)
	}
	return nil
}

// KeyByHash returns the key whose secret hashes to hash, as
// budget.KeyStore says: one indexed lookup, one round trip.
func (s *Store) KeyByHash(ctx context.Context, hash [32]byte) (budget.StoredKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM client_keys WHERE hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return budget.StoredKey{}, fmt.Errorf("postgres: key by hash: %w", budget.ErrKeyNotFound)
	}
	if err != nil {
		return budget.StoredKey{}, fmt.Errorf("postgres: key by hash: %w", err)
	}
	return k, nil
}

// ListKeys returns every key sorted by name (byte order), as
// budget.KeyStore says.
func (s *Store) ListKeys(ctx context.Context) ([]budget.StoredKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM client_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	defer rows.Close()
	keys := []budget.StoredKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes the named key as of at (the zero time: now), as
// budget.KeyStore says.
func (s *Store) RevokeKey(ctx context.Context, name string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.keyTx(ctx, func(tx pgx.Tx) error {
		revoked, err := lockKey(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case revoked != nil:
			return errNoChange // revoked already: the first time stays
		}
		_, err = tx.Exec(ctx, `UPDATE client_keys SET revoked_at = $2 WHERE name = $1`, name, schema.Nanos(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke key %q: %w", name, err)
	}
	return nil
}

// RotateKey replaces the named key's hash as of at (the zero time: now),
// as budget.KeyStore says.
func (s *Store) RotateKey(ctx context.Context, name string, newHash [32]byte, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.keyTx(ctx, func(tx pgx.Tx) error {
		revoked, err := lockKey(ctx, tx, name)
		switch {
		case err != nil:
			return err
		case revoked != nil:
			return budget.ErrRevoked
		}
		var other string
		err = tx.QueryRow(ctx, `SELECT name FROM client_keys WHERE hash = $1`, newHash[:]).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("the new hash is %q's: %w", other, budget.ErrKeyExists)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE client_keys SET hash = $2, rotated_at = $3 WHERE name = $1`,
			name, newHash[:], schema.Nanos(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: rotate key %q: %w", name, err)
	}
	return nil
}

// lockKey returns the named key's revoked_at (nil: not revoked), or
// ErrKeyNotFound.
func lockKey(ctx context.Context, tx pgx.Tx, name string) (*int64, error) {
	if !clean(name) {
		return nil, budget.ErrKeyNotFound // no stored name holds one
	}
	var revoked *int64
	err := tx.QueryRow(ctx, `SELECT revoked_at FROM client_keys WHERE name = $1`, name).Scan(&revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, budget.ErrKeyNotFound
	}
	return revoked, err
}

// KeysVersion returns the count of key changes, as budget.KeyStore says:
// one read of one row, one round trip.
func (s *Store) KeysVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM keys_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: keys version: %w", err)
	}
	return v, nil
}

// keyTx runs fn in a transaction that first bumps keys_version: the
// version row's lock serialises every change of the keys, across
// gateways, so fn's checks hold until it commits. fn returning
// errNoChange rolls it back and keyTx returns nil.
func (s *Store) keyTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE keys_version SET version = version + 1 WHERE id = 1`); err != nil {
			return err
		}
		return fn(tx)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// checkKey validates k for storage: Validate, and no NUL bytes or invalid
// UTF-8 in its strings (which Postgres text cannot hold).
func checkKey(k *budget.Key) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("%w: %w", budget.ErrInvalidKey, err)
	}
	fields := []struct{ name, v string }{{"name", k.Name}, {"user", k.User}, {"team", k.Team}}
	for _, m := range k.Models {
		fields = append(fields, struct{ name, v string }{"model glob", m})
	}
	for _, f := range fields {
		if !clean(f.v) {
			return fmt.Errorf("%w: %s holds a NUL byte or invalid UTF-8", budget.ErrInvalidKey, f.name)
		}
	}
	return nil
}

// nullTime is t in unix nanoseconds, nil (NULL) for the zero time.
func nullTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := schema.Nanos(t)
	return &n
}

func timeOf(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return schema.Time(*n)
}

// scanKey reads one row selected with keyColumns.
func scanKey(row pgx.Row) (budget.StoredKey, error) {
	var (
		k                         budget.StoredKey
		models                    string
		expires, revoked, rotated *int64
		created                   int64
	)
	if err := row.Scan(&k.Name, &k.User, &k.Team, &models, &expires, &revoked, &created, &rotated); err != nil {
		return budget.StoredKey{}, err
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return budget.StoredKey{}, fmt.Errorf("key %q: decode models: %w", k.Name, err)
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	k.Expires, k.RevokedAt, k.Rotated = timeOf(expires), timeOf(revoked), timeOf(rotated)
	k.Created = schema.Time(created)
	k.Revoked = revoked != nil
	return k, nil
}
