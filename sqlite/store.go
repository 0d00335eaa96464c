// Package sqlite is the default llmscope.Store: one SQLite file in WAL mode,
// written through a single connection and read through a pool, using the
// pure-Go modernc.org/sqlite driver (no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"llmscope"
	"llmscope/internal/schema"
)

// Store keeps calls in a SQLite database. It is safe for concurrent use.
//
// Writes go through one connection (SQLite allows one writer at a time) and
// reads through a pool of read-only connections, which in WAL mode never wait
// for the writer. Commits use synchronous=NORMAL: a committed Write survives
// a crash of the process, but the last transactions before a power loss or
// OS crash may be rolled back.
type Store struct {
	path   string
	writer *sql.DB   // one connection; transactions begin IMMEDIATE
	reader *sql.DB   // read-only pool
	insert *sql.Stmt // prepared on writer
	busy   atomic.Pointer[func() bool]
}

var _ llmscope.Store = (*Store)(nil)

// busyTimeout is how long a statement waits for a lock held by another
// connection or process before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Open opens (creating it if needed) the database file at path and brings
// its schema up to date. path is a file path, not a URI; in-memory databases
// are not supported, since the writer and readers must share one database.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	s := &Store{path: path}
	if err := s.open(ctx, abs); err != nil {
		s.Close() // the open error matters more
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, abs string) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	common := []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "synchronous(NORMAL)"}
	w := url.Values{
		"_pragma": append(slices.Clone(common), "journal_mode(WAL)"),
		"_txlock": {"immediate"}, // take the write lock at BEGIN: no deadlocking lock upgrades
	}
	if s.writer, err = sql.Open("sqlite", dsn(abs, w)); err != nil {
		return err
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxIdleTime(0)
	s.writer.SetConnMaxLifetime(0)

	var mode string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if err := migrate(ctx, s.writer, ms); err != nil {
		return err
	}
	if s.insert, err = s.writer.PrepareContext(ctx, insertSQL); err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}

	r := url.Values{"_pragma": append(slices.Clone(common), "query_only(1)")}
	if s.reader, err = sql.Open("sqlite", dsn(abs, r)); err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n)
	return s.reader.PingContext(ctx)
}

