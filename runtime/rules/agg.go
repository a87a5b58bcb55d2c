package rules

import (
	"fmt"
	"math"
	"slices"

	"github.com/reconmon/recon/plan"
)

// aggKind is one aggregate function.
type aggKind int

const (
	aggAvg aggKind = iota + 1
	aggMin
	aggMax
	aggSum
	aggCount    // count(): rows in the window
	aggCountVal // count(x): rows where x is not null
	aggFirst
	aggLast
	aggStddev
	aggDelta
	aggRate
	aggQuantile
)

var aggNames = map[string]aggKind{
	"avg": aggAvg, "min": aggMin, "max": aggMax, "sum": aggSum, "count": aggCount,
	"first": aggFirst, "last": aggLast, "stddev": aggStddev, "delta": aggDelta, "rate": aggRate,
	"quantile": aggQuantile, "p50": aggQuantile, "p90": aggQuantile, "p95": aggQuantile, "p99": aggQuantile,
}

var fixedQuantiles = map[string]float64{"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

// aggSpec is one aggregate a rule computes per group and evaluation.
type aggSpec struct {
	kind  aggKind
	input int // index into the rule's inputs; -1 for count()
	q     float64
}

// window is the content of one group's window at one evaluation: parallel
// slices of event times and input values (NaN where the input is null), and
// the computed aggregate slots.
type window struct {
	ts      []int64
	vals    [][]float64
	slots   []float64
	scratch []float64
}

// Aggregate-level compiled expressions, evaluated once per group and
// evaluation over the slots.
type (
	valFn  func(w *window) float64
	condFn func(w *window) bool
)

// condCompiler compiles a rule's conditions, registering the inputs (row
// expressions that aggregates read) and aggregates they need.
type condCompiler struct {
	inputs   []numFn
	inputKey map[string]int
	aggs     []aggSpec
	aggKey   map[aggSpec]int
}

func newCondCompiler() *condCompiler {
	return &condCompiler{inputKey: map[string]int{}, aggKey: map[aggSpec]int{}}
}

func (c *condCompiler) input(e *plan.Expr) (int, error) {
	k := exprKey(e)
	if i, ok := c.inputKey[k]; ok {
		return i, nil
	}
	if ek, err := exprKind(e); err != nil {
		return 0, err
	} else if ek != kindNum {
		return 0, fmt.Errorf("%s is a %s: aggregates take numbers", describe(e), ek)
	}
	f, err := compileNum(e)
	if err != nil {
		return 0, err
	}
	c.inputs = append(c.inputs, f)
	c.inputKey[k] = len(c.inputs) - 1
	return len(c.inputs) - 1, nil
}

func (c *condCompiler) agg(s aggSpec) int {
	if i, ok := c.aggKey[s]; ok {
		return i
	}
	c.aggs = append(c.aggs, s)
	c.aggKey[s] = len(c.aggs) - 1
	return len(c.aggs) - 1
}

func (c *condCompiler) call(e *plan.Expr) (valFn, error) {
	k, ok := aggNames[e.Name]
	if !ok {
		return nil, fmt.Errorf("unknown function %s() (aggregates: avg min max sum count first last stddev delta rate p50 p90 p95 p99 quantile)", e.Name)
	}
	args := e.Args
	spec := aggSpec{kind: k, input: -1}
	switch {
	case k == aggCount && len(args) == 0:
	case k == aggQuantile && e.Name == "quantile":
		if len(args) != 2 || args[0].Op != "num" || args[0].Num < 0 || args[0].Num > 1 {
			return nil, fmt.Errorf("%s: quantile takes a number between 0 and 1 and an expression, e.g. quantile(0.95, value)", describe(e))
		}
		spec.q = args[0].Num
		args = args[1:]
		fallthrough
	default:
		if len(args) != 1 {
			return nil, fmt.Errorf("%s: %s takes one argument, e.g. %s(value)", describe(e), e.Name, e.Name)
		}
		in, err := c.input(args[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describe(e), err)
		}
		spec.input = in
		if k == aggCount {
			spec.kind = aggCountVal
		}
		if q, ok := fixedQuantiles[e.Name]; ok {
			spec.q = q
		}
	}
	slot := c.agg(spec)
	return func(w *window) float64 { return w.slots[slot] }, nil
}

func (c *condCompiler) value(e *plan.Expr) (valFn, error) {
	switch e.Op {
	case "num":
		v := e.Num
		return func(*window) float64 { return v }, nil
	case "call":
		return c.call(e)
	case "neg":
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("neg takes one operand")
		}
		a, err := c.value(e.Args[0])
		if err != nil {
			return nil, err
		}
		return func(w *window) float64 { return -a(w) }, nil
	case "+", "-", "*", "/":
		l, r, err := operands(e, c.value)
		if err != nil {
			return nil, err
		}
		op := arith(e.Op)
		return func(w *window) float64 { return op(l(w), r(w)) }, nil
	case "col", "label":
		return nil, fmt.Errorf("%s must be inside an aggregate, e.g. avg(%s)", describe(e), Format(e))
	}
	return nil, fmt.Errorf("%s is not a number", describe(e))
}

