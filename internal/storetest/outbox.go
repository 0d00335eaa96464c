package storetest

import (
	"context"
	"testing"
	"time"

	"llmscope"
)

// testOutbox checks After: commit order, positions, limits and that a call
// written later is seen after a cursor taken earlier.
func testOutbox(t *testing.T, s llmscope.Store) {
	ctx := context.Background()
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	// Start times deliberately out of order: After follows commit order, not start.
	first := sequence("outbox-a", 5, base.Add(time.Hour))
	second := sequence("outbox-b", 5, base)
	for _, c := range first {
		c.Run = "outbox-a"
	}
	write(t, s, first...)
	write(t, s, second...)
	all, err := s.After(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 {
		t.Fatalf("After(0) = %d calls, want 10", len(all))
	}
	for i, c := range all {
		want := append(first, second...)[i].ID
		if c.ID != want {
			t.Errorf("After(0)[%d] = %s, want %s (commit order)", i, c.ID, want)
		}
		if c.Seq <= 0 || i > 0 && c.Seq <= all[i-1].Seq {
			t.Errorf("After(0)[%d].Seq = %d after %d: not increasing", i, c.Seq, all[max(i-1, 0)].Seq)
		}
	}
	page, err := s.After(ctx, all[2].Seq, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 4 || page[0].ID != all[3].ID || page[3].ID != all[6].ID {
		t.Errorf("After(seq of #2, 4) = %v, want calls #3..#6", ids(page))
	}
	rest, err := s.After(ctx, all[9].Seq, 100)
	if err != nil || len(rest) != 0 {
		t.Errorf("After(last) = %v, %v; want nothing", ids(rest), err)
	}
	late := sequence("outbox-c", 1, base)
	write(t, s, late...)
	if more, err := s.After(ctx, all[9].Seq, 100); err != nil || len(more) != 1 || more[0].ID != late[0].ID {
		t.Errorf("a call written after the cursor was not returned: %v, %v", ids(more), err)
	}
	// Rewriting an existing id does not give it a new position.
	write(t, s, first[0])
	if again, _ := s.After(ctx, all[9].Seq, 100); len(again) != 1 {
		t.Errorf("a rewritten call came back after the cursor: %v", ids(again))
	}
	// MaxSeq bounds Stats: the calls of run outbox-a up to the third one.
	st, err := s.Stats(ctx, llmscope.Filter{Run: "outbox-a", MaxSeq: all[2].Seq})
	if err != nil || st.Totals.Calls != 3 {
		t.Errorf("Stats(run, MaxSeq) = %+v, %v; want 3 calls", st.Totals, err)
	}
}

func testCursor(t *testing.T, s llmscope.Store) {
	ctx := context.Background()
	if n, err := s.Cursor(ctx, "mlflow"); err != nil || n != 0 {
		t.Fatalf("new cursor = %d, %v; want 0", n, err)
	}
	for _, seq := range []int64{5, 42, 7} {
		if err := s.SetCursor(ctx, "mlflow", seq); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Cursor(ctx, "mlflow"); err != nil || n != seq {
			t.Errorf("cursor = %d, %v; want %d", n, err, seq)
		}
	}
	if n, _ := s.Cursor(ctx, "otlp"); n != 0 {
		t.Errorf("cursors are not independent: otlp = %d", n)
	}
}
