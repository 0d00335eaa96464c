package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"llmscope"
	"llmscope/internal/pgtest"
)

// wantWriteError fails unless err is a *llmscope.WriteError with reason
// (and callID, for an invalid call).
func wantWriteError(t *testing.T, what string, err error, reason, callID string) {
	t.Helper()
	var we *llmscope.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("%s = %v (%T), want a *llmscope.WriteError", what, err, err)
	}
	if we.Reason != reason || we.CallID != callID {
		t.Fatalf("%s = %q (reason %q, call %q), want reason %q, call %q", what, err, we.Reason, we.CallID, reason, callID)
	}
}

func TestCheckWritable(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	for range 2 {
		if err := s.CheckWritable(ctx); err != nil {
			t.Fatalf("CheckWritable on a new store: %v", err)
		}
	}
	var value string
	var updated int64
	if err := s.pool.QueryRow(ctx, `SELECT value, updated FROM meta WHERE key = 'write_checked'`).Scan(&value, &updated); err != nil {
		t.Fatalf("the check wrote nothing: %v", err)
	}
	if _, err := time.Parse(time.RFC3339Nano, value); err != nil || updated <= 0 {
		t.Errorf("meta row %q, %d", value, updated)
	}
}

func TestReadOnlyIsClassified(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	var db string
	if err := s.pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.Shared(t).URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// A hot standby, or a database made read-only, refuses writes with
	// read_only_sql_transaction.
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	s.pool.Reset() // new connections pick the setting up
	wantWriteError(t, "CheckWritable (read-only)", s.CheckWritable(ctx), llmscope.WriteReadOnly, "")
	err = s.Write(ctx, []*llmscope.Call{testCall("c1", time.Now())})
	wantWriteError(t, "Write (read-only)", err, llmscope.WriteReadOnly, "")
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+db+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
	s.pool.Reset()
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable after writes are allowed again: %v", err)
	}
}

// TestInvalidCallIsNamed writes, beside a good call, calls Postgres cannot
// store as they are: each is refused alone, by id, with nothing of the
// batch committed, and stored once sanitized.
func TestInvalidCallIsNamed(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	good := testCall("good", time.Now())
	nul := testCall("nul", time.Now())
	nul.Input = "nul\x00byte"
	utf := testCall("utf", time.Now())
	utf.Run = "\xc3\x28"
	price := testCall("price", time.Now())
	price.Cost = &llmscope.Cost{TotalUSD: 1, PriceSource: "p\x00"}
	nan := testCall("nan", time.Now())
	nan.DurationMS = math.NaN()
	inf := testCall("inf", time.Now())
	inf.Params.FrequencyPenalty = new(math.Inf(-1)) // JSON cannot encode it
	for _, bad := range []*llmscope.Call{nul, utf, price, nan, inf} {
		err := s.Write(ctx, []*llmscope.Call{good, bad})
		wantWriteError(t, "Write (call "+bad.ID+")", err, llmscope.WriteInvalidCall, bad.ID)
		if !strings.HasPrefix(err.Error(), "postgres: write batch: ") {
			t.Errorf("error text %q lost the store's message", err)
		}
		if _, err := s.Get(ctx, good.ID); !errors.Is(err, llmscope.ErrNotFound) {
			t.Fatalf("a refused batch was committed in part: Get(good) = %v", err)
		}
		if bad.Sanitize() == nil {
			t.Fatalf("Sanitize found nothing in %s", bad.ID)
		}
		if err := s.Write(ctx, []*llmscope.Call{bad}); err != nil {
			t.Errorf("Write after Sanitize: %v", err)
		}
	}
	// The server itself refuses a run too long for its index entry: the
	// batch is searched for the call.
	long := testCall("long", time.Now())
	long.Run = strings.Repeat("r", 1<<20)
	err := s.Write(ctx, []*llmscope.Call{good, long, testCall("other", time.Now())})
	wantWriteError(t, "Write (oversized run)", err, llmscope.WriteInvalidCall, long.ID)
	if n := count(t, s); n != 5 {
		t.Errorf("%d calls stored, want the 5 sanitized ones", n)
	}
	if err := s.Write(ctx, []*llmscope.Call{good}); err != nil {
		t.Fatal(err)
	}
}

