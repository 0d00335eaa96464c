package llmscope

import (
	"math"
	"sort"
)

// MannWhitney runs the two-sided Mann–Whitney U test of a against b. u is
// the U statistic of a: the number of pairs (a[i], b[j]) with a[i] > b[j],
// ties counting one half, so u > len(a)*len(b)/2 means a tends to be larger.
// p uses the normal approximation with tie and continuity corrections
// (scipy's mannwhitneyu, method="asymptotic"); it is close to exact from
// about 20 values per side. p is NaN when either sample is empty and 1 when
// every value is tied. a and b are not modified.
func MannWhitney(a, b []float64) (u, p float64) {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), math.NaN()
	}
	type item struct {
		v     float64
		fromA bool
	}
	all := make([]item, 0, n1+n2)
	for _, v := range a {
		all = append(all, item{v, true})
	}
	for _, v := range b {
		all = append(all, item{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	n := float64(n1 + n2)
	var rankA, ties float64 // sum of a's ranks; sum of t³-t over tie groups
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // the mean of ranks i+1 … j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	f1, f2 := float64(n1), float64(n2)
	u = rankA - f1*(f1+1)/2
	mu := f1 * f2 / 2
	variance := f1 * f2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 {
		return u, 1
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(variance)
	if z < 0 {
		z = 0
	}
	return u, min(1, math.Erfc(z/math.Sqrt2))
}
