package loadtest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < 40*subCount; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its start", i, lo, hi, subCount)
		}
		prevHi = hi
	}
}

func TestQuantilesMatchSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var all []int64
	for range 100_000 {
		// log-uniform from 100 ns to ~10 s, like latencies
		v := int64(100 * float64(uint64(1)<<r.IntN(27)) * (1 + r.Float64()))
		h.Record(time.Duration(v))
		all = append(all, v)
	}
	slices.Sort(all)
	for _, q := range []float64{0, 0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(float64(len(all))*q+0.999999), 1)
		want := all[rank-1]
		got := int64(h.Quantile(q))
		if d := float64(got-want) / float64(want); d > 1.0/subCount || d < -1.0/subCount {
			t.Errorf("q=%g: %d, want %d (relative error %.4f)", q, got, want, d)
		}
	}
	if h.Min() != time.Duration(all[0]) || h.Max() != time.Duration(all[len(all)-1]) {
		t.Errorf("min/max %v %v, want %v %v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	if h.Quantile(0.5) != 50 || h.Quantile(0.99) != 99 || h.Quantile(1) != 100 || h.Mean() != 50 {
		t.Errorf("p50 %v p99 %v max %v mean %v", h.Quantile(0.5), h.Quantile(0.99), h.Quantile(1), h.Mean())
	}
	h.Record(-5)
	if h.Min() != 0 {
		t.Errorf("a negative duration counts as 0, min is %v", h.Min())
	}
}

func TestHistogramMergeEqualsRecordingAll(t *testing.T) {
	var a, b, all Histogram
	for i := range 5000 {
		v := time.Duration(i*i*37 + 1)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	if m.Summarize() != all.Summarize() {
		t.Errorf("merged %+v, want %+v", m.Summarize(), all.Summarize())
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if s := h.Summarize(); s != (Summary{}) {
		t.Errorf("empty summary %+v", s)
	}
}
