package postgres

import (
	"context"
	"fmt"
	"time"

	"llmscope"
	"llmscope/internal/schema"
)

var _ llmscope.Pruner = (*Store)(nil)

// pruneBatch is the most calls Prune deletes in one statement (and so one
// transaction), so that no transaction holds many row locks for long.
const pruneBatch = 1000

// pruneSQL deletes up to $2 of the oldest calls that start before $1 and
// that every exporter has delivered (seq at or below the smallest cursor;
// any seq when there is no cursor). The calls_start index gives the order.
// SKIP LOCKED lets the pruners of several gateways sharing the database
// split the work instead of waiting on each other's rows.
const pruneSQL = `DELETE FROM calls WHERE seq IN (
	SELECT seq FROM calls
	WHERE start < $1 AND seq <= (SELECT COALESCE(MIN(seq), 9223372036854775807) FROM export_cursors)
	ORDER BY start, seq LIMIT $2
	FOR UPDATE SKIP LOCKED)`

// Prune deletes at most limit calls that start before before, oldest first,
// and never a call after the smallest exporter cursor (see llmscope.Pruner).
// It deletes in statements of at most 1,000 calls, each its own
// transaction.
//
// Deleting creates no seq, so it needs no part of Write's advisory lock:
// the sequence never hands out a seq twice, and After's order is
// untouched. The space of deleted rows is reused by later inserts once
// autovacuum has seen it; a dropped day gives its space back at once.
//
// Whole days go faster with DropBefore, which retention calls first.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int64, error) {
	var deleted int64
	for deleted < int64(limit) {
		n := min(int64(limit)-deleted, pruneBatch)
		tag, err := s.pool.Exec(ctx, pruneSQL, schema.Nanos(before), n)
		if err != nil {
			return deleted, fmt.Errorf("postgres: prune: %w", err)
		}
		got := tag.RowsAffected()
		deleted += got
		if got < n {
			break
		}
	}
	return deleted, nil
}

var _ llmscope.PartitionDropper = (*Store)(nil)

// DropBefore detaches and drops the partition of every UTC day that ended
// before before and whose calls every exporter has delivered, oldest first,
// and returns how many calls went with them. Detaching is CONCURRENTLY:
// writes and reads go on meanwhile. Of several gateways pruning at once,
// one drops (the others find the work taken and return 0).
func (s *Store) DropBefore(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.dropDays(ctx, before)
	if err != nil {
		return n, fmt.Errorf("postgres: drop old partitions: %w", err)
	}
	return n, nil
}
