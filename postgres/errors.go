package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"llmscope"
)

// writeError classifies err, from a write, as a *llmscope.WriteError.
// callID names the call whose values err is about, "" when it is not known;
// an error that only that call's values explain (a value out of range, too
// big for an index, a constraint) is llmscope.WriteInvalidCall with its id.
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

// writeReason returns the llmscope.Write* reason of err: the class of a
// server error's SQLSTATE, and for any failure to reach the server or to
// keep talking to it, llmscope.WriteUnavailable (a writer retries those).
func writeReason(err error) string {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		return sqlStateReason(pe.Code)
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, puddle.ErrClosedPool),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return llmscope.WriteUnavailable
	case strings.Contains(err.Error(), "conn closed"):
		return llmscope.WriteUnavailable // pgx's error for a connection it already closed
	}
	return llmscope.WriteOther
}

// sqlStateReason maps a SQLSTATE to a llmscope.Write* reason.
func sqlStateReason(code string) string {
	switch code {
	case "53100": // disk_full
		return llmscope.WriteDiskFull
	case "25006", "42501": // read_only_sql_transaction, insufficient_privilege
		return llmscope.WriteReadOnly
	case "40001", "40P01", "55P03", "55006", "53300", "53400":
		// serialization failure, deadlock, lock not available, object in
		// use, too many connections, configuration limit exceeded
		return llmscope.WriteBusy
	case "57P01", "57P02", "57P03", "57014", "53200", "XX001", "XX002":
		// shutdown by an administrator or a crash, cannot connect now,
		// query canceled, out of memory, data corrupted
		return llmscope.WriteUnavailable
	}
	if len(code) < 2 {
		return llmscope.WriteOther
	}
	switch code[:2] {
	case "08", "58": // connection exception, system error (I/O)
		return llmscope.WriteUnavailable
	case "22", "23", "54": // data exception, integrity constraint, program limit (a row too big)
		return llmscope.WriteInvalidCall
	}
	return llmscope.WriteOther
}

// valueError reports whether err is one that a call's values may explain.
func valueError(err error) bool {
	return writeReason(err) == llmscope.WriteInvalidCall
}
