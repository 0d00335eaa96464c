package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope"
)

var _ llmscope.Leaser = (*Store)(nil)

// Lease acquires, renews or refuses the named lease as llmscope.Leaser says,
// in one conditional upsert on the leases table, timed by the server's
// now(): gateways' clocks do not matter.
//
// Leases are rows with an expiry rather than advisory locks: an advisory
// lock lives as long as the session holding it, so a gateway that is
// paused, partitioned or killed with its host would keep it until TCP
// keepalive ends the dead session (hours by default), and it would pin one
// pool connection per lock. A row expires after ttl whatever happened to
// its holder, and the cursor write can check it in the same statement
// (SetCursorLeased).
func (s *Store) Lease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var held bool
	err := s.pool.QueryRow(ctx,
		`INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		 WHERE leases.owner = excluded.owner OR leases.expires_at <= now()
		 RETURNING true`,
		name, owner, ttl.Milliseconds()).Scan(&held)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: lease %q: %w", name, err)
	}
	return held, nil
}

// Release frees the named lease when owner holds it.
func (s *Store) Release(ctx context.Context, name, owner string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("postgres: release %q: %w", name, err)
	}
	return nil
}

// SetCursorLeased stores the cursor only while owner holds the unexpired
// lease, otherwise it returns an error wrapping llmscope.ErrLeaseLost. The
// lease row is read FOR SHARE in the same statement as the cursor write: a
// takeover (which updates that row) waits for the write to commit, and a
// write racing a committed takeover sees the new owner and changes nothing.
func (s *Store) SetCursorLeased(ctx context.Context, lease, owner, cursor string, seq int64) error {
	tag, err := s.pool.Exec(ctx,
		`WITH held AS (
			SELECT 1 FROM leases WHERE name = $4 AND owner = $5 AND expires_at > now() FOR SHARE
		 )
		 INSERT INTO export_cursors (name, seq, updated) SELECT $1, $2, $3 FROM held
		 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
		cursor, seq, time.Now().UnixNano(), lease, owner)
	if err != nil {
		return fmt.Errorf("postgres: set cursor %q: %w", cursor, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set cursor %q: %w: %q does not hold %q", cursor, llmscope.ErrLeaseLost, owner, lease)
	}
	return nil
}
