package sqlite

import (
	"context"
	"fmt"
	"time"

	"llmscope"
	"llmscope/internal/schema"
)

var _ llmscope.Pruner = (*Store)(nil)

// pruneBatch is the most calls Prune deletes in one transaction: small
// enough that the writer connection is never held for long, so the
// Recorder's commits wait at most one short batch.
const pruneBatch = 1000

// pruneSQL deletes up to ? of the oldest calls that start before ? and that
// every exporter has delivered (seq at or below the smallest cursor; any
// seq when there is no cursor). The calls_start index gives the order.
const pruneSQL = `DELETE FROM calls WHERE seq IN (
	SELECT seq FROM calls
	WHERE start < ? AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM export_cursors)
	ORDER BY start, seq LIMIT ?)`

// Prune deletes at most limit calls that start before before, oldest first,
// and never a call after the smallest exporter cursor (see llmscope.Pruner).
// It deletes in transactions of at most 1,000 calls on the writer
// connection, each committed before the next begins, so writes interleave.
//
// Deleting does not shrink the database file: SQLite keeps the freed pages
// and reuses them for the calls written next, so a store under retention
// stops growing rather than getting smaller. Since the calls table's seq is
// AUTOINCREMENT, a seq is never reused, even after the newest calls are
// deleted.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int64, error) {
	var deleted int64
	for deleted < int64(limit) {
		n := min(int64(limit)-deleted, pruneBatch)
		got, err := s.pruneOnce(ctx, schema.Nanos(before), n)
		deleted += got
		if err != nil {
			return deleted, fmt.Errorf("sqlite: prune: %w", err)
		}
		if got < n {
			break
		}
	}
	return deleted, nil
}

// pruneOnce deletes up to n calls in one transaction.
func (s *Store) pruneOnce(ctx context.Context, before, n int64) (int64, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() // a no-op after Commit
	res, err := tx.ExecContext(ctx, pruneSQL, before, n)
	if err != nil {
		return 0, err
	}
	got, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return got, nil
}
