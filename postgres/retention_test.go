package postgres

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"llmscope"
)

// TestPruneAlongsideWriters checks that two pruners running at once split
// the old calls between them (SKIP LOCKED), neither failing nor deleting a
// call twice, while calls are being written.
func TestPruneAlongsideWriters(t *testing.T) {
	a := openTemp(t)
	ctx := t.Context()
	old := benchCalls(5000, rand.New(rand.NewPCG(5, 5)))
	for _, c := range old {
		c.Start = c.Start.Add(-48 * time.Hour)
	}
	for chunk := range slices.Chunk(old, 1000) {
		if err := a.Write(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	fresh := benchCalls(500, rand.New(rand.NewPCG(6, 6)))
	cutoff := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	var deleted [2]int64
	for i := range 2 {
		wg.Go(func() {
			for {
				n, err := a.Prune(ctx, cutoff, 300)
				if err != nil {
					t.Errorf("Prune: %v", err)
					return
				}
				deleted[i] += n
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for chunk := range slices.Chunk(fresh, 50) {
			if err := a.Write(ctx, chunk); err != nil {
				t.Errorf("Write while pruning: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if total := deleted[0] + deleted[1]; total != int64(len(old)) {
		t.Errorf("the pruners deleted %d + %d calls, want %d in all", deleted[0], deleted[1], len(old))
	}
	st, err := a.Stats(ctx, llmscope.Filter{})
	if err != nil || st.Totals.Calls != int64(len(fresh)) {
		t.Errorf("Stats after pruning = %+v, %v; want %d calls", st.Totals, err, len(fresh))
	}
}

// BenchmarkPrune100k deletes 100,000 old calls in batches of 1,000, 10 ms
// apart, as serve's pruner does, while 256-call batches are written every
// 20 ms, and compares those writes' latency with the same writes before
// pruning began (see the SQLite store's benchmark). Run it with
// -benchtime=1x. mode=delete deletes row by row (Prune alone); mode=drop
// drops the old day's partition first (DropBefore, as serve's retention
// does), leaving Prune nothing.
func BenchmarkPrune100k(b *testing.B) {
	for _, drop := range []bool{false, true} {
		b.Run(map[bool]string{false: "mode=delete", true: "mode=drop"}[drop], func(b *testing.B) { benchPrune(b, drop) })
	}
}

func benchPrune(b *testing.B, drop bool) {
	const old, batch, every, limit = 100_000, 256, 20 * time.Millisecond, 1000
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
		if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE calls`); err != nil {
			b.Fatal(err)
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
		idleStop := make(chan struct{})
		time.AfterFunc(2*time.Second, func() { close(idleStop) })
		idle := writes(idleStop)
		stop := make(chan struct{})
		var busy []time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { busy = writes(stop) })
		b.StartTimer()
		var inPrune time.Duration
		var deleted int64
		start := time.Now()
		cutoff := time.Now().Add(-time.Hour)
		if drop {
			t0 := time.Now()
			n, err := s.DropBefore(ctx, cutoff)
			inPrune += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			deleted += n
		}
		for {
			t0 := time.Now()
			n, err := s.Prune(ctx, cutoff, limit)
			inPrune += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			deleted += n
			if n < limit {
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
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		slices.Sort(idle)
		slices.Sort(busy)
		b.ReportMetric(float64(deleted)/inPrune.Seconds(), "rows/s")
		b.ReportMetric(float64(deleted)/wall.Seconds(), "wall-rows/s")
		if len(idle) > 0 && len(busy) > 0 {
			b.ReportMetric(ms(busy[len(busy)/2]), "write-p50-ms")
			b.ReportMetric(ms(busy[len(busy)-1]), "write-max-ms")
			b.ReportMetric(ms(idle[len(idle)/2]), "idle-write-p50-ms")
			b.ReportMetric(ms(idle[len(idle)-1]), "idle-write-max-ms")
		}
		s.Close()
	}
}
