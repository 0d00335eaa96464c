package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"llmscope"
	"llmscope/internal/schema"
)

// The calls table is partitioned by start, one partition per UTC day
// (migration 0004). A day's partition is created before the first call of
// that day is written, together with the partitions of the days after it,
// so that the creation (a short exclusive lock on the calls table) mostly
// happens ahead of time, once a day, not on the day's first write.

// dayNanos is one day in nanoseconds.
const dayNanos = int64(24 * time.Hour)

// partitionsAhead is how many days after a written call's day get their
// partition in advance.
const partitionsAhead = 2

// partitionLock is the advisory lock held while creating partitions, so
// that gateways starting a new day together do not collide.
const partitionLock = 0x6c6c6d7370617274 // "llmspart"

// dropLock is the session advisory lock of the process dropping old
// partitions.
const dropLock = 0x6c6c6d7364726f70 // "llmsdrop"

// before1970 is the partition of starts before 1970, the zero time among them.
const before1970 = "calls_pbefore1970"

// partitions remembers the days known to have a partition.
type partitions struct {
	mu   sync.Mutex
	days map[int64]bool
}

// dayOf returns the day (since 1970-01-01 UTC) of a stored start; -1 for
// starts before 1970 (one partition holds them all).
func dayOf(nanos int64) int64 {
	if nanos < 0 {
		return -1
	}
	return nanos / dayNanos
}

// partitionName returns the name of day's partition.
func partitionName(day int64) string {
	if day < 0 {
		return before1970
	}
	return "calls_p" + time.Unix(day*86400, 0).UTC().Format("20060102")
}

// partitionDay returns the day of a partition named by partitionName, or
// false for another name.
func partitionDay(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "calls_p")
	if !ok || len(s) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", s)
	if err != nil {
		return 0, false
	}
	return t.Unix() / 86400, true
}

// dayBounds returns the SQL bounds of day's partition: [lo, hi), hi being
// MAXVALUE for the last day an int64 of nanoseconds reaches.
func dayBounds(day int64) (lo, hi string) {
	lo = fmt.Sprint(day * dayNanos)
	h := new(big.Int).Mul(big.NewInt(day+1), big.NewInt(dayNanos))
	if h.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return lo, "MAXVALUE"
	}
	return lo, h.String()
}

// ensurePartitions creates the partitions of the days of calls, and of the
// partitionsAhead days after each, that this store does not know to exist.
func (s *Store) ensurePartitions(ctx context.Context, calls []*llmscope.Call) error {
	var missing, ahead []int64
	s.parts.mu.Lock()
	for _, c := range calls {
		if c == nil {
			continue
		}
		d := dayOf(schema.Nanos(c.Start))
		if d < 0 {
			continue // calls_pbefore1970 always exists
		}
		if !s.parts.days[d] && !containsDay(missing, d) {
			missing = append(missing, d)
		}
		for a := int64(1); a <= partitionsAhead; a++ {
			if !s.parts.days[d+a] && !containsDay(ahead, d+a) && !containsDay(missing, d+a) {
				ahead = append(ahead, d+a)
			}
		}
	}
	s.parts.mu.Unlock()
	if len(missing) == 0 {
		// The days written have partitions: the days ahead are made now if
		// the table can be locked quickly, else on a later write; a write
		// never waits or fails for them.
		if len(ahead) > 0 {
			_ = s.createPartitions(ctx, ahead, "100ms")
		}
		return nil
	}
	return s.createPartitions(ctx, append(missing, ahead...), "2s")
}

// createPartitions creates the partitions of days that do not exist yet,
// under the partition lock, waiting at most lockTimeout (a PostgreSQL
// interval) for the calls table, and marks them known.
func (s *Store) createPartitions(ctx context.Context, missing []int64, lockTimeout string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Creating a partition locks the calls table: wait for it only
		// briefly (a long query holds it), and try again on a later write.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+lockTimeout+`'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(partitionLock)); err != nil {
			return err
		}
		for _, d := range missing {
			lo, hi := dayBounds(d)
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+partitionName(d)+
				` PARTITION OF calls FOR VALUES FROM (`+lo+`) TO (`+hi+`)`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	s.parts.mu.Lock()
	for _, d := range missing {
		s.parts.days[d] = true
	}
	s.parts.mu.Unlock()
	return nil
}

func containsDay(days []int64, d int64) bool {
	for _, x := range days {
		if x == d {
			return true
		}
	}
	return false
}

// forgetDays makes the store check the partitions of the days of calls
// again before it writes them.
func (p *partitions) forgetDays(calls []*llmscope.Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range calls {
		if c != nil {
			delete(p.days, dayOf(schema.Nanos(c.Start)))
		}
	}
}

