package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"syscall"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"llmscope"
)

// writeError classifies err, from a write, as a *llmscope.WriteError.
// callID names the call whose insert failed, "" when err came from the
// transaction as a whole; an error that only that call's values explain (a
// constraint, a datatype, a value too big) is llmscope.WriteInvalidCall
// with its id.
func writeError(err error, callID string) error {
	if err == nil {
		return nil
	}
	if we := (*llmscope.WriteError)(nil); errors.As(err, &we) {
		return err
	}
	reason := writeReason(err)
	if reason == llmscope.WriteInvalidCall && callID == "" {
		reason = llmscope.WriteOther
	}
	we := &llmscope.WriteError{Reason: reason, Err: err}
	if reason == llmscope.WriteInvalidCall {
		we.CallID = callID
	}
	return we
}

// invalidCall is the error of a call that cannot be stored at all.
func invalidCall(err error, callID string) error {
	return &llmscope.WriteError{Reason: llmscope.WriteInvalidCall, CallID: callID, Err: err}
}

// writeReason returns the llmscope.Write* reason of err.
func writeReason(err error) string {
	if se := (*msqlite.Error)(nil); errors.As(err, &se) {
		// Extended result codes are on; the low byte is the primary code.
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return llmscope.WriteDiskFull
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
			return llmscope.WriteReadOnly
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return llmscope.WriteBusy
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
			sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
			return llmscope.WriteUnavailable
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE:
			return llmscope.WriteInvalidCall
		}
		return llmscope.WriteOther
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EFBIG), errors.Is(err, syscall.EDQUOT):
		return llmscope.WriteDiskFull
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return llmscope.WriteReadOnly
	case errors.Is(err, syscall.EIO), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return llmscope.WriteUnavailable
	}
	return llmscope.WriteOther
}
