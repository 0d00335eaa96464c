package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"llmscope"
)

var _ llmscope.Leaser = (*Store)(nil)

// nowMS is the database's clock in unix milliseconds, as SQL.
const nowMS = `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`

// Lease acquires, renews or refuses the named lease as llmscope.Leaser says,
// in one statement on the single writer connection, so that processes
// sharing the file see one order of leases. Expiry is by SQLite's clock,
// which is the host's: every process using the file shares it. Leases are
// rows, so a gateway restarted after a crash waits for its predecessor's
// lease to expire (at most its ttl) before it exports.
func (s *Store) Lease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var got string
	err := s.writer.QueryRowContext(ctx,
		`INSERT INTO leases (name, owner, expires) VALUES (?1, ?2, `+nowMS+` + ?3)
		 ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		 WHERE leases.owner = excluded.owner OR leases.expires <= `+nowMS+`
		 RETURNING owner`,
		name, owner, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: lease %q: %w", name, err)
	}
	return true, nil
}

// Release frees the named lease when owner holds it.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("sqlite: release %q: %w", name, err)
	}
	return nil
}

// SetCursorLeased stores the cursor only while owner holds the unexpired
// lease, checking and writing in one statement; otherwise it returns an
// error wrapping llmscope.ErrLeaseLost.
func (s *Store) SetCursorLeased(ctx context.Context, lease, owner, cursor string, seq int64) error {
	res, err := s.writer.ExecContext(ctx,
		`INSERT INTO export_cursors (name, seq, updated)
		 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM leases WHERE name = ?4 AND owner = ?5 AND expires > `+nowMS+`)
		 ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
		cursor, seq, time.Now().UnixNano(), lease, owner)
	if err != nil {
		return fmt.Errorf("sqlite: set cursor %q: %w", cursor, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: set cursor %q: %w", cursor, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: set cursor %q: %w: %q does not hold %q", cursor, llmscope.ErrLeaseLost, owner, lease)
	}
	return nil
}
