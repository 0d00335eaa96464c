package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"llmscope"
)

// exporterCursors are the cursor names the export loop uses, one per
// exporter (mlflow.Exporter.Name and otlp.Exporter.Name): migrate carries
// their progress over to the destination.
var exporterCursors = []string{"mlflow", "otlp"}

// runMigrate copies every call of a SQLite store into a Postgres store.
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
// not yet saved) adds nothing.
//
// Exporter cursors: an exporter's cursor in src is a src seq (every call
// up to it was delivered); in dst it must be a dst seq, which dst assigns
// when the call is written. dst numbers the calls of each Write in order
// and after every call committed before, so when nothing else writes to dst
// the copies get increasing dst seqs in src seq order. After each batch
// migration reads the batch back with dst.After from the dst seq where the
// previous batch ended (0 at the start: dst must have been empty): when it
// finds exactly the batch's ids, in order, it knows their dst seqs and that
// no other call lies among them, and it sets the exporter's dst cursor to
// the dst seq of the last copy of a call delivered from src (never moving
// it back). After(that cursor) then returns exactly the calls src had not
// delivered. When the read-back finds anything else (dst held calls before,
// or another writer interleaved), the mapping stops there: the exporters'
// dst cursors stay where they are and the remaining calls are exported
// again, which the exporters' idempotence absorbs. Where the read-back
// ended is kept in dst's cursor named cursor+":dest" (-1 once the mapping
// stopped), so a resumed run continues it.
type migration struct {
	src, dst llmscope.Store
	cursor   string // dst's cursor holding the last src seq copied
	batch    int
	from, to string // labels of src and dst for messages
	log      io.Writer
	every    time.Duration // between progress lines
}

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
	chain, err := m.dst.Cursor(ctx, m.cursor+":dest")
	if err != nil {
		return fmt.Errorf("read progress: %w", err)
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
		srcSeqs := make([]int64, len(calls))
		for i, c := range calls {
			srcSeqs[i] = c.Seq
			if c.Sanitize() != nil { // Postgres refuses NUL bytes and invalid UTF-8
				sanitized++
			}
		}
		// The batch under way finishes even when ctx ends.
		wctx := context.WithoutCancel(ctx)
		if err := m.dst.Write(wctx, calls); err != nil {
			return fmt.Errorf("write calls after seq %d of %s: %w", done, m.from, err)
		}
		if len(pending) > 0 && chain >= 0 {
			dstSeqs, err := m.readBack(wctx, chain, calls)
			if err != nil {
				return err
			}
			if dstSeqs == nil {
				chain = -1
			} else {
				chain = dstSeqs[len(dstSeqs)-1]
				if pending, err = m.carry(wctx, pending, srcSeqs, dstSeqs); err != nil {
					return err
				}
			}
		}
		if chain < 0 {
			for _, b := range pending {
				lost = append(lost, b.name)
			}
			pending = nil
		}
		if err := m.dst.SetCursor(wctx, m.cursor+":dest", chain); err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
		done = srcSeqs[len(srcSeqs)-1]
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
		fmt.Fprintf(m.log, "migrate: %s: %s holds other calls among the copies, so its progress could not be carried over; calls it already received will be exported to it again (with the same ids)\n",
			name, m.to)
	}
	return nil
}

// readBack returns the dst seqs of calls, just written, when dst.After(from)
// returns exactly them, in order; nil otherwise.
func (m *migration) readBack(ctx context.Context, from int64, calls []*llmscope.Call) ([]int64, error) {
	got, err := m.dst.After(ctx, from, len(calls))
	if err != nil {
		return nil, fmt.Errorf("read back from %s: %w", m.to, err)
	}
	if len(got) != len(calls) {
		return nil, nil
	}
	seqs := make([]int64, len(got))
	for i, c := range got {
		if c.ID != calls[i].ID {
			return nil, nil
		}
		seqs[i] = c.Seq
	}
	return seqs, nil
}

// carry advances the dst cursor of each pending exporter to the dst seq of
// the last call of the batch it had received from src, and returns the
// exporters whose src cursor lies beyond the batch.
func (m *migration) carry(ctx context.Context, pending []*boundary, srcSeqs, dstSeqs []int64) ([]*boundary, error) {
	var rest []*boundary
	for _, b := range pending {
		to := int64(0)
		for i, s := range srcSeqs {
			if s <= b.src {
				to = dstSeqs[i]
			}
		}
		if to > b.dst {
			if err := m.dst.SetCursor(ctx, b.name, to); err != nil {
				return nil, fmt.Errorf("set %s cursor: %w", b.name, err)
			}
			b.dst = to
		}
		if b.src > srcSeqs[len(srcSeqs)-1] {
			rest = append(rest, b)
		}
	}
	return rest, nil
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
