package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"llmscope"
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
	if err := s.reader.QueryRowContext(ctx, `SELECT value, updated FROM meta WHERE key = 'write_checked'`).Scan(&value, &updated); err != nil {
		t.Fatalf("the check wrote nothing: %v", err)
	}
	if _, err := time.Parse(time.RFC3339Nano, value); err != nil || updated <= 0 {
		t.Errorf("meta row %q, %d", value, updated)
	}
}

func TestReadOnlyIsClassified(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	// The write connection refuses writes as a read-only file would, with
	// SQLITE_READONLY.
	if _, err := s.writer.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	wantWriteError(t, "CheckWritable (read-only)", s.CheckWritable(ctx), llmscope.WriteReadOnly, "")
	err := s.Write(ctx, []*llmscope.Call{testCall("c1", time.Now())})
	wantWriteError(t, "Write (read-only)", err, llmscope.WriteReadOnly, "")
	if _, err := s.writer.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable after writes are allowed again: %v", err)
	}
}

func TestDiskFullIsClassified(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	// A database that may not grow is full for SQLite: SQLITE_FULL.
	var pages int64
	if err := s.writer.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	big := testCall("big", time.Now())
	big.Output = strings.Repeat("x", 1<<20)
	wantWriteError(t, "Write (full)", s.Write(ctx, []*llmscope.Call{big}), llmscope.WriteDiskFull, "")
	if _, err := s.writer.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []*llmscope.Call{big}); err != nil {
		t.Fatalf("Write once the database may grow: %v", err)
	}
}

func TestBusyIsClassified(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	if _, err := s.writer.ExecContext(ctx, `PRAGMA busy_timeout = 10`); err != nil {
		t.Fatal(err)
	}
	// Another process holds the write lock.
	abs, _ := filepath.Abs(s.Path())
	other, err := sql.Open("sqlite", dsn(abs, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, []*llmscope.Call{testCall("c1", time.Now())})
	wantWriteError(t, "Write (locked by another connection)", err, llmscope.WriteBusy, "")
	wantWriteError(t, "CheckWritable (locked)", s.CheckWritable(ctx), llmscope.WriteBusy, "")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable after the lock was released: %v", err)
	}
}

func TestInvalidCallIsNamed(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	good := testCall("good", time.Now())
	inf := testCall("inf", time.Now())
	inf.Params.FrequencyPenalty = new(math.Inf(-1)) // JSON cannot encode it
	nan := testCall("nan", time.Now())
	nan.DurationMS = math.NaN() // SQLite stores NaN as NULL: a NOT NULL column refuses it
	for _, bad := range []*llmscope.Call{inf, nan} {
		err := s.Write(ctx, []*llmscope.Call{good, bad})
		wantWriteError(t, "Write (call "+bad.ID+")", err, llmscope.WriteInvalidCall, bad.ID)
		if !strings.HasPrefix(err.Error(), "sqlite: write batch: ") {
			t.Errorf("error text %q lost the store's message", err)
		}
		if bad.Sanitize() == nil {
			t.Fatalf("Sanitize found nothing in %s", bad.ID)
		}
		if err := s.Write(ctx, []*llmscope.Call{good, bad}); err != nil {
			t.Errorf("Write after Sanitize: %v", err)
		}
	}
}

func TestWriteReason(t *testing.T) {
	for _, tc := range []struct {
		err    error
		callID string
		reason string
	}{
		{fmt.Errorf("write: %w", syscall.ENOSPC), "", llmscope.WriteDiskFull},
		{fmt.Errorf("write: %w", syscall.EFBIG), "c", llmscope.WriteDiskFull},
		{fmt.Errorf("open: %w", syscall.EROFS), "", llmscope.WriteReadOnly},
		{fmt.Errorf("open: %w", syscall.EACCES), "", llmscope.WriteReadOnly},
		{fmt.Errorf("write: %w", syscall.EIO), "", llmscope.WriteUnavailable},
		{context.DeadlineExceeded, "", llmscope.WriteUnavailable},
		{errors.New("something else"), "c", llmscope.WriteOther},
	} {
		err := writeError(tc.err, tc.callID)
		wantWriteError(t, fmt.Sprintf("writeError(%v)", tc.err), err, tc.reason, "")
		if !errors.Is(err, tc.err) {
			t.Errorf("writeError(%v) does not wrap it", tc.err)
		}
	}
	if writeError(nil, "") != nil {
		t.Error("writeError(nil) is not nil")
	}
}
