package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"llmscope"
	"llmscope/internal/pgtest"
	"llmscope/internal/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openTemp opens a store on a new, empty database of the test server.
func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.DB(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) llmscope.Store { return openTemp(t) })
}

func TestStoreGroupBy(t *testing.T) {
	storetest.RunGroupBy(t, func(t *testing.T) llmscope.Store { return openTemp(t) })
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
	rows, err := s.pool.Query(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
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
	url := pgtest.DB(t)
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	want := testCall(llmscope.NewID(), time.Now())
	if err := s.Write(t.Context(), []*llmscope.Call{want}); err != nil {
		t.Fatal(err)
	}
	before := migrationRows(t, s)
	if len(before) == 0 || before[0].Version != 1 {
		t.Fatalf("schema_migrations after first open = %+v", before)
	}
	s.Close()

	// The first migration creates tables without IF NOT EXISTS: re-running
	// it would fail the open. The recorded rows must be untouched.
	s, err = Open(t.Context(), url)
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

// TestConcurrentOpen opens one new database from many goroutines at once,
// as gateways starting together do: every Open succeeds and each migration
// is applied once.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.DB(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), url)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	rows := migrationRows(t, stores[0])
	if len(rows) != len(ms) {
		t.Errorf("schema_migrations holds %d rows, want %d: %+v", len(rows), len(ms), rows)
	}
	if err := stores[n-1].Write(t.Context(), []*llmscope.Call{testCall("after-open", time.Now())}); err != nil {
		t.Fatal(err)
	}
}

func TestNewMigrationAppliedOnce(t *testing.T) {
	url := pgtest.DB(t)
	s, err := Open(t.Context(), url)
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
		Data: []byte("CREATE TABLE extra (n integer NOT NULL);\nINSERT INTO extra (n) VALUES (1);\n"),
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := migrate(t.Context(), s.pool, ms); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM extra`).Scan(&n); err != nil {
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
	s, err = Open(t.Context(), url)
	if err == nil {
		s.Close()
	}
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Version != next || tooNew.Known != next-1 {
		t.Fatalf("Open(newer schema) = %v, want a SchemaTooNewError", err)
	}
	want := fmt.Sprintf("database schema version %d is newer than this llmscope (knows %d): upgrade llmscope", next, next-1)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Open(newer schema) = %q, want it to say %q", err, want)
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
	for _, url := range []string{"postgres://127.0.0.1:1/x?connect_timeout=2", "postgres://%zz", "port=notanumber"} {
		if s, err := Open(t.Context(), url); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", url)
		}
	}
	for _, url := range []string{"postgres://someone:secret@127.0.0.1:1/x?connect_timeout=2", "postgres://someone:secret@127.0.0.1:port/x"} {
		_, err := Open(t.Context(), url)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) = %v: want an error without the password", url, err)
		}
	}
}

func TestWriteIsAtomic(t *testing.T) {
	s := openTemp(t)
	good := testCall("good", time.Now())
	bad := testCall("bad", time.Now())
	bad.Run = strings.Repeat("r", 1<<20) // beyond what a btree index entry holds
	err := s.Write(t.Context(), []*llmscope.Call{good, bad})
	if err == nil || !strings.HasPrefix(err.Error(), "postgres: write batch: ") {
		t.Fatalf("Write(batch with an oversized run) = %v, want a wrapped error", err)
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

// TestAfterMissesNothing writes from several stores (as several gateways
// would) while a reader follows After from its cursor: every call is seen
// exactly once, in increasing seq, though writers commit concurrently.
func TestAfterMissesNothing(t *testing.T) {
	url := pgtest.DB(t)
	const writers, batches, batch = 4, 20, 8
	var wg sync.WaitGroup
	for w := range writers {
		s, err := Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Go(func() {
			for b := range batches {
				calls := make([]*llmscope.Call, batch)
				for i := range calls {
					calls[i] = testCall(fmt.Sprintf("w%d-b%d-%d", w, b, i), time.Now())
				}
				if err := s.Write(context.Background(), calls); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	reader, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var cursor int64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		calls, err := reader.After(t.Context(), cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			if c.Seq <= cursor {
				t.Fatalf("After(%d) returned seq %d", cursor, c.Seq)
			}
			if seen[c.ID] {
				t.Fatalf("call %s returned twice", c.ID)
			}
			seen[c.ID], cursor = true, c.Seq
		}
		if finished && len(calls) == 0 {
			break
		}
	}
	if len(seen) != writers*batches*batch {
		t.Errorf("the reader saw %d calls, want %d", len(seen), writers*batches*batch)
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
// already, as the SQLite store's BenchmarkWrite does: batch 16 is a commit
// of the recorder at about 2,000 calls/s with a 5 ms commit wait, 256 a full
// batch. The server runs on this machine with its default durability (fsync
// at each commit). cpu-µs/call is this process's CPU time per call (the
// server's is not counted).
func BenchmarkWrite(b *testing.B) {
	for _, batch := range []int{16, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openTemp(b)
			calls := benchCalls(batch*64, rand.New(rand.NewPCG(1, 1)))
			for range 50_000 / len(calls) {
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
