package rules

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// quantile by selection equals the sort-based definition (linear
// interpolation between closest ranks) on random data with duplicates.
func TestQuantileMatchesSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n < 300; n += 7 {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = float64(rng.IntN(50)) / 4
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.95, 0.99, 1} {
			rank := q * float64(n-1)
			lo := int(math.Floor(rank))
			want := sorted[lo]
			if lo+1 < n {
				want += (sorted[lo+1] - sorted[lo]) * (rank - float64(lo))
			}
			if got := quantile(slices.Clone(vals), q); math.Abs(got-want) > 1e-12 {
				t.Fatalf("n=%d q=%g: quantile %g, want %g", n, q, got, want)
			}
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}

// rate: 32- and 64-bit wraps count the wrapped increase, other decreases
// are resets; fewer than two samples is undefined.
func TestRateCounterSemantics(t *testing.T) {
	s := int64(1e9)
	cases := []struct {
		name string
		vals []float64
		want float64
	}{
		{"increasing", []float64{10, 20, 40}, 15},
		{"32-bit wrap", []float64{4294967290, 4}, 10},
		{"64-bit wrap", []float64{18446744073709549568, 2048}, 4096},
		{"reset", []float64{5000, 30}, 30},
		{"reset of a large counter", []float64{1e12, 7}, 7},
		{"nulls skipped", []float64{1, math.NaN(), 3}, 1},
	}
	for _, c := range cases {
		ts := make([]int64, len(c.vals))
		for i := range ts {
			ts[i] = int64(i) * s
		}
		if got := rate(ts, c.vals); math.Abs(got-c.want) > 1e-9*math.Max(1, c.want) {
			t.Errorf("%s: rate %g, want %g", c.name, got, c.want)
		}
	}
	if !math.IsNaN(rate([]int64{0}, []float64{1})) {
		t.Error("rate of one sample is not NaN")
	}
}
