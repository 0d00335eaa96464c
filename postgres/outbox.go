package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope"
)

// After returns at most limit calls committed after position seq, in commit
// order, with Seq set. Writers commit one at a time in the order of their
// seqs (see Write), so a reader never misses a call committed later with a
// smaller seq, whichever process wrote it.
func (s *Store) After(ctx context.Context, seq int64, limit int) ([]*llmscope.Call, error) {
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, `+columns+` FROM calls WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: after %d: %w", seq, err)
	}
	defer rows.Close()
	var calls []*llmscope.Call
	for rows.Next() {
		var n int64
		c, err := scanCallSeq(rows, &n)
		if err != nil {
			return nil, fmt.Errorf("postgres: after %d: %w", seq, err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: after %d: %w", seq, err)
	}
	return calls, nil
}

// Cursor returns the named exporter's position, 0 when it has none.
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM export_cursors WHERE name = $1`, name).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: cursor %q: %w", name, err)
	}
	return seq, nil
}

// SetCursor stores the named exporter's position durably.
func (s *Store) SetCursor(ctx context.Context, name string, seq int64) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO export_cursors (name, seq, updated) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
		name, seq, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: set cursor %q: %w", name, err)
	}
	return nil
}
