package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope/budget"
)

var (
	_ budget.Ledger  = (*Store)(nil)
	_ budget.Counter = (*Store)(nil)

	_ budget.HolderExpirer = (*Store)(nil)
	_ budget.CounterPruner = (*Store)(nil)
)

// The Postgres store keeps budget.Ledger's totals and budget.Counter's
// counts in tables (migration 0005) shared by every gateway on the
// database. Each method that changes them is one transaction and one
// round trip: a pgx batch, which the server runs as one implicit
// transaction, of two statements. The first locks the rows the method
// works on (creating missing ones with INSERT … ON CONFLICT DO UPDATE …
// WHERE false, which locks a row without writing it), always in one
// order, so that concurrent methods never deadlock; the second starts
// after the locks are held, so its snapshot sees the latest committed
// values, and computes and writes the result in SQL. A holds row changes
// only under the lock of its ledger row. The semantics are exactly
// MemLedger's and MemCounter's, and no interleaving of gateways grants
// past a limit. The ledger tables are logged (a committed grant or spend
// survives a crash); rate_counts is UNLOGGED, so a Take does not wait for
// a disk flush, and a crash or failover restarts the minute's counts.

// lockLedgerSQL creates the ledger row of a key ($1 budget, $2 subject,
// $3 start) or locks it.
const lockLedgerSQL = `INSERT INTO budget_ledger (budget, subject, start, spent, held) VALUES ($1, $2, $3, 0, 0)
ON CONFLICT (budget, subject, start) DO UPDATE SET held = budget_ledger.held WHERE false`

// acquireSQL grants $7 (holder) $5 (want) if spent + held + $5 ≤ $6
// (limit), else $4 (need) if that fits, else nothing; it returns the
// grant and the totals after it.
const acquireSQL = `WITH cur AS (
	SELECT spent, held, CASE WHEN spent + held + $5 <= $6 THEN $5::bigint WHEN spent + held + $4 <= $6 THEN $4::bigint ELSE 0 END AS g
	FROM budget_ledger WHERE budget = $1 AND subject = $2 AND start = $3
), upd AS (
	UPDATE budget_ledger l SET held = l.held + cur.g FROM cur
	WHERE cur.g > 0 AND l.budget = $1 AND l.subject = $2 AND l.start = $3
), h AS (
	INSERT INTO budget_holds (budget, subject, start, holder, held, seen) SELECT $1, $2, $3, $7, g, now() FROM cur WHERE g > 0
	ON CONFLICT (budget, subject, start, holder) DO UPDATE SET held = budget_holds.held + excluded.held, seen = excluded.seen
)
SELECT g, spent, held + GREATEST(g, 0) FROM cur`

// commitSQL adds $5 (spent) to spent and takes r = min($6 (release),
// share of $4 (holder)) from held and from the share (deleted at 0); it
// returns the totals after it.
const commitSQL = `WITH sh AS (
	SELECT COALESCE((SELECT held FROM budget_holds WHERE budget = $1 AND subject = $2 AND start = $3 AND holder = $4), 0) AS s
), r AS (
	SELECT s, LEAST($6::bigint, s) AS r FROM sh
), hd AS (
	DELETE FROM budget_holds WHERE budget = $1 AND subject = $2 AND start = $3 AND holder = $4 AND (SELECT s - r FROM r) = 0
), hu AS (
	INSERT INTO budget_holds (budget, subject, start, holder, held, seen) SELECT $1, $2, $3, $4, s - r, now() FROM r WHERE s - r <> 0
	ON CONFLICT (budget, subject, start, holder) DO UPDATE SET held = excluded.held, seen = excluded.seen
)
UPDATE budget_ledger l SET spent = l.spent + $5, held = l.held - r.r FROM r
WHERE l.budget = $1 AND l.subject = $2 AND l.start = $3
RETURNING l.spent, l.held`

