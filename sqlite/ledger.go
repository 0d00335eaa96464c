package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"llmscope/budget"
)

var (
	_ budget.Ledger  = (*Store)(nil)
	_ budget.Counter = (*Store)(nil)

	_ budget.HolderExpirer = (*Store)(nil)
	_ budget.CounterPruner = (*Store)(nil)
)

// The SQLite store keeps budget.Ledger's totals and budget.Counter's
// counts in tables (migration 0008), so that they survive a restart and
// are shared by every process using the file. Each method is one
// transaction on the single writer connection (BEGIN IMMEDIATE): SQLite
// runs one writer at a time, so each is atomic and the semantics are
// exactly MemLedger's and MemCounter's. The statements run without ctx's
// cancellation once the transaction has begun (as Write's do: a
// cancellable context costs a goroutine per statement); ctx bounds the
// wait for the writer.

// Acquire implements budget.Ledger: it grants holder want if Spent + Held
// + want ≤ limit, else need if that fits, else nothing, and adds the
// grant to Held and to holder's share, whose last-seen time it sets.
func (s *Store) Acquire(ctx context.Context, holder string, key budget.LedgerKey, need, want, limit budget.NanoUSD) (budget.NanoUSD, budget.Totals, error) {
	var (
		g budget.NanoUSD
		t budget.Totals
	)
	err := s.ledgerTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if t, err = totalsTx(ctx, tx, key); err != nil {
			return err
		}
		switch used := t.Spent + t.Held; {
		case used+want <= limit:
			g = want
		case used+need <= limit:
			g = need
		}
		if g <= 0 {
			return nil
		}
		t.Held += g
		if _, err := tx.ExecContext(ctx, `INSERT INTO budget_ledger (budget, subject, start, spent, held) VALUES (?, ?, ?, 0, ?)
			ON CONFLICT (budget, subject, start) DO UPDATE SET held = held + excluded.held`,
			key.Budget, key.Subject, key.Start, int64(g)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO budget_holds (budget, subject, start, holder, held, seen) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (budget, subject, start, holder) DO UPDATE SET held = held + excluded.held, seen = excluded.seen`,
			key.Budget, key.Subject, key.Start, holder, int64(g), time.Now().UnixNano())
		return err
	})
	if err != nil {
		return 0, budget.Totals{}, fmt.Errorf("sqlite: ledger acquire: %w", err)
	}
	return g, t, nil
}

// Commit implements budget.Ledger: it adds spent to Spent and takes
// min(release, holder's share) from Held and from the share (a share of
// 0 is deleted; another has its last-seen time set).
func (s *Store) Commit(ctx context.Context, holder string, key budget.LedgerKey, spent, release budget.NanoUSD) (budget.Totals, error) {
	var t budget.Totals
	err := s.ledgerTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var share int64
		err := tx.QueryRowContext(ctx, `SELECT held FROM budget_holds WHERE budget = ? AND subject = ? AND start = ? AND holder = ?`,
			key.Budget, key.Subject, key.Start, holder).Scan(&share)
		if errors.Is(err, sql.ErrNoRows) {
			share, err = 0, nil
		}
		if err != nil {
			return err
		}
		r := min(int64(release), share)
		switch left := share - r; {
		case left == 0 && share != 0:
			_, err = tx.ExecContext(ctx, `DELETE FROM budget_holds WHERE budget = ? AND subject = ? AND start = ? AND holder = ?`,
				key.Budget, key.Subject, key.Start, holder)
		case left != 0:
			_, err = tx.ExecContext(ctx, `INSERT INTO budget_holds (budget, subject, start, holder, held, seen) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (budget, subject, start, holder) DO UPDATE SET held = excluded.held, seen = excluded.seen`,
				key.Budget, key.Subject, key.Start, holder, left, time.Now().UnixNano())
		}
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO budget_ledger (budget, subject, start, spent, held) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (budget, subject, start) DO UPDATE SET spent = spent + excluded.spent, held = held + excluded.held
			RETURNING spent, held`,
			key.Budget, key.Subject, key.Start, int64(spent), -r).Scan(&t.Spent, &t.Held)
	})
	if err != nil {
		return budget.Totals{}, fmt.Errorf("sqlite: ledger commit: %w", err)
	}
	return t, nil
}

// Totals implements budget.Ledger, reading through the reader pool.
func (s *Store) Totals(ctx context.Context, key budget.LedgerKey) (budget.Totals, error) {
	t, err := totalsTx(ctx, s.reader, key)
	if err != nil {
		return budget.Totals{}, fmt.Errorf("sqlite: ledger totals: %w", err)
	}
	return t, nil
}

