package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"llmscope"
	"llmscope/internal/schema"
)

// seqLock is the key of the advisory lock every Write holds from its insert
// to its commit. Writers of all processes thus commit one at a time, in the
// order they drew their seqs, so a reader that saw seq N never later finds a
// call with a smaller seq (After's guarantee to the exporters).
const seqLock = 0x6c6c6d7363736571 // "llmscseq"

// Write stores calls in one transaction; it returns only after the commit.
// A call whose id is already stored with the same start (or appears
// earlier in calls) is skipped, so a retried batch never duplicates, even when the commit of the
// first try succeeded but its answer was lost. Nil entries are skipped.
//
// Its errors are *llmscope.WriteError. Postgres text cannot hold NUL bytes
// or invalid UTF-8, so a call with such a string (where SQLite would store
// it as given) is refused as WriteInvalidCall with its id before anything is
// sent; so is a call with a non-finite duration or cost (which SQLite
// refuses too), and a call the server refuses for its values. Nothing of the
// batch is then committed; (*llmscope.Call).Sanitize makes such a call
// storable.
// A server that cannot be reached, or is lost mid-way, is
// llmscope.WriteUnavailable.
//
// The partitions of the batch's days (and the next days') are created
// first when this store has not seen them yet (see ensurePartitions). The
// id is unique together with start (the partition key): the same id with
// another start would be a second call; the gateway never makes one.
func (s *Store) Write(ctx context.Context, calls []*llmscope.Call) error {
	var rows columnArrays
	for _, c := range calls {
		if c == nil {
			continue
		}
		if field := uncleanField(c); field != "" {
			return invalidCall(fmt.Errorf("postgres: write batch: call %q: %s holds a NUL byte or invalid UTF-8", c.ID, field), c.ID)
		}
		if field := nonFinite(c); field != "" {
			return invalidCall(fmt.Errorf("postgres: write batch: call %q: %s is not a finite number", c.ID, field), c.ID)
		}
		if err := rows.add(c); err != nil {
			return invalidCall(fmt.Errorf("postgres: write batch: call %q: %w", c.ID, err), c.ID)
		}
	}
	if len(rows.id) == 0 {
		return nil
	}
	if err := s.ensurePartitions(ctx, calls); err != nil {
		return writeError(fmt.Errorf("postgres: write batch: %w", err), "")
	}
	args := rows.args()
	err := s.insert(ctx, args)
	if noPartition(err) {
		// Another gateway's retention dropped a day this store knew:
		// check the batch's days again, once.
		s.parts.forgetDays(calls)
		if err = s.ensurePartitions(ctx, calls); err != nil {
			return writeError(fmt.Errorf("postgres: write batch: %w", err), "")
		}
		err = s.insert(ctx, args)
	}
	if err != nil && ctx.Err() == nil && writeReason(err) == llmscope.WriteUnavailable {
		// The pool may have handed out a connection that broke while idle
		// (the server restarted): once more, on a new one. Harmless even if
		// the first try committed, since stored ids are skipped.
		err = s.insert(ctx, args)
	}
	if err == nil {
		return nil
	}
	id := ""
	if valueError(err) {
		if len(rows.id) == 1 {
			id = rows.id[0]
		} else {
			id = s.refused(ctx, calls)
		}
	}
	return writeError(fmt.Errorf("postgres: write batch: %w", err), id)
}

// insert runs insertSQL with args in one transaction holding seqLock, in
// one round trip: the statements of a pgx batch run in one implicit
// transaction, committed at its end.
func (s *Store) insert(ctx context.Context, args []any) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(seqLock))
	b.Queue(insertSQL, args...)
	return s.pool.SendBatch(ctx, b).Close()
}

// refused returns the id of the first of calls that the server refuses on
// its own, or "" when there is none (or it cannot tell). It inserts each
// call under a savepoint of one transaction, then rolls all of it back.
func (s *Store) refused(ctx context.Context, calls []*llmscope.Call) string {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return ""
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, c := range calls {
		if c == nil {
			continue
		}
		var one columnArrays
		if one.add(c) != nil {
			return c.ID
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return ""
		}
		if _, err := sp.Exec(ctx, insertSQL, one.args()...); err != nil {
			if valueError(err) {
				return c.ID
			}
			return ""
		}
		if err := sp.Commit(ctx); err != nil { // releases the savepoint
			return ""
		}
	}
	return ""
}

// CheckWritable really writes to the database (one row of the meta table,
// in a transaction of its own) and returns the *llmscope.WriteError that
// says why not when it cannot.
func (s *Store) CheckWritable(ctx context.Context) error {
	now := time.Now()
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value, updated) VALUES ('write_checked', $1, $2)
	ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
		now.UTC().Format(time.RFC3339Nano), now.UnixNano())
	if err != nil {
		return writeError(fmt.Errorf("postgres: check writable: %w", err), "")
	}
	return nil
}

