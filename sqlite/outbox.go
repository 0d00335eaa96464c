package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"llmscope"
)

// After returns at most limit calls committed after position seq, in commit
// order, with Seq set. With a single writer, seq grows in commit order, so a
// reader never misses a call committed later with a smaller seq.
func (s *Store) After(ctx context.Context, seq int64, limit int) ([]*llmscope.Call, error) {
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT seq, `+columns+` FROM calls WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: after %d: %w", seq, err)
	}
	defer rows.Close()
	var calls []*llmscope.Call
	for rows.Next() {
		var n int64
		c, err := scanCallSeq(rows, &n)
		if err != nil {
			return nil, fmt.Errorf("sqlite: after %d: %w", seq, err)
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: after %d: %w", seq, err)
	}
	return calls, nil
}

// Cursor returns the named exporter's position, 0 when it has none.
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.reader.QueryRowContext(ctx, `SELECT seq FROM export_cursors WHERE name = ?`, name).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: cursor %q: %w", name, err)
	}
	return seq, nil
}

// SetCursor stores the named exporter's position durably.
func (s *Store) SetCursor(ctx context.Context, name string, seq int64) error {
	_, err := s.writer.ExecContext(ctx,
		`INSERT INTO export_cursors (name, seq, updated) VALUES (?, ?, ?)
		 ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
		name, seq, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: set cursor %q: %w", name, err)
	}
	return nil
}
