package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"llmscope/budget"
	"llmscope/internal/schema"
)

var _ budget.KeyStore = (*Store)(nil)

// keyColumns are client_keys' columns as scanKey reads them.
const keyColumns = `name, user, team, models, expires, revoked_at, created, rotated_at`

// CreateKey stores k with the SHA-256 of its secret, as budget.KeyStore
// says, in one transaction on the writer that also bumps KeysVersion.
// Strings with a NUL byte or invalid UTF-8 are refused (ErrInvalidKey), as
// the Postgres store must.
func (s *Store) CreateKey(ctx context.Context, k budget.Key, hash [32]byte) error {
	if err := checkKey(&k); err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.Name, err)
	}
	models, err := json.Marshal(append([]string{}, k.Models...))
	if err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.Name, err)
	}
	now := time.Now()
	var revoked any
	if k.Revoked {
		revoked = now.UnixNano()
	}
	err = s.keyTx(ctx, func(tx *sql.Tx) (bool, error) {
		var clash string
		err := tx.QueryRowContext(ctx, `SELECT CASE WHEN name = ? THEN 'name' ELSE 'hash' END
			FROM client_keys WHERE name = ? OR hash = ? LIMIT 1`, k.Name, k.Name, hash[:]).Scan(&clash)
		switch {
		case err == nil:
			return false, fmt.Errorf("a key with this %s exists: %w", clash, budget.ErrKeyExists)
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO client_keys (name, hash, user, team, models, expires, revoked_at, created, rotated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			k.Name, hash[:], k.User, k.Team, string(models), nullTime(k.Expires), revoked, now.UnixNano())
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create key %q: %w", k.Name, err)
	}
	return nil
}

// KeyByHash returns the key whose secret hashes to hash, as
// budget.KeyStore says. It reads through the reader pool: one indexed
// lookup.
func (s *Store) KeyByHash(ctx context.Context, hash [32]byte) (budget.StoredKey, error) {
	k, err := scanKey(s.reader.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM client_keys WHERE hash = ?`, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return budget.StoredKey{}, fmt.Errorf("sqlite: key by hash: %w", budget.ErrKeyNotFound)
	}
	if err != nil {
		return budget.StoredKey{}, fmt.Errorf("sqlite: key by hash: %w", err)
	}
	return k, nil
}

// ListKeys returns every key sorted by name, as budget.KeyStore says.
func (s *Store) ListKeys(ctx context.Context) ([]budget.StoredKey, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+keyColumns+` FROM client_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	keys := []budget.StoredKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes the named key as of at (the zero time: now), as
// budget.KeyStore says.
func (s *Store) RevokeKey(ctx context.Context, name string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.keyTx(ctx, func(tx *sql.Tx) (bool, error) {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM client_keys WHERE name = ?`, name).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return false, budget.ErrKeyNotFound
		case err != nil:
			return false, err
		case revoked.Valid:
			return false, nil // revoked already: nothing changes
		}
		_, err = tx.ExecContext(ctx, `UPDATE client_keys SET revoked_at = ? WHERE name = ?`, schema.Nanos(at), name)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %q: %w", name, err)
	}
	return nil
}

// RotateKey replaces the named key's hash as of at (the zero time: now),
// as budget.KeyStore says.
func (s *Store) RotateKey(ctx context.Context, name string, newHash [32]byte, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	err := s.keyTx(ctx, func(tx *sql.Tx) (bool, error) {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM client_keys WHERE name = ?`, name).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return false, budget.ErrKeyNotFound
		case err != nil:
			return false, err
		case revoked.Valid:
			return false, budget.ErrRevoked
		}
		var other string
		err = tx.QueryRowContext(ctx, `SELECT name FROM client_keys WHERE hash = ?`, newHash[:]).Scan(&other)
		switch {
		case err == nil:
			return false, fmt.Errorf("the new hash is %q's: %w", other, budget.ErrKeyExists)
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE client_keys SET hash = ?, rotated_at = ? WHERE name = ?`,
			newHash[:], schema.Nanos(at), name)
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("sqlite: rotate key %q: %w", name, err)
	}
	return nil
}

// KeysVersion returns the count of key changes, as budget.KeyStore says:
// one read of one row.
func (s *Store) KeysVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.reader.QueryRowContext(ctx, `SELECT version FROM keys_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: keys version: %w", err)
	}
	return v, nil
}

// keyTx runs fn in a transaction on the writer and, when fn reports a
// change, bumps keys_version in it.
func (s *Store) keyTx(ctx context.Context, fn func(tx *sql.Tx) (bool, error)) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	changed, err := fn(tx)
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE keys_version SET version = version + 1 WHERE id = 1`); err != nil {
		return err
	}
	return tx.Commit()
}

// checkKey validates k for storage: Validate, and no NUL bytes or invalid
// UTF-8 in its strings.
func checkKey(k *budget.Key) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("%w: %w", budget.ErrInvalidKey, err)
	}
	fields := []struct{ name, v string }{{"name", k.Name}, {"user", k.User}, {"team", k.Team}}
	for _, m := range k.Models {
		fields = append(fields, struct{ name, v string }{"model glob", m})
	}
	for _, f := range fields {
		if strings.IndexByte(f.v, 0) >= 0 || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s holds a NUL byte or invalid UTF-8", budget.ErrInvalidKey, f.name)
		}
	}
	return nil
}

// nullTime is t in unix nanoseconds, NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return schema.Nanos(t)
}

func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return schema.Time(n.Int64)
}

// scanKey reads one row selected with keyColumns.
func scanKey(row interface{ Scan(...any) error }) (budget.StoredKey, error) {
	var (
		k                         budget.StoredKey
		models                    string
		expires, revoked, rotated sql.NullInt64
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
	k.Revoked = revoked.Valid
	return k, nil
}
