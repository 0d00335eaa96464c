package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"llmscope"
	"llmscope/internal/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "llmscope.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) llmscope.Store { return openTemp(t) })
}

func testCall(id string, start time.Time) *llmscope.Call {
	return &llmscope.Call{
		ID:            id,
		TraceID:       llmscope.TraceIDFor(id),
		Start:         start,
		DurationMS:    812.4,
		TTFTMS:        143.2,
		Operation:     llmscope.OpChat,
		Provider:      "openai",
		Endpoint:      "/v1/chat/completions",
		RequestModel:  "gpt-4o-mini",
		ResponseModel: "gpt-4o-mini-2024-07-18",
		Stream:        true,
		Status:        200,
		FinishReason:  "stop",
		Params:        llmscope.Params{Temperature: new(0.7), MaxTokens: new(int64(256))},
		Usage:         llmscope.Usage{InputTokens: 21, OutputTokens: 87, TotalTokens: 108, Source: llmscope.UsageReported},
		Cost:          &llmscope.Cost{InputUSD: 3e-6, OutputUSD: 5e-5, TotalUSD: 5.3e-5, PriceSource: "test"},
		Experiment:    "llmscope",
		Tags:          map[string]string{},
		OverheadMS:    0.04,
	}
}

type migrationRow struct {
	Version   int
	Name      string
	AppliedAt int64
}