// noPartition reports whether err says a row has no partition to go to.
func noPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition")
}

// forget makes the store check day's partition again before the next
// write of that day (it was dropped).
func (p *partitions) forget(day int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.days, day)
}

// dropDays detaches and drops the partitions of whole days that end at or
// before before and whose calls every exporter has delivered, oldest first.
// It returns the calls dropped with them. Detaching is CONCURRENTLY: writes
// and reads of other days go on meanwhile. A detach left half done (the
// connection broke) is finished on the next call. One process drops at a
// time (a session advisory lock); the others return at once.
func (s *Store) dropDays(ctx context.Context, before time.Time) (int64, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(dropLock)).Scan(&locked); err != nil {
		return 0, err
	}
	if !locked {
		return 0, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(dropLock)); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // the lock ends with the session
		}
	}()
	cut := schema.Nanos(before)
	dropped, err := dropOrphans(ctx, conn.Conn(), cut)
	if err != nil {
		return 0, err
	}
	rows, err := conn.Query(ctx, `SELECT c.relname, i.inhdetachpending FROM pg_inherits i
	JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'calls'::regclass ORDER BY c.relname`)
	if err != nil {
		return dropped, fmt.Errorf("list partitions: %w", err)
	}
	type part struct {
		Name    string
		Pending bool
	}
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[part])
	if err != nil {
		return dropped, fmt.Errorf("list partitions: %w", err)
	}
	for _, p := range parts {
		day, ok := partitionDay(p.Name)
		if !ok {
			continue
		}
		if _, hi := dayBounds(day); hi == "MAXVALUE" || (day+1)*dayNanos > cut {
			break // this day and the later ones are not over
		}
		var n, maxSeq int64
		var cursor int64
		if err := conn.QueryRow(ctx, `SELECT count(*), COALESCE(max(seq), 0),
		(SELECT COALESCE(MIN(seq), 9223372036854775807) FROM export_cursors) FROM `+p.Name).Scan(&n, &maxSeq, &cursor); err != nil {
			return dropped, fmt.Errorf("read partition %s: %w", p.Name, err)
		}
		if maxSeq > cursor {
			break // an exporter has yet to deliver some of its calls
		}
		detach := `ALTER TABLE calls DETACH PARTITION ` + p.Name + ` CONCURRENTLY`
		if p.Pending {
			detach = `ALTER TABLE calls DETACH PARTITION ` + p.Name + ` FINALIZE`
		}
		if _, err := conn.Exec(ctx, detach); err != nil && !isUndefinedTable(err) {
			return dropped, fmt.Errorf("detach partition %s: %w", p.Name, err)
		}
		if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+p.Name); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", p.Name, err)
		}
		s.parts.forget(day)
		dropped += n
	}
	return dropped, nil
}

// isUndefinedTable reports whether err says the table does not exist (or is
// no longer a partition): another gateway's pruner got there first.
func isUndefinedTable(err error) bool {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		switch pe.SQLState() {
		case "42P01", "42P16": // undefined_table, invalid_table_definition (not a partition)
			return true
		}
	}
	return false
}

// dropOrphans drops the tables of days that were detached from calls but
// not dropped (the connection broke between the two), under the same rule
// as a partition: the day ended before cut and every exporter has
// delivered its calls. A table of that name would keep the day's
// partition from being made again. It returns the calls they held.
func dropOrphans(ctx context.Context, conn *pgx.Conn, cut int64) (int64, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c
	WHERE c.relkind = 'r' AND NOT c.relispartition AND c.relname LIKE 'calls\_p%'
	AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`)
	if err != nil {
		return 0, fmt.Errorf("list detached days: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("list detached days: %w", err)
	}
	var dropped int64
	for _, name := range names {
		day, ok := partitionDay(name)
		if _, hi := dayBounds(day); !ok || hi == "MAXVALUE" || (day+1)*dayNanos > cut {
			continue
		}
		var n, maxSeq, cursor int64
		if err := conn.QueryRow(ctx, `SELECT count(*), COALESCE(max(seq), 0),
		(SELECT COALESCE(MIN(seq), 9223372036854775807) FROM export_cursors) FROM `+name).Scan(&n, &maxSeq, &cursor); err != nil {
			return dropped, fmt.Errorf("read detached day %s: %w", name, err)
		}
		if maxSeq > cursor {
			continue // an exporter has yet to deliver some of its calls
		}
		if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+name); err != nil {
			return dropped, fmt.Errorf("drop detached day %s: %w", name, err)
		}
		dropped += n
	}
	return dropped, nil
}