// Acquire implements budget.Ledger in one round trip (see above); the
// grant sets holder's last-seen time (the server's clock).
func (s *Store) Acquire(ctx context.Context, holder string, key budget.LedgerKey, need, want, limit budget.NanoUSD) (budget.NanoUSD, budget.Totals, error) {
	if err := cleanLedger(holder, key); err != nil {
		return 0, budget.Totals{}, fmt.Errorf("postgres: ledger acquire: %w", err)
	}
	var (
		g budget.NanoUSD
		t budget.Totals
	)
	b := &pgx.Batch{}
	b.Queue(lockLedgerSQL, key.Budget, key.Subject, key.Start)
	b.Queue(acquireSQL, key.Budget, key.Subject, key.Start, int64(need), int64(want), int64(limit), holder).
		QueryRow(func(row pgx.Row) error { return row.Scan(&g, &t.Spent, &t.Held) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, budget.Totals{}, fmt.Errorf("postgres: ledger acquire: %w", err)
	}
	return g, t, nil
}

// Commit implements budget.Ledger in one round trip (see above); a share
// left non-zero has its last-seen time set.
func (s *Store) Commit(ctx context.Context, holder string, key budget.LedgerKey, spent, release budget.NanoUSD) (budget.Totals, error) {
	if err := cleanLedger(holder, key); err != nil {
		return budget.Totals{}, fmt.Errorf("postgres: ledger commit: %w", err)
	}
	var t budget.Totals
	b := &pgx.Batch{}
	b.Queue(lockLedgerSQL, key.Budget, key.Subject, key.Start)
	b.Queue(commitSQL, key.Budget, key.Subject, key.Start, holder, int64(spent), int64(release)).
		QueryRow(func(row pgx.Row) error { return row.Scan(&t.Spent, &t.Held) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return budget.Totals{}, fmt.Errorf("postgres: ledger commit: %w", err)
	}
	return t, nil
}

// Totals implements budget.Ledger: one read, no lock.
func (s *Store) Totals(ctx context.Context, key budget.LedgerKey) (budget.Totals, error) {
	if err := cleanLedger("", key); err != nil {
		return budget.Totals{}, fmt.Errorf("postgres: ledger totals: %w", err)
	}
	var t budget.Totals
	err := s.pool.QueryRow(ctx, `SELECT spent, held FROM budget_ledger WHERE budget = $1 AND subject = $2 AND start = $3`,
		key.Budget, key.Subject, key.Start).Scan(&t.Spent, &t.Held)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return budget.Totals{}, fmt.Errorf("postgres: ledger totals: %w", err)
	}
	return t, nil
}

// silentSQL selects the holders whose latest Acquire or Commit on any key
// is older than $1 microseconds by the server's clock.
const silentSQL = `SELECT holder FROM budget_holds GROUP BY holder HAVING max(seen) < now() - $1 * interval '1 microsecond'`

// ExpireHolders gives back every share of each holder silent for idle or
// longer (no Acquire or Commit on any key, by the server's clock): their
// allowance leaves Held, so it can be granted again. It returns the
// number of shares expired. One transaction: it locks the ledger rows of
// the silent holders' shares in the order every method locks them, then
// deletes the shares of those rows whose holder is still silent.
//
// Use it for holders that are gone (a gateway that died): a live holder
// whose share is expired commits against a share of 0, so the spend it
// held can then exceed the limit by that share. idle must therefore be
// well beyond the sync interval and the longest call (an hour, say).
func (s *Store) ExpireHolders(ctx context.Context, idle time.Duration) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT budget, subject, start FROM budget_ledger WHERE (budget, subject, start) IN (
			SELECT budget, subject, start FROM budget_holds WHERE holder IN (`+silentSQL+`))
			ORDER BY budget, subject, start FOR UPDATE`, idle.Microseconds())
		if err != nil {
			return err
		}
		var (
			budgets, subjects []string
			starts            []int64
		)
		for rows.Next() {
			var (
				b, sub string
				st     int64
			)
			if err := rows.Scan(&b, &sub, &st); err != nil {
				return err
			}
			budgets, subjects, starts = append(budgets, b), append(subjects, sub), append(starts, st)
		}
		if err := rows.Err(); err != nil || len(starts) == 0 {
			return err
		}
		return tx.QueryRow(ctx, `WITH locked AS (
			SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k (budget, subject, start)
		), d AS (
			DELETE FROM budget_holds h USING locked
			WHERE h.budget = locked.budget AND h.subject = locked.subject AND h.start = locked.start AND h.holder IN (`+silentSQL+`)
			RETURNING h.budget, h.subject, h.start, h.held
		), sums AS (
			SELECT budget, subject, start, sum(held) AS held FROM d GROUP BY budget, subject, start
		), u AS (
			UPDATE budget_ledger l SET held = l.held - sums.held FROM sums
			WHERE l.budget = sums.budget AND l.subject = sums.subject AND l.start = sums.start
		)
		SELECT count(*) FROM d`, idle.Microseconds(), budgets, subjects, starts).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: expire holders: %w", err)
	}
	return n, nil
}

// cleanLedger refuses the strings Postgres text cannot hold (a NUL byte,
// invalid UTF-8) in a ledger key or holder.
func cleanLedger(holder string, key budget.LedgerKey) error {
	for _, f := range [...]struct{ name, v string }{{"holder", holder}, {"budget", key.Budget}, {"subject", key.Subject}} {
		if !clean(f.v) {
			return fmt.Errorf("%s %q holds a NUL byte or invalid UTF-8", f.name, f.v)
		}
	}
	return nil
}

// counterArrays are distinct counter keys, column by column, sorted: the
// order every transaction locks them in.
type counterArrays struct {
	win                 []int64
	kind, subject, unit []string
}

// distinctCounters returns keys' distinct keys sorted, and the index of
// each of keys among them; an unstorable string is an error.
func distinctCounters(keys []budget.CounterKey) ([]budget.CounterKey, []int, error) {
	distinct := slices.Clone(keys)
	slices.SortFunc(distinct, compareCounterKeys)
	distinct = slices.Compact(distinct)
	idx := make([]int, len(keys))
	for i, k := range keys {
		if !clean(string(k.Subject.Kind)) || !clean(k.Subject.Name) || !clean(string(k.Unit)) {
			return nil, nil, fmt.Errorf("count %s %s holds a NUL byte or invalid UTF-8", k.Subject, k.Unit)
		}
		idx[i], _ = slices.BinarySearchFunc(distinct, k, compareCounterKeys)
	}
	return distinct, idx, nil
}

func compareCounterKeys(a, b budget.CounterKey) int {
	if c := a.Window - b.Window; c != 0 {
		return int(min(max(c, -1), 1))
	}
	if c := strings.Compare(string(a.Subject.Kind), string(b.Subject.Kind)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Subject.Name, b.Subject.Name); c != 0 {
		return c
	}
	return strings.Compare(string(a.Unit), string(b.Unit))
}

func arraysOf(keys []budget.CounterKey) counterArrays {
	a := counterArrays{
		win: make([]int64, len(keys)), kind: make([]string, len(keys)),
		subject: make([]string, len(keys)), unit: make([]string, len(keys)),
	}
	for i, k := range keys {
		a.win[i], a.kind[i], a.subject[i], a.unit[i] = k.Window, string(k.Subject.Kind), k.Subject.Name, string(k.Unit)
	}
	return a
}

// lockCountsSQL creates or locks the counts of its arrays, in their order.
const lockCountsSQL = `INSERT INTO rate_counts (win, kind, subject, unit, n)
SELECT win, kind, subject, unit, 0 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS o (win, kind, subject, unit, ord)
ORDER BY ord
ON CONFLICT (win, kind, subject, unit) DO UPDATE SET n = rate_counts.n WHERE false`

// takeSQL adds $5[i] to the count of key i when every count ≤ $6[i] (its
// highest count that still takes), and returns the counts as found, in
// the arrays' order.
const takeSQL = `WITH o AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) WITH ORDINALITY
		AS o (win, kind, subject, unit, d, maxn, ord)
), cur AS (
	SELECT o.*, c.n FROM o JOIN rate_counts c ON c.win = o.win AND c.kind = o.kind AND c.subject = o.subject AND c.unit = o.unit
), ok AS (
	SELECT bool_and(n <= maxn) AND count(*) = cardinality($1::bigint[]) AS ok FROM cur
), upd AS (
	UPDATE rate_counts c SET n = c.n + cur.d FROM cur, ok
	WHERE ok.ok AND c.win = cur.win AND c.kind = cur.kind AND c.subject = cur.subject AND c.unit = cur.unit
)
SELECT n, (SELECT ok FROM ok) FROM cur ORDER BY ord`

// Take implements budget.Counter in one round trip (see above): all of
// ops or none, exactly as MemCounter, duplicate keys included. Its locks
// are on the distinct keys in sorted order.
func (s *Store) Take(ctx context.Context, ops []budget.CounterOp, vals []int64) (bool, error) {
	if len(vals) < len(ops) {
		return false, fmt.Errorf("postgres: rate take: %d values for %d counts", len(vals), len(ops))
	}
	if len(ops) == 0 {
		return true, nil
	}
	keys := make([]budget.CounterKey, len(ops))
	for i := range ops {
		keys[i] = ops[i].Key
	}
	distinct, idx, err := distinctCounters(keys)
	if err != nil {
		return false, fmt.Errorf("postgres: rate take: %w", err)
	}
	sums, maxn := make([]int64, len(distinct)), make([]int64, len(distinct))
	for j := range maxn {
		maxn[j] = 1<<63 - 1
	}
	for i, op := range ops {
		sums[idx[i]] += op.N
		maxn[idx[i]] = min(maxn[idx[i]], subSat(op.Limit, op.N))
	}
	a := arraysOf(distinct)
	counts := make([]int64, 0, len(distinct))
	var took bool
	b := &pgx.Batch{}
	b.Queue(lockCountsSQL, a.win, a.kind, a.subject, a.unit)
	b.Queue(takeSQL, a.win, a.kind, a.subject, a.unit, sums, maxn).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n, &took); err != nil {
				return err
			}
			counts = append(counts, n)
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("postgres: rate take: %w", err)
	}
	if len(counts) != len(distinct) {
		return false, fmt.Errorf("postgres: rate take: %d counts for %d keys", len(counts), len(distinct))
	}
	takeVals(ops, idx, counts, vals, took)
	return took, nil
}

// subSat returns a − b, saturated at the int64 range.
func subSat(a, b int64) int64 {
	d := a - b
	switch {
	case b < 0 && d < a:
		return 1<<63 - 1
	case b > 0 && d > a:
		return -1 << 63
	}
	return d
}

// takeVals writes a Take's vals as MemCounter does, from the counts found
// of the distinct keys (ops[i]'s is counts[idx[i]]): the counts after the
// additions so far when it took, as found when it did not.
func takeVals(ops []budget.CounterOp, idx []int, counts, vals []int64, took bool) {
	for i, op := range ops {
		if took {
			counts[idx[i]] += op.N
		}
		vals[i] = counts[idx[i]]
	}
}

// Add implements budget.Counter: it adds n to each key's count (creating
// it), in one statement locking them in sorted order. Unlike MemCounter,
// which skips the windows it has forgotten, it counts in any window;
// PruneCounters deletes them.
func (s *Store) Add(ctx context.Context, keys []budget.CounterKey, n int64) error {
	if len(keys) == 0 {
		return nil
	}
	distinct, idx, err := distinctCounters(keys)
	if err != nil {
		return fmt.Errorf("postgres: rate add: %w", err)
	}
	sums := make([]int64, len(distinct))
	for _, j := range idx {
		sums[j] += n
	}
	a := arraysOf(distinct)
	_, err = s.pool.Exec(ctx, `INSERT INTO rate_counts (win, kind, subject, unit, n)
		SELECT win, kind, subject, unit, d FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])
			WITH ORDINALITY AS o (win, kind, subject, unit, d, ord)
		ORDER BY ord
		ON CONFLICT (win, kind, subject, unit) DO UPDATE SET n = rate_counts.n + excluded.n`,
		a.win, a.kind, a.subject, a.unit, sums)
	if err != nil {
		return fmt.Errorf("postgres: rate add: %w", err)
	}
	return nil
}

// PruneCounters deletes the counts of windows starting before before
// (Unix seconds), locking them in the order Take and Add do, and returns
// how many it deleted. The gateway calls it about once a minute with the
// previous window's start: a Counter needs only the current window (and
// the previous one, for late Adds).
func (s *Store) PruneCounters(ctx context.Context, before int64) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM rate_counts WHERE (win, kind, subject, unit) IN (
		SELECT win, kind, subject, unit FROM rate_counts WHERE win < $1 ORDER BY win, kind, subject, unit FOR UPDATE)`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune counters: %w", err)
	}
	return tag.RowsAffected(), nil
}