func migrationRows(t *testing.T, s *Store) []migrationRow {
	t.Helper()
	rows, err := s.reader.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []migrationRow
	for rows.Next() {
		var r migrationRow
		if err := rows.Scan(&r.Version, &r.Name, &r.AppliedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calls.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	want := testCall(llmscope.NewID(), time.Now())
	if err := s.Write(t.Context(), []*llmscope.Call{want}); err != nil {
		t.Fatal(err)
	}
	before := migrationRows(t, s)
	if len(before) == 0 || before[0].Version != 1 {
		t.Fatalf("schema_migrations after first open = %+v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The first migration creates tables without IF NOT EXISTS: re-running
	// it would fail the open. The recorded rows must be untouched.
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if after := migrationRows(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("schema_migrations changed on reopen:\n before %+v\n after  %+v", before, after)
	}
	got, err := s.Get(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	want.Start = want.Start.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen got %+v\nwant %+v", got, want)
	}
}

func TestNewMigrationAppliedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calls.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), []*llmscope.Call{testCall("kept", time.Now())}); err != nil {
		t.Fatal(err)
	}
	embedded, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for _, m := range embedded {
		fsys["migrations/"+m.Name] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	next := embedded[len(embedded)-1].Version + 1
	fsys[fmt.Sprintf("migrations/%04d_extra.sql", next)] = &fstest.MapFile{
		Data: []byte("CREATE TABLE extra (n INTEGER NOT NULL);\nINSERT INTO extra (n) VALUES (1);\n"),
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := migrate(t.Context(), s.writer, ms); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	var n int
	if err := s.reader.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM extra`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("new migration ran %d times, want once", n)
	}
	if rows := migrationRows(t, s); len(rows) != len(ms) || rows[len(rows)-1].Version != next {
		t.Errorf("schema_migrations = %+v, want versions up to %d", rows, next)
	}
	if _, err := s.Get(t.Context(), "kept"); err != nil {
		t.Errorf("data lost by migration: %v", err)
	}
	s.Close()

	// This build knows only the embedded migrations: it must refuse the
	// newer database rather than write to a schema it does not know.
	if s, err := Open(t.Context(), path); !errors.Is(err, errSchemaTooNew) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open(newer schema) = %v, want errSchemaTooNew", err)
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"migrations/init.sql": {}},
		"duplicate": {"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}},
		"zero":      {"migrations/0000_a.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted %v", name, fsys)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(dir, "missing", "x.db")} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		} else if !strings.HasPrefix(err.Error(), "sqlite: open ") {
			t.Errorf("Open(%q) error %q lacks context", path, err)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20 d&e=f.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(t.Context(), []*llmscope.Call{testCall("x", time.Now())}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	check := func(label, pragma string, want any) {
		t.Helper()
		for which, db := range map[string]queryer{"writer": s.writer, "reader": s.reader} {
			got := reflect.New(reflect.TypeOf(want))
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(got.Interface()); err != nil {
				t.Fatalf("%s %s: %v", which, pragma, err)
			}
			if g := got.Elem().Interface(); g != want {
				t.Errorf("%s: %s = %v, want %v", which, label, g, want)
			}
		}
	}
	check("journal_mode", "journal_mode", "wal")
	check("synchronous", "synchronous", int64(1)) // NORMAL
	check("busy_timeout", "busy_timeout", busyTimeout.Milliseconds())
	if s.writer.Stats().MaxOpenConnections != 1 {
		t.Errorf("writer allows %d connections, want 1", s.writer.Stats().MaxOpenConnections)
	}
	if _, err := s.reader.ExecContext(t.Context(), `DELETE FROM calls`); err == nil {
		t.Error("the reader pool accepted a write")
	}
}

func TestStringsStoredAsGiven(t *testing.T) {
	s := openTemp(t)
	c := testCall("strings", time.Now())
	c.Input = "nul\x00byte, invalid utf-8 \xff\xfe, emoji 👋, quote ' \" `"
	c.Output = "\x00"
	c.RequestModel = "model\x00with-nul"
	c.ErrorType = "  padded  "
	c.Run = "\xc3\x28"
	if err := s.Write(t.Context(), []*llmscope.Call{c}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, got, want string }{
		{"Input", got.Input, c.Input},
		{"Output", got.Output, c.Output},
		{"RequestModel", got.RequestModel, c.RequestModel},
		{"ErrorType", got.ErrorType, c.ErrorType},
		{"Run", got.Run, c.Run},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
}

func TestWriteIsAtomic(t *testing.T) {
	s := openTemp(t)
	good := testCall("good", time.Now())
	bad := testCall("bad", time.Now())
	bad.Params.Temperature = new(math.NaN()) // JSON cannot encode NaN
	err := s.Write(t.Context(), []*llmscope.Call{good, bad})
	if err == nil || !strings.HasPrefix(err.Error(), "sqlite: write batch: ") {
		t.Fatalf("Write(batch with NaN) = %v, want a wrapped error", err)
	}
	if _, err := s.Get(t.Context(), good.ID); !errors.Is(err, llmscope.ErrNotFound) {
		t.Errorf("half a failed batch was committed: Get(good) = %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, []*llmscope.Call{good}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := s.Write(t.Context(), []*llmscope.Call{good, nil}); err != nil {
		t.Errorf("Write after failures: %v", err)
	}
}

func TestZeroAndFarTimes(t *testing.T) {
	s := openTemp(t)
	zero := testCall("zero", time.Time{})
	old := testCall("old", time.Date(1700, 1, 1, 0, 0, 0, 1, time.UTC))
	now := testCall("now", time.Now())
	if err := s.Write(t.Context(), []*llmscope.Call{zero, old, now}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(t.Context(), "zero")
	if err != nil || !got.Start.IsZero() {
		t.Errorf("zero start read back as %v, %v", got, err)
	}
	list, err := s.List(t.Context(), llmscope.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, c := range list {
		order = append(order, c.ID)
	}
	if strings.Join(order, ",") != "now,old,zero" {
		t.Errorf("List order = %v, want now,old,zero", order)
	}
}

// TestQueryPlans guards the indexes: the common reads must not scan the table.
func TestQueryPlans(t *testing.T) {
	s := openTemp(t)
	for _, f := range []llmscope.Filter{
		{},
		{Since: time.Now()},
		{Run: "r"},
		{Experiment: "e", Since: time.Now()},
	} {
		cond, args := where(f)
		rows, err := s.reader.QueryContext(t.Context(),
			`EXPLAIN QUERY PLAN SELECT `+columns+` FROM calls`+cond+` ORDER BY start DESC, id DESC LIMIT ?`, append(args, 10)...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX") {
			t.Errorf("List(%+v) plan uses no index: %s", f, p)
		}
	}
}

func benchCalls(n int, rng *rand.Rand) []*llmscope.Call {
	models := []string{"gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1"}
	base := time.Now()
	calls := make([]*llmscope.Call, n)
	for i := range calls {
		c := testCall(llmscope.NewID(), base.Add(time.Duration(i)*time.Millisecond))
		c.RequestModel = models[rng.IntN(len(models))]
		c.DurationMS = rng.ExpFloat64() * 500
		c.TTFTMS = rng.Float64() * 200
		c.Stream = rng.IntN(2) == 0
		if rng.IntN(10) == 0 {
			c.Cost = nil
		}
		calls[i] = c
	}
	return calls
}

// BenchmarkWrite measures committing calls into a store that holds 50,000
// already: batch 16 is a commit of the recorder at about 2,000 calls/s with
// a 5 ms commit wait, 200 one at the default 100 ms, 256 a full batch. The
// recorder writes with a deadline, as here. cpu-µs/call is the process's
// CPU time (user and system) per call: the wall time also holds the
// checkpoints' fsyncs, which cost the request path nothing. The captured
// cases are calls with capture on and a 50 KB prompt (over 2,000 such calls
// stored first): what SQLite costs per stored byte.
func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct{ batch, text int }{{16, 0}, {200, 0}, {256, 0}, {16, 50 << 10}, {64, 50 << 10}, {256, 50 << 10}} {
		batch := bc.batch
		name := fmt.Sprintf("batch=%d", batch)
		if bc.text > 0 {
			name += fmt.Sprintf("/captured=%dKB", bc.text>>10)
		}
		b.Run(name, func(b *testing.B) {
			s := openTemp(b)
			calls := benchCalls(batch*64, rand.New(rand.NewPCG(1, 1)))
			if bc.text > 0 {
				calls = calls[:batch*4] // 50,000 such calls would be 2.5 GB
				text := strings.Repeat("the quick brown fox jumps over the lazy dog ", bc.text/44+1)[:bc.text]
				for _, c := range calls {
					c.Input = text
					c.Output = text[:1000]
				}
			}
			prefill := 50_000
			if bc.text > 0 {
				prefill = 2_000
			}
			for range prefill / len(calls) {
				for _, c := range calls {
					c.ID = llmscope.NewID()
				}
				if err := s.Write(context.Background(), calls); err != nil {
					b.Fatal(err)
				}
			}
			var r0, r1 syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
				b.Fatal(err)
			}
			written := 0
			for b.Loop() {
				chunk := calls[(written%len(calls))/batch*batch:][:batch]
				for _, c := range chunk {
					c.ID = llmscope.NewID()
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := s.Write(ctx, chunk)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				written += batch
			}
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
				b.Fatal(err)
			}
			cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "calls/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(written), "cpu-µs/call")
		})
	}
}

// BenchmarkStats100k measures Stats over 100,000 calls.
func BenchmarkStats100k(b *testing.B) {
	s := openTemp(b)
	calls := benchCalls(100_000, rand.New(rand.NewPCG(2, 2)))
	for i := 0; i < len(calls); i += 1000 {
		if err := s.Write(context.Background(), calls[i:i+1000]); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		st, err := s.Stats(context.Background(), llmscope.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		if st.Totals.Calls != int64(len(calls)) {
			b.Fatalf("Stats counted %d calls", st.Totals.Calls)
		}
	}
}

// TestWritePausesWhileBusy: while the process is busy, a batch that runs
// longer than writeSlice parks the writer between inserts (so that, with
// one P, requests do not wait for the whole batch); while it is not, the
// batch runs through. Either way every call is committed.
func TestWritePausesWhileBusy(t *testing.T) {
	s := openTemp(t)
	var pauses int
	pause = func(d time.Duration) {
		pauses++
		time.Sleep(d)
	}
	t.Cleanup(func() { pause = time.Sleep })
	var busy atomic.Bool
	s.PauseWhile(busy.Load)
	stored := 0
	for _, b := range []bool{false, true, false} {
		busy.Store(b)
		pauses = 0
		calls := benchCalls(500, rand.New(rand.NewPCG(2, 2)))
		start := time.Now()
		if err := s.Write(context.Background(), calls); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		stored += len(calls)
		// 500 inserts take milliseconds: far more than one slice of 100 µs.
		if b && took > 2*writeSlice && pauses == 0 {
			t.Errorf("busy: a batch of %d calls ran %v without a pause", len(calls), took)
		}
		if !b && pauses > 0 {
			t.Errorf("idle: a batch of %d calls paused %d times", len(calls), pauses)
		}
		var n int
		if err := s.reader.QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != stored {
			t.Errorf("busy %v: %d calls stored, want %d", b, n, stored)
		}
		t.Logf("busy %v: %d calls in %v with %d pauses", b, len(calls), took, pauses)
	}
}

// TestWritePausesAtMostAsLongAsItWorks: when each pause lasts long (an idle
// runtime rounds a short sleep up to a millisecond), a batch still pauses
// at most as long as it has worked, plus one pause; PauseWhile(nil) turns
// pausing off.
func TestWritePausesAtMostAsLongAsItWorks(t *testing.T) {
	s := openTemp(t)
	const long = 2 * time.Millisecond
	var pauses int
	var slept time.Duration
	pause = func(time.Duration) {
		pauses++
		start := time.Now()
		time.Sleep(long)
		slept += time.Since(start)
	}
	t.Cleanup(func() { pause = time.Sleep })
	s.PauseWhile(func() bool { return true })
	start := time.Now()
	if err := s.Write(context.Background(), benchCalls(2000, rand.New(rand.NewPCG(3, 3)))); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if pauses == 0 {
		t.Fatalf("no pause in a batch of 2,000 calls (%v)", took)
	}
	if worked := took - slept; slept > worked+slept/time.Duration(pauses)+long {
		t.Errorf("paused %v (%d pauses) for %v of work", slept, pauses, worked)
	}
	s.PauseWhile(nil)
	pauses = 0
	if err := s.Write(context.Background(), benchCalls(500, rand.New(rand.NewPCG(4, 4)))); err != nil {
		t.Fatal(err)
	}
	if pauses != 0 {
		t.Errorf("PauseWhile(nil): %d pauses", pauses)
	}
}
