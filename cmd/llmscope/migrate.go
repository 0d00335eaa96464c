package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"llmscope"
)

// exporterCursors are the cursor names the export loop uses, one per
// exporter (mlflow.Exporter.Name and otlp.Exporter.Name): migrate carries
// their progress over to the destination.
var exporterCursors = []string{"mlflow", "otlp"}

// runMigrate copies every call of a SQLite store (--from) into a Postgres
// store (--to), with the exporters' progress (see migration). Progress and
// the final summary go to stderr; a URL's password is never shown.
func runMigrate(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) error {
	s := newSettings("migrate", stderr)
	from := s.str("from", "", "", "the SQLite store to copy (a file path)")
	to := s.str("to", "", "", "the Postgres store to copy into (a postgres:// URL)")
	batch := s.str("batch", "", "1000", "calls copied per transaction")
	if err := s.parse(args); err != nil {
		return err
	}
	n, err := batch.Count()
	if err != nil {
		return err
	}
	switch {
	case from.val == "":
		return errors.New("--from: give the SQLite store to copy, e.g. --from llmscope.db")
	case strings.Contains(from.val, "://"):
		return fmt.Errorf("--from %s: give a SQLite file path, not a URL", storeLabel(from.val))
	case to.val == "":
		return errors.New("--to: give the Postgres store to copy into, e.g. --to postgres://user:password@host/llmscope")
	case !isPostgresURL(to.val):
		return fmt.Errorf("--to %s: not a postgres:// URL; migrate copies a SQLite store into Postgres", storeLabel(to.val))
	}
	abs, err := filepath.Abs(from.val)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--from: no store at %s", abs)
	}
	src, err := openExistingStore(ctx, from.val)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, to.val)
	if err != nil {
		return fmt.Errorf("open %s: %w", storeLabel(to.val), err)
	}
	defer dst.Close()
	m := &migration{src: src, dst: dst, cursor: "migrate:" + abs, batch: n,
		from: abs, to: storeLabel(to.val), log: stderr, every: time.Second}
	return m.run(ctx)
}

// isPostgresURL tells whether db names a Postgres store.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// migration copies the calls of src into dst in src's seq order, batch
// calls per Write, and records its progress in dst so that it can stop at
// any time and continue later.
//
// Progress: after each committed batch, dst's cursor named cursor holds the
// src seq of the last call copied; a run starts after it. Write skips
// stored ids, so a batch written again after a crash (committed, cursor
// not yet saved) adds nothing. A finished migration sets that cursor to
// migrationDone, which holds nothing back (retention deletes only calls at
// or below the smallest cursor); a later run then finds where to continue
// with resumePoint.
//
// Exporter cursors: an exporter's cursor in src is a src seq (every call up
// to it was delivered); in dst it must be a dst seq, which dst assigns when
// the call is written: each Write numbers its calls in order, after every
// call committed before. So after each batch, for each exporter, migration
// reads dst.After(the exporter's dst cursor) and moves that cursor over the
// calls it finds as long as each is a call of the batch that src had
// delivered; it stops at the first other call. It moves only over copies of
// delivered calls, so After(the dst cursor) never misses a call src had
// not delivered, nor a call that dst held or received from elsewhere; when
// nothing else writes to dst, it returns exactly the calls src had not
// delivered. When such another call lies among the copies, the cursor
// stays before it and the copies after it are exported again, which the
// exporters' idempotence absorbs; run reports it.
type migration struct {
	src, dst llmscope.Store
	cursor   string // dst's cursor holding the last src seq copied
	batch    int
	from, to string // labels of src and dst for messages
	log      io.Writer
	every    time.Duration // between progress lines
}

// migrationDone is the value of a finished migration's cursor.
const migrationDone = math.MaxInt64

// boundary is one exporter whose progress is still to be carried over.
type boundary struct {
	name string
	src  int64 // its cursor in src
	dst  int64 // its cursor in dst
}