// dsn returns the driver's data source name for the file at abs: a file: URI,
// so that '?', '#' and '%' in the path are escaped rather than parsed.
func dsn(abs string, params url.Values) string {
	u := url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// PauseWhile makes Write pause between its inserts, every writeSlice of
// work, while busy reports true: serve passes "one P and requests in
// flight", so that its requests do not wait for a whole batch. Without it
// (or while busy is false) a batch runs without pauses. It may be called
// at any time; busy must be cheap and safe for concurrent use.
func (s *Store) PauseWhile(busy func() bool) {
	if busy == nil {
		s.busy.Store(nil)
		return
	}
	s.busy.Store(&busy)
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes both connection pools. The store must not be used afterwards.
func (s *Store) Close() error {
	var errs []error
	if s.insert != nil {
		errs = append(errs, s.insert.Close())
	}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// While the process is busy (see PauseWhile), a batch's inserts run in
// slices of writeSlice with a writePause between them. The driver runs
// SQLite as Go code that never blocks, so without a pause a batch of
// hundreds of calls would hold its P for milliseconds; on a gateway with
// one P (one core), requests whose answers arrived meanwhile would wait
// that long. Sleeping parks the writer, and the scheduler then runs the
// goroutines the network has made ready. The pause outlasts a pass of the
// scheduler, so the writer's timer has not fired before the network is
// polled. With nothing to run, the runtime rounds such a sleep up to a
// millisecond: an idle process does not pause, and a batch pauses at most
// as long as it has worked, so that pauses at most double the time it holds
// the write lock (which the budget ledger shares).
const (
	writeSlice = 100 * time.Microsecond
	writePause = 20 * time.Microsecond
)

var pause = time.Sleep // replaced by tests

// columns lists the calls table's data columns, in the order of insertSQL's
// placeholders, callArgs and scanCall.
const columns = `id, trace_id, start, duration_ms, ttft_ms, operation, provider, endpoint,
	request_model, response_model, stream, status, error_type, finish_reason, params,
	input_tokens, output_tokens, total_tokens, cached_input_tokens, reasoning_tokens, usage_source,
	cost_input_usd, cost_output_usd, cost_total_usd, price_source,
	experiment, run, user, session, tags, overhead_ms, input_text, output_text, detail, upstream, key_name, team`

const numColumns = 37

var insertSQL = `INSERT INTO calls (` + columns + `) VALUES (?` +
	strings.Repeat(", ?", numColumns-1) + `) ON CONFLICT (id) DO NOTHING`

// Write stores calls in one transaction; it returns only after the commit.
// A call whose id is already stored (or appears earlier in calls) is skipped,
// so a retried batch never duplicates. Nil entries are skipped. Its errors
// are *llmscope.WriteError: WriteInvalidCall with the call's id when one
// call cannot be stored (nothing of the batch is then committed).
func (s *Store) Write(ctx context.Context, calls []*llmscope.Call) error {
	if len(calls) == 0 {
		return nil
	}
	// The statements run without ctx's cancellation: with a cancellable
	// context the driver starts a goroutine per statement to watch it, a
	// cost paid on every call. A batch is bounded, and ctx still bounds the
	// wait for the connection.
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return writeError(fmt.Errorf("sqlite: write batch: %w", err), "")
	}
	defer tx.Rollback() // a no-op after Commit
	ctx = context.WithoutCancel(ctx)
	stmt := tx.StmtContext(ctx, s.insert)
	args := make([]any, numColumns)
	busy, ran := s.busy.Load(), time.Now()
	var worked, paused time.Duration
	for _, c := range calls {
		if c == nil {
			continue
		}
		if err := callArgs(c, args); err != nil {
			return invalidCall(fmt.Errorf("sqlite: write batch: call %q: %w", c.ID, err), c.ID)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return writeError(fmt.Errorf("sqlite: write batch: call %q: %w", c.ID, err), c.ID)
		}
		if busy == nil {
			continue
		}
		if now := time.Now(); now.Sub(ran) >= writeSlice {
			worked += now.Sub(ran)
			ran = now
			if paused < worked && (*busy)() {
				pause(writePause)
				ran = time.Now()
				paused += ran.Sub(now)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return writeError(fmt.Errorf("sqlite: write batch: commit: %w", err), "")
	}
	return nil
}

var _ llmscope.WriteChecker = (*Store)(nil)

// CheckWritable really writes to the database (one row of the meta table,
// in a transaction of its own) and returns the *llmscope.WriteError that
// says why not when it cannot.
func (s *Store) CheckWritable(ctx context.Context) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return writeError(fmt.Errorf("sqlite: check writable: %w", err), "")
	}
	defer tx.Rollback() // a no-op after Commit
	now := time.Now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value, updated) VALUES ('write_checked', ?, ?)
	ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
		now.UTC().Format(time.RFC3339Nano), now.UnixNano()); err != nil {
		return writeError(fmt.Errorf("sqlite: check writable: %w", err), "")
	}
	if err := tx.Commit(); err != nil {
		return writeError(fmt.Errorf("sqlite: check writable: commit: %w", err), "")
	}
	return nil
}

// callArgs fills args with c's column values, in the order of columns.
func callArgs(c *llmscope.Call, args []any) error {
	params, err := json.Marshal(c.Params)
	if err != nil {
		return fmt.Errorf("encode params: %w", err)
	}
	var tags any // NULL for a nil map, so that it reads back as nil
	if c.Tags != nil {
		b, err := json.Marshal(c.Tags)
		if err != nil {
			return fmt.Errorf("encode tags: %w", err)
		}
		tags = string(b)
	}
	var costIn, costOut, costTotal, priceSource any // NULL: price unknown
	if c.Cost != nil {
		costIn, costOut, costTotal, priceSource = c.Cost.InputUSD, c.Cost.OutputUSD, c.Cost.TotalUSD, c.Cost.PriceSource
	}
	det, err := detailArg(c)
	if err != nil {
		return err
	}
	copy(args, []any{
		c.ID, c.TraceID, schema.Nanos(c.Start), c.DurationMS, c.TTFTMS, c.Operation, c.Provider, c.Endpoint,
		c.RequestModel, c.ResponseModel, c.Stream, c.Status, c.ErrorType, c.FinishReason, string(params),
		c.Usage.InputTokens, c.Usage.OutputTokens, c.Usage.TotalTokens, c.Usage.CachedInputTokens,
		c.Usage.ReasoningTokens, c.Usage.Source,
		costIn, costOut, costTotal, priceSource,
		c.Experiment, c.Run, c.User, c.Session, tags, c.OverheadMS, c.Input, c.Output, det, c.Upstream, c.Key, c.Team,
	})
	return nil
}

// scanCall reads one row selected with columns.
func scanCall(row interface{ Scan(...any) error }) (*llmscope.Call, error) {
	return scanCallSeq(row, nil)
}

