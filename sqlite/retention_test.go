package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// TestPruneKeepsSeqsIncreasing checks the schema fact Prune relies on: seq is
// AUTOINCREMENT, so deleting the newest calls does not let the next call
// reuse their seqs (a plain INTEGER PRIMARY KEY would).
func TestPruneKeepsSeqsIncreasing(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	old := time.Now().Add(-time.Hour)
	for i := range 3 {
		if err := s.Write(ctx, []*llmscope.Call{testCall(llmscope.NewID(), old.Add(time.Duration(i)))}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Prune(ctx, time.Now(), 10); err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	c := testCall(llmscope.NewID(), time.Now())
	if err := s.Write(ctx, []*llmscope.Call{c}); err != nil {
		t.Fatal(err)
	}
	got, err := s.After(ctx, 0, 10)
	if err != nil || len(got) != 1 || got[0].Seq != 4 {
		t.Fatalf("After(0) = %v, %v; want one call with seq 4", got, err)
	}
}

// TestPruneUsesStartIndex checks that Prune finds old calls through the
// calls_start index rather than by scanning the table.
func TestPruneUsesStartIndex(t *testing.T) {
	s := openTemp(t)
	rows, err := s.reader.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+pruneSQL, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !slices.ContainsFunc(plan, func(d string) bool { return d == "SEARCH calls USING COVERING INDEX calls_start (start<?)" }) {
		t.Errorf("the plan does not search calls_start:\n%v", plan)
	}
}

// BenchmarkPrune100k deletes 100,000 old calls as serve's pruner does
// (batches of 1,000, 10 ms apart; and of 250 for comparison) while 256-call
// batches are written, one every 20 ms, and compares those writes' latency
// with the same writes before pruning began. Run it with -benchtime=1x:
// each iteration fills a new store.
//
// rows/s is the deletion rate counting only the time inside Prune (which
// includes waiting for the writer connection while a write holds it);
// wall-rows/s includes the pauses; write-p50-ms and write-max-ms are for
// the writes during pruning, idle-write-p50-ms and idle-write-max-ms for
// the writes before it.
func BenchmarkPrune100k(b *testing.B) {
	for _, limit := range []int{1000, 250} {
		b.Run(fmt.Sprintf("batch=%d", limit), func(b *testing.B) { benchmarkPrune(b, limit, true) })
	}
	b.Run("batch=1000/no-writes", func(b *testing.B) { benchmarkPrune(b, 1000, false) })
}

func benchmarkPrune(b *testing.B, limit int, writing bool) {
	const old, batch, every = 100_000, 256, 20 * time.Millisecond
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := openTemp(b)
		calls := benchCalls(old, rand.New(rand.NewPCG(3, uint64(i))))
		for _, c := range calls {
			c.Start = c.Start.Add(-48 * time.Hour)
		}
		for chunk := range slices.Chunk(calls, 1000) {
			if err := s.Write(ctx, chunk); err != nil {
				b.Fatal(err)
			}
		}
		fresh := benchCalls(batch, rand.New(rand.NewPCG(4, uint64(i))))
		writes := func(stop <-chan struct{}) []time.Duration {
			var lat []time.Duration
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return lat
				case <-tick.C:
				}
				for _, c := range fresh {
					c.ID = llmscope.NewID()
				}
				t0 := time.Now()
				if err := s.Write(ctx, fresh); err != nil {
					b.Error(err)
					return lat
				}
				lat = append(lat, time.Since(t0))
			}
		}
		var idle, busy []time.Duration
		stop := make(chan struct{})
		var wg sync.WaitGroup
		if writing {
			idleStop := make(chan struct{})
			time.AfterFunc(2*time.Second, func() { close(idleStop) })
			idle = writes(idleStop)
			wg.Go(func() { busy = writes(stop) })
		}
		b.StartTimer()
		var inPrune time.Duration
		var deleted int64
		start := time.Now()
		cutoff := time.Now().Add(-time.Hour)
		for {
			t0 := time.Now()
			n, err := s.Prune(ctx, cutoff, limit)
			inPrune += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			deleted += n
			if n < int64(limit) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		wall := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if deleted != old {
			b.Fatalf("deleted %d calls, want %d", deleted, old)
		}
		b.ReportMetric(float64(deleted)/inPrune.Seconds(), "rows/s")
		b.ReportMetric(float64(deleted)/wall.Seconds(), "wall-rows/s")
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		slices.Sort(idle)
		slices.Sort(busy)
		if len(idle) > 0 && len(busy) > 0 {
			b.ReportMetric(ms(busy[len(busy)/2]), "write-p50-ms")
			b.ReportMetric(ms(busy[len(busy)-1]), "write-max-ms")
			b.ReportMetric(ms(idle[len(idle)/2]), "idle-write-p50-ms")
			b.ReportMetric(ms(idle[len(idle)-1]), "idle-write-max-ms")
		}
		if writing {
			b.Logf("%d writes idle, %d during pruning", len(idle), len(busy))
		}
		s.Close()
	}
}