// run copies every call src holds after the recorded progress. When ctx
// ends it stops after the batch under way and returns an error saying how
// far it got; running again continues from there.
func (m *migration) run(ctx context.Context) error {
	done, err := m.dst.Cursor(ctx, m.cursor)
	if err != nil {
		return fmt.Errorf("read progress: %w", err)
	}
	if done == migrationDone {
		if done, err = m.resumePoint(ctx); err != nil {
			return err
		}
	}
	total, err := m.count(ctx, 0)
	if err != nil {
		return err
	}
	before := int64(0)
	if done > 0 {
		if before, err = m.count(ctx, done); err != nil {
			return err
		}
	}
	var pending []*boundary
	for _, name := range exporterCursors {
		b := &boundary{name: name}
		if b.src, err = m.src.Cursor(ctx, name); err != nil {
			return fmt.Errorf("read %s cursor: %w", name, err)
		}
		if b.dst, err = m.dst.Cursor(ctx, name); err != nil {
			return fmt.Errorf("read %s cursor: %w", name, err)
		}
		if b.src > done { // not carried over by an earlier run
			pending = append(pending, b)
		}
	}
	var lost []string // exporters whose progress could not be carried over
	start, last := time.Now(), time.Now()
	copied, sanitized := int64(0), 0
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after copying %d of %d calls; run the same command again to continue: %w",
				before+copied, total, ctx.Err())
		}
		calls, err := m.src.After(ctx, done, m.batch)
		if err != nil {
			return fmt.Errorf("read %s: %w", m.from, err)
		}
		if len(calls) == 0 {
			break
		}
		delivered := make(map[string]int64, len(calls)) // id → src seq
		for _, c := range calls {
			delivered[c.ID] = c.Seq
			if c.Sanitize() != nil { // Postgres refuses NUL bytes and invalid UTF-8
				sanitized++
			}
		}
		lastSeq := calls[len(calls)-1].Seq
		// The batch under way finishes even when ctx ends.
		wctx := context.WithoutCancel(ctx)
		if err := m.dst.Write(wctx, calls); err != nil {
			return fmt.Errorf("write calls after seq %d of %s: %w", done, m.from, err)
		}
		var stuck []string
		if pending, stuck, err = m.carry(wctx, pending, delivered, lastSeq, len(calls)); err != nil {
			return err
		}
		lost = append(lost, stuck...)
		done = lastSeq
		if err := m.dst.SetCursor(wctx, m.cursor, done); err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
		copied += int64(len(calls))
		if now := time.Now(); now.Sub(last) >= m.every {
			last = now
			fmt.Fprintf(m.log, "migrate: %d/%d calls copied (%s), %s\n",
				before+copied, max(total, before+copied), percent(before+copied, total), rate(copied, now.Sub(start)))
		}
	}
	if err := m.dst.SetCursor(context.WithoutCancel(ctx), m.cursor, migrationDone); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	if copied == 0 {
		fmt.Fprintf(m.log, "migrate: nothing to copy: all %d calls of %s are already in %s\n", before, m.from, m.to)
	} else {
		elapsed := time.Since(start)
		fmt.Fprintf(m.log, "migrate: copied %d calls from %s to %s in %s (%s); %d in all\n",
			copied, m.from, m.to, elapsed.Round(time.Millisecond), rate(copied, elapsed), before+copied)
	}
	if sanitized > 0 {
		fmt.Fprintf(m.log, "migrate: %d of the calls held NUL bytes, invalid UTF-8 or non-finite numbers, which Postgres cannot store; they were copied cleaned, tagged %s\n",
			sanitized, llmscope.TagSanitized)
	}
	for _, name := range lost {
		fmt.Fprintf(m.log, "migrate: %s: %s holds other calls among the copies, so its progress was carried over only up to them; calls it already received will be exported to it again (with the same ids)\n",
			name, m.to)
	}
	return nil
}

// carry moves the dst cursor of each pending exporter over the calls of the
// batch just written that src had delivered to it (see migration). It
// returns the exporters still pending after the batch (their src cursor
// lies beyond it, the last src seq of which is lastSeq), and those it had
// to stop at another call.
func (m *migration) carry(ctx context.Context, pending []*boundary, delivered map[string]int64, lastSeq int64, n int) (rest []*boundary, stuck []string, err error) {
	read := map[int64][]*llmscope.Call{} // dst.After answers, by position
	for _, b := range pending {
		next, ok := read[b.dst]
		if !ok {
			if next, err = m.dst.After(ctx, b.dst, n); err != nil {
				return nil, nil, fmt.Errorf("read back from %s: %w", m.to, err)
			}
			read[b.dst] = next
		}
		to, blocked := b.dst, false
		for _, c := range next {
			seq, ours := delivered[c.ID]
			if !ours {
				blocked = true // dst's own call, or another writer's
				break
			}
			if seq > b.src {
				break // src had not delivered it
			}
			to = c.Seq
		}
		if to > b.dst {
			if err := m.dst.SetCursor(ctx, b.name, to); err != nil {
				return nil, nil, fmt.Errorf("set %s cursor: %w", b.name, err)
			}
			b.dst = to
		}
		switch {
		case blocked:
			stuck = append(stuck, b.name)
		case b.src > lastSeq:
			rest = append(rest, b)
		}
	}
	return rest, stuck, nil
}

// resumePoint returns the src seq up to which every call of src is in dst,
// for a migration that finished before: src may have received calls since.
// Migrations copy src in seq order, so the calls in dst are a prefix of
// src's, and a binary search over src's seqs, asking dst for one call per
// step, finds its end.
func (m *migration) resumePoint(ctx context.Context) (int64, error) {
	// hi: past src's last seq, found in a number of steps logarithmic in it.
	hi, step := int64(0), int64(1)
	for {
		c, err := m.firstAfter(ctx, hi)
		if err != nil {
			return 0, err
		}
		if c == nil {
			break
		}
		hi, step = c.Seq+step, step*2
	}
	// Every call with seq <= lo is in dst; none with seq > hi is.
	lo := int64(0)
	for lo < hi {
		mid := lo + (hi-lo)/2
		c, err := m.firstAfter(ctx, mid)
		if err != nil {
			return 0, err
		}
		if c == nil {
			hi = mid
			continue
		}
		_, err = m.dst.Get(ctx, c.ID)
		switch {
		case err == nil:
			lo = c.Seq
		case errors.Is(err, llmscope.ErrNotFound):
			hi = c.Seq - 1
		default:
			return 0, fmt.Errorf("find where to continue: %w", err)
		}
	}
	return lo, nil
}

// firstAfter returns the first call of src after seq, or nil.
func (m *migration) firstAfter(ctx context.Context, seq int64) (*llmscope.Call, error) {
	calls, err := m.src.After(ctx, seq, 1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.from, err)
	}
	if len(calls) == 0 {
		return nil, nil
	}
	return calls[0], nil
}

// count returns how many calls src holds up to seq (all when seq is 0).
func (m *migration) count(ctx context.Context, seq int64) (int64, error) {
	st, err := m.src.Stats(ctx, llmscope.Filter{MaxSeq: seq, MaxGroups: 1})
	if err != nil {
		return 0, fmt.Errorf("count calls of %s: %w", m.from, err)
	}
	return st.Totals.Calls, nil
}

func percent(n, total int64) string {
	if total <= 0 {
		return "100%"
	}
	return fmt.Sprintf("%d%%", min(100, n*100/total))
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return fmt.Sprintf("%d calls", n)
	}
	return fmt.Sprintf("%.0f calls/s", float64(n)/d.Seconds())
}
