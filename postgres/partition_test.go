package postgres

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"llmscope"
	"llmscope/internal/pgtest"
)

// partitionNames lists the partitions of the calls table.
func partitionNames(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'calls'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// callsOnDays returns n calls on each of days (UTC midnights), 20 minutes apart.
func callsOnDays(n int, days ...time.Time) []*llmscope.Call {
	var out []*llmscope.Call
	for _, d := range days {
		for i, c := range benchCalls(n, rand.New(rand.NewPCG(uint64(d.Unix()), 1))) {
			c.Start = d.Add(time.Duration(i) * 20 * time.Minute)
			out = append(out, c)
		}
	}
	return out
}

func TestPartitionPerDay(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	d1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	calls := callsOnDays(3, d1, d1.AddDate(0, 0, 5))
	calls = append(calls, &llmscope.Call{ID: "zero-start", Operation: "chat"}) // the zero time
	if err := s.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	want := []string{"calls_p20260301", "calls_p20260302", "calls_p20260303", "calls_p20260306", "calls_p20260307", "calls_p20260308", "calls_pbefore1970"}
	if got := partitionNames(t, s); !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v (each day written and the next two)", got, want)
	}
	// A second store (another gateway) writing the same days creates nothing
	// twice and fails nothing.
	other, err := Open(ctx, s.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Write(ctx, callsOnDays(2, d1.AddDate(0, 0, 1))); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, llmscope.Filter{})
	if err != nil || st.Totals.Calls != 9 {
		t.Fatalf("Stats: %+v, %v; want 9 calls", st, err)
	}
}

