package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"llmscope"
	"llmscope/mlflow"
	"llmscope/otlp"
	"llmscope/postgres"
	"llmscope/sqlite"
)

// TestMigrate runs migrate against a real SQLite file and a throwaway
// Postgres server (a failure under CI=true when the server binaries are
// missing, a skip elsewhere).
func TestMigrate(t *testing.T) {
	srv := startPostgres(t)
	newDB := func(t *testing.T) string {
		t.Helper()
		url, err := srv.CreateDB(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return url
	}

	t.Run("CopiesEveryCall", func(t *testing.T) {
		path, calls := migrateSource(t, 2345)
		url := newDB(t)
		out := migrateRun(t, 0, "--from", path, "--to", url, "--batch", "500")
		if !strings.Contains(out, "copied 2345 calls") {
			t.Errorf("output does not report 2345 calls copied:\n%s", out)
		}
		if !strings.Contains(out, "cleaned") {
			t.Errorf("output does not report the call cleaned for Postgres:\n%s", out)
		}
		src, dst := openSQLite(t, path), openPostgres(t, url)
		for _, c := range calls {
			want, err := src.Get(t.Context(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			want.Sanitize()
			got, err := dst.Get(t.Context(), c.ID)
			if err != nil {
				t.Fatalf("call %s: %v", c.ID, err)
			}
			if !reflect.DeepEqual(utc(got), utc(want)) {
				t.Fatalf("call %s differs:\n got  %+v\n want %+v", c.ID, got, want)
			}
		}
		assertSeqOrder(t, src, dst, 2345)

		// A finished migration's cursor holds nothing back (retention
		// deletes only up to the smallest cursor).
		abs, _ := filepath.Abs(path)
		if n, err := dst.Cursor(t.Context(), "migrate:"+abs); err != nil || n != math.MaxInt64 {
			t.Errorf("finished migration's cursor = %d, %v; want math.MaxInt64", n, err)
		}

		out = migrateRun(t, 0, "--from", path, "--to", url)
		if !strings.Contains(out, "nothing to copy: all 2345 calls") {
			t.Errorf("a rerun does not say there is nothing to copy:\n%s", out)
		}
		assertSeqOrder(t, src, dst, 2345)

		// Calls the source received after the migration are copied by the
		// next run, and only they.
		if err := src.Write(t.Context(), migrateCalls("late", 300)); err != nil {
			t.Fatal(err)
		}
		out = migrateRun(t, 0, "--from", path, "--to", url, "--batch", "128")
		if !strings.Contains(out, "copied 300 calls") {
			t.Errorf("a run after the source grew does not copy its 300 new calls:\n%s", out)
		}
		assertSeqOrder(t, src, dst, 2645)
	})

	t.Run("ResumesAfterInterrupt", func(t *testing.T) {
		path, _ := migrateSource(t, 3500)
		url := newDB(t)
		src, dst := openSQLite(t, path), openPostgres(t, url)
		err := interruptedMigration(t, src, dst, path, 1000, 2)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "2000 of 3500") {
			t.Fatalf("interrupted run: got %v, want an error saying 2000 of 3500 calls, wrapping context.Canceled", err)
		}
		if n := countCalls(t, dst); n != 2000 {
			t.Fatalf("after the interrupt the destination holds %d calls, want the 2 batches finished (2000)", n)
		}
		out := migrateRun(t, 0, "--from", path, "--to", url, "--batch", "1000")
		if !strings.Contains(out, "copied 1500 calls") {
			t.Errorf("the rerun does not report the 1500 remaining calls:\n%s", out)
		}
		assertSeqOrder(t, src, dst, 3500)
	})

	t.Run("CarriesExporterCursors", func(t *testing.T) {
		path, _ := migrateSource(t, 3000)
		url := newDB(t)
		src, dst := openSQLite(t, path), openPostgres(t, url)
		restartSeq(t, url, 7001)
		seqs := seqsOf(t, src)
		cursors := map[string]int64{"mlflow": seqs[1499], "otlp": seqs[2999]} // otlp delivered everything
		for name, seq := range cursors {
			if err := src.SetCursor(t.Context(), name, seq); err != nil {
				t.Fatal(err)
			}
		}
		// The mlflow boundary falls into the run after the interrupt.
		if err := interruptedMigration(t, src, dst, path, 1000, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		migrateRun(t, 0, "--from", path, "--to", url, "--batch", "1000")
		for name, seq := range cursors {
			assertUndelivered(t, name, src, dst, seq)
		}
		if n, _ := dst.Cursor(t.Context(), "mlflow"); n == 0 {
			t.Error("mlflow's cursor was not carried over")
		}
	})

	t.Run("AnotherWriterInterleaves", func(t *testing.T) {
		path, _ := migrateSource(t, 3000)
		url := newDB(t)
		src, dst := openSQLite(t, path), openPostgres(t, url)
		delivered := seqsOf(t, src)[2499]
		if err := src.SetCursor(t.Context(), "mlflow", delivered); err != nil {
			t.Fatal(err)
		}
		other := migrateCalls("other", 3)
		err := hookedMigration(t, t.Context(), src, dst, path, 1000, 1, func() {
			if err := dst.Write(t.Context(), other); err != nil {
				t.Error(err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := dst.Cursor(t.Context(), "mlflow")
		pending := afterIDs(t, dst, cur)
		for _, id := range append(afterIDs(t, src, delivered), "other-000000", "other-000001", "other-000002") {
			if !slices.Contains(pending, id) {
				t.Fatalf("mlflow cursor %d in the destination skips %s, which was never exported", cur, id)
			}
		}
		if cur == 0 {
			t.Error("mlflow cursor not carried over for the batch copied before the other writer came")
		}
	})

	t.Run("NoExporterCursor", func(t *testing.T) {
		path, _ := migrateSource(t, 50)
		url := newDB(t)
		migrateRun(t, 0, "--from", path, "--to", url)
		dst := openPostgres(t, url)
		for _, name := range exporterCursors {
			if n, err := dst.Cursor(t.Context(), name); err != nil || n != 0 {
				t.Errorf("%s cursor = %d, %v; want 0 (nothing was exported from the source)", name, n, err)
			}
		}
	})

	t.Run("DestinationHeldOtherCalls", func(t *testing.T) {
		path, _ := migrateSource(t, 40)
		url := newDB(t)
		src, dst := openSQLite(t, path), openPostgres(t, url)
		if err := dst.Write(t.Context(), migrateCalls("other", 5)); err != nil {
			t.Fatal(err)
		}
		if err := src.SetCursor(t.Context(), "mlflow", seqsOf(t, src)[19]); err != nil {
			t.Fatal(err)
		}
		out := migrateRun(t, 0, "--from", path, "--to", url)
		if !strings.Contains(out, "mlflow: ") || !strings.Contains(out, "carried over only up to them") {
			t.Errorf("output does not say mlflow's progress was not carried over:\n%s", out)
		}
		// Nothing undelivered may be skipped: the cursor stays at 0.
		if n, _ := dst.Cursor(t.Context(), "mlflow"); n != 0 {
			t.Errorf("mlflow cursor = %d, want 0: the destination's own calls were never exported", n)
		}
		if n := countCalls(t, dst); n != 45 {
			t.Errorf("destination holds %d calls, want 45", n)
		}
	})

	t.Run("HidesPassword", func(t *testing.T) {
		path, _ := migrateSource(t, 10)
		url := strings.Replace(newDB(t), "postgres@", "postgres:s3cret-pw@", 1) // trust auth ignores it
		out := migrateRun(t, 0, "--from", path, "--to", url)
		if strings.Contains(out, "s3cret-pw") {
			t.Errorf("output shows the password:\n%s", out)
		}
		if !strings.Contains(out, "postgres:xxxxx@") {
			t.Errorf("output does not name the destination with its password hidden:\n%s", out)
		}
	})
}

// TestMigrateRefuses checks the command line errors, which need no server.
func TestMigrateRefuses(t *testing.T) {
	path, _ := migrateSource(t, 3)
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no destination", []string{"--from", path}, "--to: give the Postgres store"},
		{"no source", []string{"--to", "postgres://u:s3cret-pw@127.0.0.1:1/db"}, "--from: give the SQLite store"},
		{"SQLite destination", []string{"--from", path, "--to", "other.db"}, "not a postgres:// URL"},
		{"other URL", []string{"--from", path, "--to", "mysql://u:s3cret-pw@host/db"}, "--to mysql://u:xxxxx@host/db: not a postgres:// URL"},
		{"URL source", []string{"--from", "postgres://u:s3cret-pw@h/db", "--to", "postgres://u:s3cret-pw@h/db"}, "not a URL"},
		{"missing source", []string{"--from", missing, "--to", "postgres://u:s3cret-pw@127.0.0.1:1/db"}, "--from: no store at " + missing},
		{"unreachable destination", []string{"--from", path, "--to", "postgres://u:s3cret-pw@127.0.0.1:1/db?connect_timeout=2"}, "postgres://u:xxxxx@127.0.0.1:1/db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := migrateRun(t, 1, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, "s3cret-pw") {
				t.Errorf("output shows the password:\n%s", out)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("migrate created the missing source %s (stat: %v)", missing, err)
	}
}

// TestMigrateExporterCursorNames checks that migrate carries the cursors of
// the exporters the export loop runs.
func TestMigrateExporterCursorNames(t *testing.T) {
	want := []string{(*mlflow.Exporter)(nil).Name(), (*otlp.Exporter)(nil).Name()}
	if !slices.Equal(exporterCursors, want) {
		t.Errorf("exporterCursors = %q, want the exporters' names %q", exporterCursors, want)
	}
}

// migrateRun runs llmscope migrate with args, checks its exit code and
// returns its stdout and stderr together.
func migrateRun(t *testing.T, code int, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if got := run(t.Context(), append([]string{"migrate"}, args...), strings.NewReader(""), &out, &out); got != code {
		t.Fatalf("migrate %q exited %d, want %d:\n%s", args, got, code, out.String())
	}
	return out.String()
}

// interruptedMigration runs a migration of src into dst that is cancelled
// once n batches have been committed, and returns its error.
func interruptedMigration(t *testing.T, src, dst llmscope.Store, path string, batch, n int) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	return hookedMigration(t, ctx, src, dst, path, batch, n, cancel)
}

// hookedMigration runs a migration of src into dst that calls hook once n
// batches have been committed, and returns its error.
func hookedMigration(t *testing.T, ctx context.Context, src, dst llmscope.Store, path string, batch, n int, hook func()) error {
	t.Helper()
	abs, _ := filepath.Abs(path)
	var log bytes.Buffer
	m := &migration{src: src, dst: &cursorHook{Store: dst, name: "migrate:" + abs, n: n, hook: hook},
		cursor: "migrate:" + abs, batch: batch, from: abs, to: "dst", log: &log, every: time.Hour}
	return m.run(ctx)
}

// cursorHook is a store that calls hook once the cursor name has been set
// n times.
type cursorHook struct {
	llmscope.Store
	name string
	n    int
	hook func()
}

func (s *cursorHook) SetCursor(ctx context.Context, name string, seq int64) error {
	err := s.Store.SetCursor(ctx, name, seq)
	if name == s.name {
		if s.n--; s.n == 0 {
			s.hook()
		}
	}
	return err
}

// restartSeq makes the Postgres store at url number its next call seq, so
// that its seqs differ from the source's.
func restartSeq(t *testing.T, url string, seq int64) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), fmt.Sprintf("ALTER SEQUENCE calls_seq RESTART WITH %d", seq)); err != nil {
		t.Fatal(err)
	}
}

// migrateSource writes n calls into a new SQLite store and returns its
// path and the calls.
func migrateSource(t *testing.T, n int) (string, []*llmscope.Call) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "llmscope.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := migrateCalls("call", n)
	for b := range slices.Chunk(calls, 700) {
		if err := s.Write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	return path, calls
}

// migrateCalls returns n varied calls: every seventh has every field set,
// and the first holds a NUL byte, which Postgres cannot store.
func migrateCalls(prefix string, n int) []*llmscope.Call {
	start := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	calls := make([]*llmscope.Call, n)
	for i := range calls {
		id := fmt.Sprintf("%s-%06d", prefix, i)
		c := &llmscope.Call{ID: id, TraceID: llmscope.TraceIDFor(id), Start: start.Add(time.Duration(i) * 1500 * time.Millisecond),
			DurationMS: float64(i%900) + 0.25, Operation: llmscope.OpChat, Provider: "openai", Endpoint: "/v1/chat/completions",
			RequestModel: []string{"gpt-4o-mini", "gpt-4o", "o3-mini"}[i%3], Status: 200, Experiment: "exp", Tags: map[string]string{},
			Usage: llmscope.Usage{InputTokens: int64(i % 500), OutputTokens: int64(i % 70), TotalTokens: int64(i%500 + i%70), Source: llmscope.UsageReported}}
		if i%7 == 0 {
			c.TTFTMS, c.Stream, c.Chunks = 43.5, true, 12
			c.ResponseModel, c.FinishReason = "gpt-4o-mini-2024-07-18", "stop"
			c.Params = llmscope.Params{Temperature: new(0.7), TopP: new(1.0), MaxTokens: new(int64(256)), Seed: new(int64(math.MaxInt64 - 1)),
				Stop: []string{"END"}, User: "u1", IncludeUsage: new(true)}
			c.Usage.CachedInputTokens, c.Usage.ReasoningTokens = 3, 5
			c.Cost = &llmscope.Cost{InputUSD: 1.0 / 3.0, OutputUSD: 0.0002, TotalUSD: 1.0/3.0 + 0.0002, PriceSource: "openai-2025-01-01"}
			c.Run, c.User, c.Session = "run-α", "user-1", "sess-1"
			c.Tags = map[string]string{"team": "search", "ключ": "значение"}
			c.OverheadMS = 0.04
			c.Input, c.Output = `[{"role":"user","content":"héllo 👋"}]`, "Hello 'there'; DROP TABLE calls; --"
			c.Tools, c.ToolCalls = `[{"type":"function"}]`, `[{"id":"call_1"}]`
			c.ResponseID, c.ResponseCreated, c.SystemFingerprint = "chatcmpl-1", 1_700_000_000, "fp_1"
		}
		if i%11 == 5 {
			c.Status, c.ErrorType, c.ErrorCode, c.ErrorMessage = 429, "429", "rate_limit_exceeded", "Rate limit reached"
		}
		calls[i] = c
	}
	if n > 0 && prefix == "call" {
		calls[0].Output = "a NUL \x00 byte"
	}
	return calls
}

func openSQLite(t *testing.T, path string) llmscope.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T, url string) llmscope.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// utc returns a copy of c with Start in UTC, the only change a store may
// make.
func utc(c *llmscope.Call) *llmscope.Call {
	n := *c
	n.Start = n.Start.UTC()
	return &n
}

// afterIDs returns the ids of every call s.After(seq) returns.
func afterIDs(t *testing.T, s llmscope.Store, seq int64) []string {
	t.Helper()
	var ids []string
	for {
		calls, err := s.After(t.Context(), seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			return ids
		}
		for _, c := range calls {
			ids = append(ids, c.ID)
		}
		seq = calls[len(calls)-1].Seq
	}
}

func seqsOf(t *testing.T, s llmscope.Store) []int64 {
	t.Helper()
	calls, err := s.After(t.Context(), 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]int64, len(calls))
	for i, c := range calls {
		seqs[i] = c.Seq
	}
	return seqs
}

func countCalls(t *testing.T, s llmscope.Store) int {
	t.Helper()
	return len(afterIDs(t, s, 0))
}

// assertSeqOrder checks that dst holds exactly src's n calls, once each, in
// src's seq order.
func assertSeqOrder(t *testing.T, src, dst llmscope.Store, n int) {
	t.Helper()
	want, got := afterIDs(t, src, 0), afterIDs(t, dst, 0)
	if len(want) != n {
		t.Fatalf("source holds %d calls, want %d", len(want), n)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("destination holds %d calls (%d distinct), not the source's %d in seq order",
			len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))), len(want))
	}
}

// assertUndelivered checks that the exporter's cursor in dst selects
// exactly the calls its cursor seq in src left undelivered.
func assertUndelivered(t *testing.T, name string, src, dst llmscope.Store, seq int64) {
	t.Helper()
	cur, err := dst.Cursor(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	want, got := afterIDs(t, src, seq), afterIDs(t, dst, cur)
	if !slices.Equal(got, want) {
		t.Errorf("%s: After(destination cursor %d) returns %d calls, want the %d the source had not exported",
			name, cur, len(got), len(want))
	}
}
