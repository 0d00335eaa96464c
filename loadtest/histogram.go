// Package loadtest is llmscope's load harness: an open-loop (fixed rate,
// coordinated-omission safe) and a closed-loop (fixed concurrency) request
// generator for OpenAI-style chat completions, log-linear latency
// histograms, process CPU and memory probes read from /proc, and the
// reports (JSON and Markdown) that compare targets measured in one run.
package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every bucket above 2<<subBits ns is
// at most 1/2^subBits (0.4%) of its lower bound wide.
const (
	subBits  = 8
	subCount = 1 << subBits
)

// Histogram records durations in HDR-style log-linear buckets: exact below
// 512 ns, relative error at most 0.4% above, memory proportional to the log
// of the largest value and independent of the count. The zero value is
// ready; a Histogram is not safe for concurrent use.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // nanoseconds
	min, max int64
}

// bucketOf returns the bucket index of v ≥ 0 nanoseconds.
func bucketOf(v int64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	sub := v >> shift // in [subCount, 2*subCount)
	return 2*subCount + (shift-1)*subCount + int(sub-subCount)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	j := i - 2*subCount
	shift := j/subCount + 1
	sub := int64(j%subCount + subCount)
	return sub << shift, (sub+1)<<shift - 1
}

// Record adds one duration; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	i := bucketOf(v)
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+subCount)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q in [0, 1]: the value of rank
// ceil(q·n) (at least 1), within the bucket precision, never outside
// [Min, Max]. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary holds the percentiles of a Histogram in microseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_us"`
	Min   float64 `json:"min_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
}

// Summarize returns h's count, mean, extremes and p50/p90/p99/p99.9.
func (h *Histogram) Summarize() Summary {
	us := func(d time.Duration) float64 { return math.Round(float64(d)/1e1) / 1e2 }
	return Summary{
		Count: h.n, Mean: us(h.Mean()), Min: us(h.Min()),
		P50: us(h.Quantile(0.50)), P90: us(h.Quantile(0.90)), P99: us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)), Max: us(h.Max()),
	}
}