// scanCallSeq reads one row selected with columns, preceded by seq when seq
// is not nil.
func scanCallSeq(row interface{ Scan(...any) error }, seq *int64) (*llmscope.Call, error) {
	var (
		c                          llmscope.Call
		start                      int64
		params                     string
		tags, priceSource, det     sql.NullString
		costIn, costOut, costTotal sql.NullFloat64
	)
	dest := []any{
		&c.ID, &c.TraceID, &start, &c.DurationMS, &c.TTFTMS, &c.Operation, &c.Provider, &c.Endpoint,
		&c.RequestModel, &c.ResponseModel, &c.Stream, &c.Status, &c.ErrorType, &c.FinishReason, &params,
		&c.Usage.InputTokens, &c.Usage.OutputTokens, &c.Usage.TotalTokens, &c.Usage.CachedInputTokens,
		&c.Usage.ReasoningTokens, &c.Usage.Source,
		&costIn, &costOut, &costTotal, &priceSource,
		&c.Experiment, &c.Run, &c.User, &c.Session, &tags, &c.OverheadMS, &c.Input, &c.Output, &det, &c.Upstream, &c.Key, &c.Team,
	}
	if seq != nil {
		dest = append([]any{seq}, dest...)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if seq != nil {
		c.Seq = *seq
	}
	c.Start = schema.Time(start)
	if err := json.Unmarshal([]byte(params), &c.Params); err != nil {
		return nil, fmt.Errorf("call %q: decode params: %w", c.ID, err)
	}
	if tags.Valid {
		if err := json.Unmarshal([]byte(tags.String), &c.Tags); err != nil {
			return nil, fmt.Errorf("call %q: decode tags: %w", c.ID, err)
		}
	}
	if err := setDetail(&c, det); err != nil {
		return nil, err
	}
	if costTotal.Valid {
		c.Cost = &llmscope.Cost{
			InputUSD:    costIn.Float64,
			OutputUSD:   costOut.Float64,
			TotalUSD:    costTotal.Float64,
			PriceSource: priceSource.String,
		}
	}
	return &c, nil
}

// Get returns the call with the given id, or an error wrapping
// llmscope.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*llmscope.Call, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+columns+` FROM calls WHERE id = ?`, id)
	c, err := scanCall(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: get %q: %w", id, llmscope.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %q: %w", id, err)
	}
	return c, nil
}

// where returns the WHERE clause (empty, or starting with a space) selecting
// the calls f matches, and its arguments. Values are always placeholders.
func where(f llmscope.Filter) (string, []any) {
	var conds []string
	var args []any
	if !f.Since.IsZero() {
		conds, args = append(conds, "start >= ?"), append(args, schema.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "start < ?"), append(args, schema.Nanos(f.Until))
	}
	if f.Model != "" {
		conds, args = append(conds, "(request_model = ? OR response_model = ?)"), append(args, f.Model, f.Model)
	}
	switch {
	case f.NoRun:
		conds = append(conds, "run = ''")
	case f.Run != "":
		conds, args = append(conds, "run = ?"), append(args, f.Run)
	}
	if f.Experiment != "" {
		conds, args = append(conds, "experiment = ?"), append(args, f.Experiment)
	}
	if f.Operation != "" {
		conds, args = append(conds, "operation = ?"), append(args, f.Operation)
	}
	if f.MaxSeq > 0 {
		conds, args = append(conds, "seq <= ?"), append(args, f.MaxSeq)
	}
	if p := f.Before; p != nil {
		// start <= ? alone lets the start index bound the scan.
		n := schema.Nanos(p.Start)
		conds, args = append(conds, "start <= ? AND (start < ? OR id < ?)"), append(args, n, n, p.ID)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the calls matching f, newest first (by start, then by id),
// at most f.Limit of them, or llmscope.DefaultLimit when f.Limit <= 0.
// With f.OmitText the captured texts are not read.
func (s *Store) List(ctx context.Context, f llmscope.Filter) ([]*llmscope.Call, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	cols := columns
	if f.OmitText {
		// Empty strings in the texts' places: scanCall reads the same shape.
		cols = strings.Replace(columns, "input_text, output_text", "'', ''", 1)
	}
	cond, args := where(f)
	rows, err := s.reader.QueryContext(ctx,
		`SELECT `+cols+` FROM calls`+cond+` ORDER BY start DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list: %w", err)
	}
	defer rows.Close()
	calls := make([]*llmscope.Call, 0, min(limit, 1024))
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list: %w", err)
		}
		if f.OmitText {
			c.Input, c.Output, c.Tools, c.ToolCalls = "", "", "", ""
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list: %w", err)
	}
	return calls, nil
}