// ExpireHolders gives back every share of each holder silent for idle or
// longer (no Acquire or Commit on any key): their allowance leaves Held,
// so it can be granted again. It returns the number of shares expired.
//
// Use it for holders that are gone (a gateway that died): a live holder
// whose share is expired commits against a share of 0, so the spend it
// held can then exceed the limit by that share. idle must therefore be
// well beyond the sync interval and the longest call (an hour, say).
func (s *Store) ExpireHolders(ctx context.Context, idle time.Duration) (int64, error) {
	var n int64
	err := s.ledgerTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		const silent = `holder IN (SELECT holder FROM budget_holds GROUP BY holder HAVING max(seen) < ?)`
		cutoff := time.Now().Add(-idle).UnixNano()
		if _, err := tx.ExecContext(ctx, `UPDATE budget_ledger AS l SET held = l.held - h.held
			FROM (SELECT budget, subject, start, sum(held) AS held FROM budget_holds WHERE `+silent+`
			      GROUP BY budget, subject, start) AS h
			WHERE l.budget = h.budget AND l.subject = h.subject AND l.start = h.start`, cutoff); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM budget_holds WHERE `+silent, cutoff)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire holders: %w", err)
	}
	return n, nil
}

// ledgerTx runs fn in a transaction on the writer and commits it.
func (s *Store) ledgerTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := fn(context.WithoutCancel(ctx), tx); err != nil {
		return err
	}
	return tx.Commit()
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// totalsTx reads key's totals through q (zero for a key never used).
func totalsTx(ctx context.Context, q queryRower, key budget.LedgerKey) (budget.Totals, error) {
	var t budget.Totals
	err := q.QueryRowContext(ctx, `SELECT spent, held FROM budget_ledger WHERE budget = ? AND subject = ? AND start = ?`,
		key.Budget, key.Subject, key.Start).Scan(&t.Spent, &t.Held)
	if errors.Is(err, sql.ErrNoRows) {
		return budget.Totals{}, nil
	}
	return t, err
}

// Take implements budget.Counter: all of ops or none, in one transaction
// on the writer, exactly as MemCounter (duplicate keys included): one
// SELECT of the counts, and one upsert when it takes.
func (s *Store) Take(ctx context.Context, ops []budget.CounterOp, vals []int64) (bool, error) {
	if len(vals) < len(ops) {
		return false, fmt.Errorf("sqlite: rate take: %d values for %d counts", len(vals), len(ops))
	}
	if len(ops) == 0 {
		return true, nil
	}
	keys, idx := make([]budget.CounterKey, 0, len(ops)), make([]int, len(ops))
	for i, op := range ops {
		idx[i] = distinctKey(&keys, op.Key)
	}
	counts := make([]int64, len(keys))
	ok := true
	err := s.ledgerTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		args := make([]any, 0, 5*len(keys))
		for _, k := range keys {
			args = append(args, k.Window, string(k.Subject.Kind), k.Subject.Name, string(k.Unit))
		}
		rows, err := tx.QueryContext(ctx, `SELECT win, kind, subject, unit, n FROM rate_counts WHERE `+
			strings.Repeat(" OR (win = ? AND kind = ? AND subject = ? AND unit = ?)", len(keys))[4:], args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(counts)
		for rows.Next() {
			var (
				k    budget.CounterKey
				n    int64
				kind string
				unit string
			)
			if err := rows.Scan(&k.Window, &kind, &k.Subject.Name, &unit, &n); err != nil {
				return err
			}
			k.Subject.Kind, k.Unit = budget.Kind(kind), budget.Unit(unit)
			if j := slices.Index(keys, k); j >= 0 {
				counts[j] = n
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		ok = takeCounts(ops, idx, counts, vals)
		if !ok {
			return nil
		}
		sums := make([]int64, len(keys))
		for i, op := range ops {
			sums[idx[i]] += op.N
		}
		return upsertCounts(ctx, tx, keys, sums)
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: rate take: %w", err)
	}
	return ok, nil
}

// distinctKey returns the index of k in *keys, appending it when new.
func distinctKey(keys *[]budget.CounterKey, k budget.CounterKey) int {
	if j := slices.Index(*keys, k); j >= 0 {
		return j
	}
	*keys = append(*keys, k)
	return len(*keys) - 1
}

// takeCounts decides a Take as MemCounter does, from the counts found of
// the distinct keys (ops[i]'s is counts[idx[i]]): it takes when every
// count + N ≤ Limit, and writes vals: each count after the additions so
// far when it takes, as found when it does not.
func takeCounts(ops []budget.CounterOp, idx []int, counts, vals []int64) bool {
	ok := true
	for i, op := range ops {
		vals[i] = counts[idx[i]]
		ok = ok && vals[i]+op.N <= op.Limit
	}
	if !ok {
		return false
	}
	for i, op := range ops {
		counts[idx[i]] += op.N
		vals[i] = counts[idx[i]]
	}
	return true
}

// upsertCounts adds sums[i] to the count of keys[i] (distinct keys),
// creating it, in one statement.
func upsertCounts(ctx context.Context, tx *sql.Tx, keys []budget.CounterKey, sums []int64) error {
	args := make([]any, 0, 5*len(keys))
	for i, k := range keys {
		args = append(args, k.Window, string(k.Subject.Kind), k.Subject.Name, string(k.Unit), sums[i])
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO rate_counts (win, kind, subject, unit, n) VALUES `+
		strings.Repeat(", (?, ?, ?, ?, ?)", len(keys))[2:]+`
		ON CONFLICT (win, kind, subject, unit) DO UPDATE SET n = n + excluded.n`, args...)
	return err
}

// Add implements budget.Counter: it adds n to each key's count (creating
// it), in one statement. Unlike MemCounter, which skips the windows it
// has forgotten, it counts in any window; PruneCounters deletes them.
func (s *Store) Add(ctx context.Context, keys []budget.CounterKey, n int64) error {
	if len(keys) == 0 {
		return nil
	}
	var distinct []budget.CounterKey
	var sums []int64
	for _, k := range keys {
		if j := distinctKey(&distinct, k); j == len(sums) {
			sums = append(sums, n)
		} else {
			sums[j] += n
		}
	}
	err := s.ledgerTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return upsertCounts(ctx, tx, distinct, sums)
	})
	if err != nil {
		return fmt.Errorf("sqlite: rate add: %w", err)
	}
	return nil
}

// PruneCounters deletes the counts of windows starting before before
// (Unix seconds) and returns how many it deleted. The gateway calls it
// about once a minute with the previous window's start: a Counter needs
// only the current window (and the previous one, for late Adds).
func (s *Store) PruneCounters(ctx context.Context, before int64) (int64, error) {
	res, err := s.writer.ExecContext(ctx, `DELETE FROM rate_counts WHERE win < ?`, before)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune counters: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune counters: %w", err)
	}
	return n, nil
}
