package llmscope_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"llmscope"
)

// TestMannWhitneyScipy compares with scipy 1.17's
// mannwhitneyu(a, b, alternative="two-sided", method="asymptotic",
// use_continuity=True).
func TestMannWhitneyScipy(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b []float64
		u, p float64
	}{
		{"separated", []float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0, 0.012185780355344813},
		{"ties", []float64{1, 2, 2, 3, 3, 3, 4}, []float64{2, 3, 4, 4, 5, 5, 6}, 8.5, 0.043051432728945134},
		{"overlap", []float64{12.1, 15.3, 9.8, 20.2, 11.0, 14.4, 13.3, 18.9, 10.5, 16.7},
			[]float64{14.2, 19.8, 22.1, 17.5, 25.0, 16.1, 21.3, 18.4, 23.7, 20.9, 15.5}, 16, 0.006706275607805576},
		{"same", []float64{1, 2, 3, 4}, []float64{1, 2, 3, 4}, 8, 1},
	} {
		u, p := llmscope.MannWhitney(c.a, c.b)
		if u != c.u || math.Abs(p-c.p) > 1e-12 {
			t.Errorf("%s: MannWhitney = (%v, %v), want (%v, %v)", c.name, u, p, c.u, c.p)
		}
		// Symmetry: swapping the samples gives the other U and the same p.
		u2, p2 := llmscope.MannWhitney(c.b, c.a)
		if u+u2 != float64(len(c.a)*len(c.b)) || math.Abs(p-p2) > 1e-15 {
			t.Errorf("%s swapped: (%v, %v), want U %v and p %v", c.name, u2, p2, float64(len(c.a)*len(c.b))-u, p)
		}
	}
}

func TestMannWhitneyProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sample := func(n int, shift float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = shift + 100*r.ExpFloat64()
		}
		return s
	}
	a := sample(500, 0)
	if _, p := llmscope.MannWhitney(a, append([]float64(nil), a...)); p < 0.99 {
		t.Errorf("identical samples: p = %v, want ≈ 1", p)
	}
	far := make([]float64, 500)
	for i := range far {
		far[i] = 1e6 + float64(i)
	}
	if u, p := llmscope.MannWhitney(far, a); p > 1e-100 || u != 500*500 {
		t.Errorf("separated samples: (%v, %v), want U = 250000 and p tiny", u, p)
	}
	if _, p := llmscope.MannWhitney(sample(400, 0), sample(400, 0)); p < 0.001 {
		t.Errorf("same distribution: p = %v, suspiciously small", p)
	}
	if u, p := llmscope.MannWhitney(sample(400, 100), sample(400, 0)); p > 1e-6 || u < 400*400/2 {
		t.Errorf("shifted by 100: (%v, %v), want a large U and p tiny", u, p)
	}
	if _, p := llmscope.MannWhitney([]float64{3, 3, 3}, []float64{3, 3}); p != 1 {
		t.Errorf("all tied: p = %v, want 1", p)
	}
	if u, p := llmscope.MannWhitney(nil, []float64{1}); !math.IsNaN(u) || !math.IsNaN(p) {
		t.Errorf("empty sample: (%v, %v), want NaN", u, p)
	}
	in := []float64{3, 1, 2}
	llmscope.MannWhitney(in, []float64{0})
	if in[0] != 3 || in[1] != 1 {
		t.Errorf("MannWhitney reordered its input: %v", in)
	}
}