// TestRecorderStoresSanitized runs a call with NUL bytes through a
// Recorder: the store refuses it, the recorder sanitizes it, and it is
// stored with the sanitized tag.
func TestRecorderStoresSanitized(t *testing.T) {
	s := openTemp(t)
	r := llmscope.NewRecorder(s, llmscope.RecorderConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	c := testCall("nul", time.Now())
	c.Input, c.Output = "a\x00b", "\xff"
	r.Record(c)
	r.Record(testCall("plain", time.Now()))
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.Dropped() != 0 {
		t.Fatalf("the recorder dropped %d calls", r.Dropped())
	}
	got, err := s.Get(t.Context(), "nul")
	if err != nil {
		t.Fatal(err)
	}
	if got.Input != "ab" || got.Output != "\uFFFD" {
		t.Errorf("stored Input %q, Output %q; want \"ab\", \"\\uFFFD\"", got.Input, got.Output)
	}
	if tag := got.Tags[llmscope.TagSanitized]; !strings.Contains(tag, "input") || !strings.Contains(tag, "store_refused") {
		t.Errorf("tag %s = %q", llmscope.TagSanitized, tag)
	}
	if _, err := s.Get(t.Context(), "plain"); err != nil {
		t.Error(err)
	}
}

func count(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM calls`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOutage stops the server under an open store: writes fail with a
// reason the recorder retries, and once the server is back the same store
// writes again, a retried batch adding nothing twice.
func TestOutage(t *testing.T) {
	srv := pgtest.Shared(t)
	s := openTemp(t)
	ctx := t.Context()
	first := []*llmscope.Call{testCall("a1", time.Now()), testCall("a2", time.Now())}
	if err := s.Write(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	second := append(first, testCall("b1", time.Now()), testCall("b2", time.Now()))
	for range 2 {
		wantWriteError(t, "Write (server down)", s.Write(ctx, second), llmscope.WriteUnavailable, "")
	}
	wantWriteError(t, "CheckWritable (server down)", s.CheckWritable(ctx), llmscope.WriteUnavailable, "")
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	if err := s.Write(ctx, second); err != nil {
		t.Fatalf("Write once the server is back: %v", err)
	}
	if err := s.Write(ctx, second); err != nil {
		t.Fatalf("Write retried: %v", err)
	}
	if n := count(t, s); n != len(second) {
		t.Errorf("%d calls stored, want %d", n, len(second))
	}
	calls, err := s.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != len(second) {
		t.Errorf("After(0) returned %d calls, want %d", len(calls), len(second))
	}
}

func TestWriteReason(t *testing.T) {
	for _, tc := range []struct {
		err    error
		callID string
		reason string
	}{
		{&pgconn.PgError{Code: "53100"}, "", llmscope.WriteDiskFull},
		{&pgconn.PgError{Code: "25006"}, "", llmscope.WriteReadOnly},
		{&pgconn.PgError{Code: "40P01"}, "", llmscope.WriteBusy},
		{&pgconn.PgError{Code: "53300"}, "", llmscope.WriteBusy},
		{&pgconn.PgError{Code: "57P01"}, "", llmscope.WriteUnavailable},
		{&pgconn.PgError{Code: "08006"}, "", llmscope.WriteUnavailable},
		{&pgconn.PgError{Code: "22021"}, "", llmscope.WriteOther}, // a value error without a call
		{&pgconn.PgError{Code: "42P01"}, "c", llmscope.WriteOther},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "", llmscope.WriteUnavailable},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "", llmscope.WriteUnavailable},
		{context.DeadlineExceeded, "", llmscope.WriteUnavailable},
		{errors.New("something else"), "c", llmscope.WriteOther},
	} {
		err := writeError(tc.err, tc.callID)
		wantWriteError(t, fmt.Sprintf("writeError(%v)", tc.err), err, tc.reason, "")
		if !errors.Is(err, tc.err) {
			t.Errorf("writeError(%v) does not wrap it", tc.err)
		}
	}
	err := writeError(&pgconn.PgError{Code: "54000"}, "c")
	wantWriteError(t, "writeError(54000, c)", err, llmscope.WriteInvalidCall, "c")
	if writeError(nil, "") != nil {
		t.Error("writeError(nil) is not nil")
	}
}