// Retention drops whole days, never one holding a call an exporter has not
// delivered, and two gateways pruning at once drop each day once.
func TestDropBeforeWholeDays(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	old := callsOnDays(50, today.AddDate(0, 0, -10), today.AddDate(0, 0, -9), today.AddDate(0, 0, -8))
	fresh := callsOnDays(5, today)
	for chunk := range slices.Chunk(append(slices.Clone(old), fresh...), 40) {
		if err := s.Write(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.After(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]int64{}
	for _, c := range stored {
		seqOf[c.ID] = c.Seq
	}
	// The exporter has delivered the first day only.
	firstDay := old[:50]
	if err := s.SetCursor(ctx, "mlflow", slices.Max(mapSeqs(seqOf, firstDay))); err != nil {
		t.Fatal(err)
	}
	cutoff := today.AddDate(0, 0, -1)
	n, err := s.DropBefore(ctx, cutoff)
	if err != nil || n != 50 {
		t.Fatalf("DropBefore = %d, %v; want the 50 calls of the delivered day", n, err)
	}
	if names := partitionNames(t, s); slices.Contains(names, partitionName(dayOf(firstDay[0].Start.UnixNano()))) {
		t.Errorf("partitions %v still hold the dropped day", names)
	}
	// Everything delivered: two gateways drop the other days once between them.
	if err := s.SetCursor(ctx, "mlflow", slices.Max(mapSeqs(seqOf, stored))); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, s.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	var dropped [2]int64
	for i, st := range []*Store{s, other} {
		wg.Go(func() {
			for range 5 {
				n, err := st.DropBefore(ctx, cutoff)
				if err != nil {
					t.Errorf("DropBefore: %v", err)
					return
				}
				dropped[i] += n
			}
		})
	}
	wg.Go(func() { // writes go on meanwhile
		for chunk := range slices.Chunk(callsOnDays(20, today), 5) {
			if err := s.Write(ctx, chunk); err != nil {
				t.Errorf("Write while dropping: %v", err)
			}
		}
	})
	wg.Wait()
	if dropped[0]+dropped[1] != 100 {
		t.Errorf("gateways dropped %d + %d calls, want 100 in all", dropped[0], dropped[1])
	}
	left, err := s.List(ctx, llmscope.Filter{Limit: 1000})
	if err != nil || len(left) != 25 {
		t.Fatalf("List after dropping: %d calls, %v; want today's 25", len(left), err)
	}
	// A dropped day written again (a late call) gets its partition back.
	late := callsOnDays(1, today.AddDate(0, 0, -9))
	if err := s.Write(ctx, late); err != nil {
		t.Fatalf("write to a dropped day: %v", err)
	}
}

func mapSeqs(seqOf map[string]int64, calls []*llmscope.Call) []int64 {
	var out []int64
	for _, c := range calls {
		out = append(out, seqOf[c.ID])
	}
	return out
}

// A database with calls from before partitioning keeps them, their seqs and
// their order, and new calls continue after them.
func TestMigrationPartitionsStoredCalls(t *testing.T) {
	url := pgtest.DB(t)
	ctx := t.Context()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	idx := slices.IndexFunc(ms, func(m migration) bool { return m.Name == "0004_partitions.sql" || m.Version == 4 })
	if idx < 0 {
		t.Fatal("no migration 4")
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool, ms[:idx]); err != nil {
		t.Fatal(err)
	}
	// Write as the unpartitioned schema did: id alone was unique.
	calls := callsOnDays(4, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))
	var rows columnArrays
	for _, c := range calls {
		if err := rows.add(c); err != nil {
			t.Fatal(err)
		}
	}
	// The columns of schema version 3: those up to upstream.
	n := slices.IndexFunc(dataColumns, func(c column) bool { return c.name == "upstream" }) + 1
	if _, err := pool.Exec(ctx, insertInto(dataColumns[:n], "(id)"), rows.args()[:n]...); err != nil {
		t.Fatal(err)
	}
	rows2, err := pool.Query(ctx, `SELECT id, seq FROM calls ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type idSeq struct {
		ID  string
		Seq int64
	}
	was, err := pgx.CollectRows(rows2, pgx.RowToStructByPos[idSeq])
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()

	s, err := Open(ctx, url) // migrates to the partitioned schema
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now, err := s.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(now) != len(was) {
		t.Fatalf("%d calls after migrating, %d before", len(now), len(was))
	}
	for i := range was {
		if now[i].ID != was[i].ID || now[i].Seq != was[i].Seq {
			t.Errorf("call %d: %s seq %d, was %s seq %d", i, now[i].ID, now[i].Seq, was[i].ID, was[i].Seq)
		}
	}
	if got := partitionNames(t, s); !slices.Contains(got, "calls_p20260101") || !slices.Contains(got, "calls_p20260103") {
		t.Errorf("partitions after migrating: %v", got)
	}
	next := callsOnDays(1, time.Now().UTC().Truncate(time.Hour))
	if err := s.Write(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	all, err := s.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if last := all[len(all)-1]; last.ID != next[0].ID || last.Seq <= was[len(was)-1].Seq {
		t.Errorf("a new call got seq %d after %d: the sequence did not continue", last.Seq, was[len(was)-1].Seq)
	}
}

// A day detached but not dropped (the connection broke in between) is
// dropped by the next DropBefore, and the day can be written again.
func TestDropBeforeFinishesADetachedDay(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	old := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -20)
	calls := callsOnDays(4, old)
	if err := s.Write(ctx, calls); err != nil {
		t.Fatal(err)
	}
	name := partitionName(dayOf(old.UnixNano()))
	if _, err := s.pool.Exec(ctx, `ALTER TABLE calls DETACH PARTITION `+name); err != nil {
		t.Fatal(err)
	}
	n, err := s.DropBefore(ctx, time.Now().AddDate(0, 0, -10))
	if err != nil || n != 4 {
		t.Fatalf("DropBefore = %d, %v; want the detached day's 4 calls", n, err)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil || exists {
		t.Fatalf("table %s still exists (%v)", name, err)
	}
	if err := s.Write(ctx, callsOnDays(1, old)); err != nil {
		t.Fatalf("writing the day again: %v", err)
	}
}