// cond compiles a condition; a comparison with an undefined side (NaN: an
// empty window) is false.
func (c *condCompiler) cond(e *plan.Expr) (condFn, error) {
	switch e.Op {
	case "bool":
		v := e.Bool
		return func(*window) bool { return v }, nil
	case "and", "or":
		l, r, err := operands(e, c.cond)
		if err != nil {
			return nil, err
		}
		if e.Op == "and" {
			return func(w *window) bool { return l(w) && r(w) }, nil
		}
		return func(w *window) bool { return l(w) || r(w) }, nil
	case "not":
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("not takes one operand")
		}
		a, err := c.cond(e.Args[0])
		if err != nil {
			return nil, err
		}
		return func(w *window) bool { return !a(w) }, nil
	case "==", "!=", "<", "<=", ">", ">=":
		l, r, err := operands(e, c.value)
		if err != nil {
			return nil, err
		}
		cmp := cmpNum(e.Op)
		return func(w *window) bool { return cmp(l(w), r(w)) }, nil
	}
	return nil, fmt.Errorf("%s is not a condition over aggregates (e.g. p95(value) > 0.5)", describe(e))
}

// lhs returns the value a condition reports: the left side of its top-level
// comparison (the left-most one under and/or/not), or nil.
func (c *condCompiler) lhs(e *plan.Expr) (valFn, *plan.Expr) {
	for e != nil {
		switch e.Op {
		case "==", "!=", "<", "<=", ">", ">=":
			f, err := c.value(e.Args[0])
			if err != nil {
				return nil, nil
			}
			return f, e.Args[0]
		case "and", "or", "not":
			e = e.Args[0]
		default:
			return nil, nil
		}
	}
	return nil, nil
}

// compute fills w.slots for the rule's aggregates over the window.
func compute(aggs []aggSpec, w *window) {
	for i, a := range aggs {
		var v float64
		if a.kind == aggCount {
			v = float64(len(w.ts))
		} else {
			v = aggregate(a, w.ts, w.vals[a.input], &w.scratch)
		}
		w.slots[i] = v
	}
}