// uncleanField returns the name of a text column of c whose value Postgres
// cannot store (it holds a NUL byte or invalid UTF-8), or "". The JSON
// columns are always clean: encoding/json escapes NUL and replaces invalid
// UTF-8, exactly as it does for the SQLite store.
func uncleanField(c *llmscope.Call) string {
	for _, f := range [...]struct{ name, v string }{
		{"id", c.ID}, {"trace_id", c.TraceID}, {"operation", c.Operation}, {"provider", c.Provider},
		{"endpoint", c.Endpoint}, {"request_model", c.RequestModel}, {"response_model", c.ResponseModel},
		{"error_type", c.ErrorType}, {"finish_reason", c.FinishReason}, {"usage.source", c.Usage.Source},
		{"experiment", c.Experiment}, {"run", c.Run}, {"user", c.User}, {"session", c.Session},
		{"input", c.Input}, {"output", c.Output}, {"upstream", c.Upstream}, {"key", c.Key}, {"team", c.Team},
	} {
		if !clean(f.v) {
			return f.name
		}
	}
	if c.Cost != nil && !clean(c.Cost.PriceSource) {
		return "cost.price_source"
	}
	return ""
}

// nonFinite returns the name of a float column of c holding NaN or an
// infinity, or "".
func nonFinite(c *llmscope.Call) string {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case !finite(c.DurationMS):
		return "duration_ms"
	case !finite(c.TTFTMS):
		return "ttft_ms"
	case !finite(c.OverheadMS):
		return "overhead_ms"
	case c.Cost != nil && (!finite(c.Cost.InputUSD) || !finite(c.Cost.OutputUSD) || !finite(c.Cost.TotalUSD)):
		return "cost"
	}
	return ""
}

func clean(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

// columnArrays holds a batch column by column, in dataColumns' order: the
// parameters of insertSQL. A nil pointer is a NULL.
type columnArrays struct {
	id, traceID                        []string
	start                              []int64
	duration, ttft                     []float64
	operation, provider, endpoint      []string
	requestModel, responseModel        []string
	stream                             []bool
	status                             []int64
	errorType, finishReason, params    []string
	inTok, outTok, totalTok, cachedTok []int64
	reasoningTok                       []int64
	usageSource                        []string
	costIn, costOut, costTotal         []*float64
	priceSource                        []*string
	experiment, run, user, session     []string
	tags                               []*string
	overhead                           []float64
	input, output                      []string
	detail                             []*string
	upstream, keyName, team            []string
}

// add appends c's column values.
func (a *columnArrays) add(c *llmscope.Call) error {
	params, err := json.Marshal(c.Params)
	if err != nil {
		return fmt.Errorf("encode params: %w", err)
	}
	var tags *string // NULL for a nil map, so that it reads back as nil
	if c.Tags != nil {
		b, err := json.Marshal(c.Tags)
		if err != nil {
			return fmt.Errorf("encode tags: %w", err)
		}
		tags = new(string(b))
	}
	var costIn, costOut, costTotal *float64 // NULL: price unknown
	var priceSource *string
	if c.Cost != nil {
		costIn, costOut, costTotal = new(c.Cost.InputUSD), new(c.Cost.OutputUSD), new(c.Cost.TotalUSD)
		priceSource = new(c.Cost.PriceSource)
	}
	det, err := detailArg(c)
	if err != nil {
		return err
	}
	a.id, a.traceID = append(a.id, c.ID), append(a.traceID, c.TraceID)
	a.start = append(a.start, schema.Nanos(c.Start))
	a.duration, a.ttft = append(a.duration, c.DurationMS), append(a.ttft, c.TTFTMS)
	a.operation, a.provider, a.endpoint = append(a.operation, c.Operation), append(a.provider, c.Provider), append(a.endpoint, c.Endpoint)
	a.requestModel, a.responseModel = append(a.requestModel, c.RequestModel), append(a.responseModel, c.ResponseModel)
	a.stream, a.status = append(a.stream, c.Stream), append(a.status, int64(c.Status))
	a.errorType, a.finishReason, a.params = append(a.errorType, c.ErrorType), append(a.finishReason, c.FinishReason), append(a.params, string(params))
	a.inTok, a.outTok = append(a.inTok, c.Usage.InputTokens), append(a.outTok, c.Usage.OutputTokens)
	a.totalTok, a.cachedTok = append(a.totalTok, c.Usage.TotalTokens), append(a.cachedTok, c.Usage.CachedInputTokens)
	a.reasoningTok, a.usageSource = append(a.reasoningTok, c.Usage.ReasoningTokens), append(a.usageSource, c.Usage.Source)
	a.costIn, a.costOut, a.costTotal = append(a.costIn, costIn), append(a.costOut, costOut), append(a.costTotal, costTotal)
	a.priceSource = append(a.priceSource, priceSource)
	a.experiment, a.run, a.user, a.session = append(a.experiment, c.Experiment), append(a.run, c.Run), append(a.user, c.User), append(a.session, c.Session)
	a.tags, a.overhead = append(a.tags, tags), append(a.overhead, c.OverheadMS)
	a.input, a.output, a.detail = append(a.input, c.Input), append(a.output, c.Output), append(a.detail, det)
	a.upstream, a.keyName, a.team = append(a.upstream, c.Upstream), append(a.keyName, c.Key), append(a.team, c.Team)
	return nil
}

// args returns the arrays in dataColumns' order.
func (a *columnArrays) args() []any {
	return []any{
		a.id, a.traceID, a.start, a.duration, a.ttft, a.operation, a.provider, a.endpoint,
		a.requestModel, a.responseModel, a.stream, a.status, a.errorType, a.finishReason, a.params,
		a.inTok, a.outTok, a.totalTok, a.cachedTok, a.reasoningTok, a.usageSource,
		a.costIn, a.costOut, a.costTotal, a.priceSource,
		a.experiment, a.run, a.user, a.session, a.tags, a.overhead, a.input, a.output, a.detail,
		a.upstream, a.keyName, a.team,
	}
}
