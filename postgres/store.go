// Package postgres is the llmscope.Store for running several gateways
// against one database: PostgreSQL through a pgx connection pool, with the
// same schema, values and semantics as the SQLite store.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"llmscope"
	"llmscope/internal/schema"
)

// Store keeps calls in a PostgreSQL database. It is safe for concurrent use,
// and any number of processes may share one database.
//
// It holds no connection state of its own: a connection that breaks (the
// server restarted, the network dropped) fails the call that used it and is
// replaced by the pool, so a write retried after an outage simply succeeds.
type Store struct {
	pool  *pgxpool.Pool
	name  string     // the database, for messages (never the password)
	parts partitions // days known to have a partition of calls
}

var (
	_ llmscope.Store        = (*Store)(nil)
	_ llmscope.WriteChecker = (*Store)(nil)
)

// Open connects to the database at url (postgres://… or postgresql://…,
// or any connection string pgx accepts) and brings its schema up to date.
// A database migrated by a newer llmscope is refused with a
// *SchemaTooNewError.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{parts: partitions{days: map[int64]bool{}}, name: fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", s.name, err)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", s.name, err)
	}
	if err := migrate(ctx, s.pool, ms); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", s.name, err)
	}
	return s, nil
}

// Shared reports that several gateways may write and export this store at
// once (true for every Postgres store): exporters then share per-experiment
// state, such as the MLflow rollup run, instead of keeping one per process.
func (s *Store) Shared() bool { return true }

// Close closes the connection pool. The store must not be used afterwards.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// column is one data column of the calls table with its Postgres type.
type column struct{ name, typ string }

// dataColumns are the calls table's data columns, in the order of
// callArgs, scanCall and the arrays of a written batch.
var dataColumns = []column{
	{"id", "text"}, {"trace_id", "text"}, {"start", "bigint"}, {"duration_ms", "float8"}, {"ttft_ms", "float8"},
	{"operation", "text"}, {"provider", "text"}, {"endpoint", "text"},
	{"request_model", "text"}, {"response_model", "text"}, {"stream", "bool"}, {"status", "bigint"},
	{"error_type", "text"}, {"finish_reason", "text"}, {"params", "text"},
	{"input_tokens", "bigint"}, {"output_tokens", "bigint"}, {"total_tokens", "bigint"},
	{"cached_input_tokens", "bigint"}, {"reasoning_tokens", "bigint"}, {"usage_source", "text"},
	{"cost_input_usd", "float8"}, {"cost_output_usd", "float8"}, {"cost_total_usd", "float8"}, {"price_source", "text"},
	{"experiment", "text"}, {"run", "text"}, {`"user"`, "text"}, {"session", "text"}, {"tags", "text"},
	{"overhead_ms", "float8"}, {"input_text", "text"}, {"output_text", "text"}, {"detail", "text"},
	{"upstream", "text"}, {"key_name", "text"}, {"team", "text"},
}

// columns lists dataColumns for a SELECT or an INSERT.
var columns = columnList(dataColumns)

func columnList(cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// insertSQL inserts one row per element of its array parameters ($1 holds
// the ids, $2 the trace ids, … in dataColumns' order), in that order, and
// skips the ids already stored (or earlier in the arrays).
var insertSQL = insertInto(dataColumns, "(id, start)")

// insertInto is insertSQL for the columns cols, skipping rows that
// conflict on conflict.
func insertInto(cols []column, conflict string) string {
	params := make([]string, len(cols))
	for i, c := range cols {
		params[i] = "$" + strconv.Itoa(i+1) + "::" + c.typ + "[]"
	}
	names := columnList(cols)
	return `INSERT INTO calls (` + names + `)
SELECT ` + names + ` FROM unnest(` + strings.Join(params, ", ") + `)
	WITH ORDINALITY AS u (` + names + `, ord)
ORDER BY ord
ON CONFLICT ` + conflict + ` DO NOTHING`
}

// scanCall reads one row selected with columns.
func scanCall(row pgx.Row) (*llmscope.Call, error) {
	return scanCallSeq(row, nil)
}

// scanCallSeq reads one row selected with columns, preceded by seq when seq
// is not nil.
func scanCallSeq(row pgx.Row, seq *int64) (*llmscope.Call, error) {
	var (
		c                          llmscope.Call
		start                      int64
		params                     string
		tags, priceSource, det     *string
		costIn, costOut, costTotal *float64
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
	if tags != nil {
		if err := json.Unmarshal([]byte(*tags), &c.Tags); err != nil {
			return nil, fmt.Errorf("call %q: decode tags: %w", c.ID, err)
		}
	}
	if err := setDetail(&c, det); err != nil {
		return nil, err
	}
	if costTotal != nil {
		c.Cost = &llmscope.Cost{TotalUSD: *costTotal}
		if costIn != nil {
			c.Cost.InputUSD = *costIn
		}
		if costOut != nil {
			c.Cost.OutputUSD = *costOut
		}
		if priceSource != nil {
			c.Cost.PriceSource = *priceSource
		}
	}
	return &c, nil
}

// Get returns the call with the given id, or an error wrapping
// llmscope.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*llmscope.Call, error) {
	c, err := scanCall(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM calls WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: get %q: %w", id, llmscope.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get %q: %w", id, err)
	}
	return c, nil
}

// where returns the WHERE clause (empty, or starting with a space) selecting
// the calls f matches, and its arguments. Values are always parameters.
func where(f llmscope.Filter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "start >= "+arg(schema.Nanos(f.Since)))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "start < "+arg(schema.Nanos(f.Until)))
	}
	if f.Model != "" {
		p := arg(f.Model)
		conds = append(conds, "(request_model = "+p+" OR response_model = "+p+")")
	}
	switch {
	case f.NoRun:
		conds = append(conds, "run = ''")
	case f.Run != "":
		conds = append(conds, "run = "+arg(f.Run))
	}
	if f.Experiment != "" {
		conds = append(conds, "experiment = "+arg(f.Experiment))
	}
	if f.Operation != "" {
		conds = append(conds, "operation = "+arg(f.Operation))
	}
	if f.MaxSeq > 0 {
		conds = append(conds, "seq <= "+arg(f.MaxSeq))
	}
	if p := f.Before; p != nil {
		// start <= $n alone lets the start index bound the scan.
		n, id := arg(schema.Nanos(p.Start)), arg(p.ID)
		conds = append(conds, "start <= "+n+" AND (start < "+n+" OR id < "+id+")")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the calls matching f, newest first (by start, then by id in
// byte order), at most f.Limit of them, or llmscope.DefaultLimit when
// f.Limit <= 0. With f.OmitText the captured texts are not read.
func (s *Store) List(ctx context.Context, f llmscope.Filter) ([]*llmscope.Call, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = llmscope.DefaultLimit
	}
	cols := columns
	if f.OmitText {
		// Empty strings in the texts' places: scanCall reads the same shape.
		cols = strings.Replace(columns, "input_text, output_text", "''::text, ''::text", 1)
	}
	cond, args := where(f)
	args = append(args, limit)
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM calls`+cond+
		` ORDER BY start DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	defer rows.Close()
	calls := make([]*llmscope.Call, 0, min(limit, 1024))
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list: %w", err)
		}
		if f.OmitText {
			c.Input, c.Output, c.Tools, c.ToolCalls = "", "", "", ""
		}
		calls = append(calls, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	return calls, nil
}
