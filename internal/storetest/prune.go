package storetest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// pruner returns s as an llmscope.Pruner, or skips the test when s is not one.
func pruner(t *testing.T, s llmscope.Store) llmscope.Pruner {
	t.Helper()
	p, ok := s.(llmscope.Pruner)
	if !ok {
		t.Skip("the store does not implement llmscope.Pruner")
	}
	return p
}

func prune(t *testing.T, p llmscope.Pruner, before time.Time, limit int) int64 {
	t.Helper()
	n, err := p.Prune(t.Context(), before, limit)
	if err != nil {
		t.Fatalf("Prune(%v, %d): %v", before, limit, err)
	}
	return n
}

// assertHolds checks that List, Get, Stats and After all see exactly want.
func assertHolds(t *testing.T, label string, s llmscope.Store, want, gone []*llmscope.Call) {
	t.Helper()
	assertIDs(t, label+": List", list(t, s, llmscope.Filter{Limit: 10000}), newestFirst(want))
	assertStats(t, label+": Stats", stats(t, s, llmscope.Filter{}), expectStats(want))
	for _, c := range gone {
		if _, err := s.Get(t.Context(), c.ID); !errors.Is(err, llmscope.ErrNotFound) {
			t.Errorf("%s: Get(%s) of a pruned call = %v, want ErrNotFound", label, c.ID, err)
		}
	}
	for _, c := range want {
		if _, err := s.Get(t.Context(), c.ID); err != nil {
			t.Errorf("%s: Get(%s) of a kept call: %v", label, c.ID, err)
		}
	}
	after, err := s.After(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := slices.Sorted(slices.Values(ids(after))), slices.Sorted(slices.Values(ids(want))); !slices.Equal(got, w) {
		t.Errorf("%s: After(0) = %v, want %v", label, abbreviate(got), abbreviate(w))
	}
}

// testPruneCutoff checks that Prune deletes exactly the calls that start
// before the cutoff (a call at the cutoff stays), whatever their commit
// order, and that a second Prune deletes nothing.
func testPruneCutoff(t *testing.T, s llmscope.Store) {
	p := pruner(t, s)
	cutoff := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	old := sequence("old", 40, cutoff.Add(-time.Hour))
	old = append(old, sequence("ancient", 1, time.Time{})...) // the zero time is older than any cutoff
	kept := sequence("new", 60, cutoff.Add(time.Second))
	kept = append(kept, sequence("edge", 1, cutoff)...)
	shuffledBatches(t, s, rand.New(rand.NewPCG(7, 8)), append(slices.Clone(old), kept...))

	if n := prune(t, p, cutoff, 1000); n != int64(len(old)) {
		t.Errorf("Prune deleted %d calls, want %d", n, len(old))
	}
	assertHolds(t, "after Prune", s, kept, old)
	if n := prune(t, p, cutoff, 1000); n != 0 {
		t.Errorf("a second Prune deleted %d calls, want 0", n)
	}
	assertHolds(t, "after a second Prune", s, kept, old)
}

// testPruneLimit checks that Prune deletes at most limit calls, the oldest
// by Start first, even when they were committed last.
func testPruneLimit(t *testing.T, s llmscope.Store) {
	p := pruner(t, s)
	cutoff := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	old := sequence("old", 10, cutoff.Add(-time.Hour))
	for _, c := range slices.Backward(old) { // the oldest gets the highest seq
		write(t, s, c)
	}
	newer := sequence("new", 3, cutoff)
	write(t, s, newer...)
	if n := prune(t, p, cutoff, 0); n != 0 {
		t.Errorf("Prune(limit 0) deleted %d calls, want 0", n)
	}
	if n := prune(t, p, cutoff, 3); n != 3 {
		t.Errorf("Prune(limit 3) deleted %d calls, want 3", n)
	}
	assertHolds(t, "after Prune(limit 3)", s, append(slices.Clone(old[3:]), newer...), old[:3])
	if n := prune(t, p, cutoff, 4); n != 4 {
		t.Errorf("Prune(limit 4) deleted %d calls, want 4", n)
	}
	if n := prune(t, p, cutoff, 100); n != 3 {
		t.Errorf("Prune(limit 100) deleted %d calls, want the last 3", n)
	}
	assertHolds(t, "after pruning all", s, newer, old)
}

// testPruneKeepsUndelivered checks that Prune never deletes a call after
// the smallest exporter cursor, however old.
func testPruneKeepsUndelivered(t *testing.T, s llmscope.Store) {
	p := pruner(t, s)
	ctx := t.Context()
	cutoff := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	old := sequence("old", 10, cutoff.Add(-time.Hour))
	oldest := sequence("oldest", 1, cutoff.Add(-48*time.Hour)) // committed last
	write(t, s, old...)
	write(t, s, oldest...)
	all, err := s.After(ctx, 0, 100)
	if err != nil || len(all) != 11 {
		t.Fatalf("After(0) = %d calls, %v; want 11", len(all), err)
	}
	if err := s.SetCursor(ctx, "mlflow", all[6].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor(ctx, "otlp", all[3].Seq); err != nil {
		t.Fatal(err)
	}
	if n := prune(t, p, cutoff, 100); n != 4 {
		t.Errorf("Prune with cursors at #6 and #3 deleted %d calls, want 4 (#0..#3)", n)
	}
	assertHolds(t, "otlp at #3", s, append(slices.Clone(old[4:]), oldest...), old[:4])
	if err := s.SetCursor(ctx, "otlp", all[10].Seq); err != nil {
		t.Fatal(err)
	}
	if n := prune(t, p, cutoff, 100); n != 3 {
		t.Errorf("Prune with mlflow at #6 deleted %d calls, want 3 (#4..#6)", n)
	}
	assertHolds(t, "mlflow at #6", s, append(slices.Clone(old[7:]), oldest...), old[:7])
	if err := s.SetCursor(ctx, "mlflow", all[10].Seq); err != nil {
		t.Fatal(err)
	}
	if n := prune(t, p, cutoff, 100); n != 4 {
		t.Errorf("Prune with every call delivered deleted %d calls, want 4", n)
	}
	assertHolds(t, "all delivered", s, nil, append(slices.Clone(old), oldest...))
}

// testPruneThenWrite checks that calls written after a Prune that deleted
// the newest calls still get seqs above every earlier one, so an exporter's
// cursor stays valid.
func testPruneThenWrite(t *testing.T, s llmscope.Store) {
	p := pruner(t, s)
	ctx := t.Context()
	cutoff := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	write(t, s, sequence("old", 5, cutoff.Add(-time.Hour))...)
	all, err := s.After(ctx, 0, 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("After(0) = %d calls, %v; want 5", len(all), err)
	}
	last := all[4].Seq
	if n := prune(t, p, cutoff, 100); n != 5 {
		t.Fatalf("Prune deleted %d calls, want 5", n)
	}
	newer := sequence("new", 3, cutoff)
	write(t, s, newer[0])
	write(t, s, newer[1:]...)
	got, err := s.After(ctx, last, 100)
	if err != nil {
		t.Fatal(err)
	}
	assertIDs(t, "After(the last pruned seq)", got, newer)
	for i, c := range got {
		if c.Seq <= last || i > 0 && c.Seq <= got[i-1].Seq {
			t.Errorf("call %s written after Prune got seq %d (last pruned %d, previous %d)", c.ID, c.Seq, last, got[max(i-1, 0)].Seq)
		}
	}
}

// testPruneWhileWriting prunes old calls while new ones are being written:
// every new call stays, every old one goes, and After sees the new ones in
// increasing seq order.
func testPruneWhileWriting(t *testing.T, s llmscope.Store) {
	p := pruner(t, s)
	ctx := t.Context()
	cutoff := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	old := sequence("old", 500, cutoff.Add(-time.Hour))
	for chunk := range slices.Chunk(old, 100) {
		write(t, s, chunk...)
	}
	newer := sequence("new", 200, cutoff)
	var wg sync.WaitGroup
	wg.Go(func() {
		for chunk := range slices.Chunk(newer, 10) {
			if err := s.Write(ctx, chunk); err != nil {
				t.Errorf("Write while pruning: %v", err)
				return
			}
		}
	})
	var deleted int64
	for {
		n, err := p.Prune(ctx, cutoff, 7)
		if err != nil {
			t.Fatalf("Prune while writing: %v", err)
		}
		deleted += n
		if n == 0 {
			break
		}
	}
	wg.Wait()
	if deleted != int64(len(old)) {
		t.Errorf("deleted %d calls in all, want %d", deleted, len(old))
	}
	assertHolds(t, "after pruning while writing", s, newer, old)
	got, err := s.After(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	assertIDs(t, "After(0)", got, newer)
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("After(0)[%d].Seq = %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
}