func aggregate(a aggSpec, ts []int64, vals []float64, scratch *[]float64) float64 {
	switch a.kind {
	case aggAvg, aggSum, aggCountVal:
		sum, n := 0.0, 0
		for _, v := range vals {
			if v == v {
				sum += v
				n++
			}
		}
		switch {
		case a.kind == aggCountVal:
			return float64(n)
		case n == 0:
			return nan
		case a.kind == aggSum:
			return sum
		}
		return sum / float64(n)
	case aggMin, aggMax:
		r, seen := 0.0, false
		for _, v := range vals {
			if v != v {
				continue
			}
			if !seen || (a.kind == aggMin && v < r) || (a.kind == aggMax && v > r) {
				r, seen = v, true
			}
		}
		if !seen {
			return nan
		}
		return r
	case aggFirst:
		for _, v := range vals {
			if v == v {
				return v
			}
		}
		return nan
	case aggLast:
		for i := len(vals) - 1; i >= 0; i-- {
			if vals[i] == vals[i] {
				return vals[i]
			}
		}
		return nan
	case aggDelta:
		first, last := aggregate(aggSpec{kind: aggFirst}, ts, vals, scratch), aggregate(aggSpec{kind: aggLast}, ts, vals, scratch)
		return last - first
	case aggStddev:
		// Welford: numerically stable population standard deviation.
		n, mean, m2 := 0.0, 0.0, 0.0
		for _, v := range vals {
			if v != v {
				continue
			}
			n++
			d := v - mean
			mean += d / n
			m2 += d * (v - mean)
		}
		if n == 0 {
			return nan
		}
		return math.Sqrt(m2 / n)
	case aggRate:
		return rate(ts, vals)
	case aggQuantile:
		s := (*scratch)[:0]
		for _, v := range vals {
			if v == v {
				s = append(s, v)
			}
		}
		*scratch = s
		return quantile(s, a.q)
	}
	return nan
}

const (
	two32 = 1 << 32
	two63 = 1 << 63
	two64 = float64(1<<63) * 2
)

// rate is the per-second increase of a counter over the window. A decrease
// is a wrap when the previous value was in the upper half of the 32-bit
// (or 64-bit) range and the wrapped increase is less than half the range;
// any other decrease is a reset (the counter restarted from 0, so the
// increase is the new value).
func rate(ts []int64, vals []float64) float64 {
	var inc float64
	first, last := -1, -1
	prev := 0.0
	for i, v := range vals {
		if v != v {
			continue
		}
		if first < 0 {
			first, last, prev = i, i, v
			continue
		}
		switch {
		case v >= prev:
			inc += v - prev
		case prev < two32 && prev >= two32/2 && two32-prev+v < two32/2:
			inc += two32 - prev + v
		case prev >= two32 && prev >= two63 && two64-prev+v < two63:
			inc += two64 - prev + v
		default:
			inc += v
		}
		prev, last = v, i
	}
	if first < 0 || last == first || ts[last] == ts[first] {
		return nan
	}
	return inc / (float64(ts[last]-ts[first]) / 1e9)
}

// quantile is the exact q-quantile of s with linear interpolation between
// closest ranks (s is reordered). It selects rather than sorts: O(n).
func quantile(s []float64, q float64) float64 {
	n := len(s)
	if n == 0 {
		return nan
	}
	rank := q * float64(n-1)
	k := int(rank)
	if k >= n-1 {
		return selectK(s, n-1)
	}
	lo := selectK(s, k)
	frac := rank - float64(k)
	if frac == 0 {
		return lo
	}
	// After selection every element right of k is >= s[k]: the next order
	// statistic is their minimum.
	hi := s[k+1]
	for _, v := range s[k+2:] {
		if v < hi {
			hi = v
		}
	}
	return lo + (hi-lo)*frac
}

// selectK reorders s so that s[k] is its k-th smallest element, smaller ones
// left of it and larger or equal ones right of it (Hoare's quickselect with
// median-of-three pivots, insertion sort for short ranges).
func selectK(s []float64, k int) float64 {
	lo, hi := 0, len(s)-1
	for hi-lo > 16 {
		mid := lo + (hi-lo)/2
		if s[mid] < s[lo] {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if s[hi] < s[lo] {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if s[hi] < s[mid] {
			s[hi], s[mid] = s[mid], s[hi]
		}
		p := s[mid]
		i, j := lo, hi
		for i <= j {
			for s[i] < p {
				i++
			}
			for s[j] > p {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k]
		}
	}
	slices.Sort(s[lo : hi+1])
	return s[k]
}
