package llmscope

import (
	"context"
	"errors"
)

// Reasons a write to a store fails, as in WriteError.Reason, log lines and
// the llmscope_store_write_errors_total{reason} metric.
const (
	WriteDiskFull    = "disk_full"    // no space left for the database
	WriteReadOnly    = "read_only"    // the database or its directory cannot be written
	WriteBusy        = "busy"         // another connection or process holds the lock
	WriteInvalidCall = "invalid_call" // the call named by CallID cannot be stored at all
	WriteUnavailable = "unavailable"  // the store cannot be reached or read (I/O error, closed, corrupt)
	WriteOther       = "other"        // anything not classified
)

// WriteErrorReasons returns every reason a WriteError can carry.
func WriteErrorReasons() []string {
	return []string{WriteDiskFull, WriteReadOnly, WriteBusy, WriteInvalidCall, WriteUnavailable, WriteOther}
}

// WriteError is a failed write, classified so that a writer can tell a store
// that is down (retry, lose nothing) from a call the store will never accept
// (drop that call, keep the others). Stores wrap their write errors in it.
type WriteError struct {
	Reason string // one of the Write* reasons
	CallID string // the call that cannot be stored, with WriteInvalidCall
	Err    error
}

// Error returns the underlying error's text (the reason when there is
// none): stores keep their own messages, the reason is a field.
func (e *WriteError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *WriteError) Unwrap() error { return e.Err }

// WriteErrorReason returns the reason of the first WriteError in err's
// chain, or WriteOther when there is none; "" for a nil err.
func WriteErrorReason(err error) string {
	if err == nil {
		return ""
	}
	var we *WriteError
	if errors.As(err, &we) && we.Reason != "" {
		return we.Reason
	}
	return WriteOther
}

// WriteChecker is implemented by stores that can tell whether they accept
// writes: CheckWritable really writes (something small, outside the calls)
// and returns the error, classified as a WriteError, when it cannot.
type WriteChecker interface {
	CheckWritable(ctx context.Context) error
}

// storeDown reports whether reason says the store as a whole refuses
// writes, rather than one call.
func storeDown(reason string) bool {
	switch reason {
	case WriteDiskFull, WriteReadOnly, WriteBusy, WriteUnavailable:
		return true
	}
	return false
}
