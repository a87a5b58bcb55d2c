package history

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pq "github.com/parquet-go/parquet-go"
)

// seriesIndex says where each series sits in one archive file: per row
// group, the runs of rows of one (source, metric, target), in row order
// (which is key order: the archiver sorts rows by source, metric, target,
// ts). Archive files never change once written, so an index stays valid
// for as long as the file has the same path, size and modification time.
type seriesIndex struct {
	groups []indexGroup
	runs   int
	bytes  int64 // accounted in the cache, under its lock
	// sorted is false for a file whose rows are not in key order (not
	// written by the archiver): lookups then scan every run.
	sorted bool
	// pairs is nil for the index of every series of the file (read from
	// the Parquet file). An index looked up in the stored index holds only
	// the runs of the (source, metric) pairs listed here, in no particular
	// order; every other series of the file is unknown to it.
	pairs []smPair
}

// smPair is a source and a metric: the unit in which series are looked up
// in a stored index (a query wants every target of them, or one).
type smPair struct{ source, metric string }

// covers reports whether idx knows the runs of source/metric.
func (idx *seriesIndex) covers(source, metric string) bool {
	if idx.pairs == nil {
		return true
	}
	for _, p := range idx.pairs {
		if p.source == source && p.metric == metric {
			return true
		}
	}
	return false
}

// withPair returns a copy of the partial index idx that also holds the
// runs of more (an index of the same file holding only those runs): the
// cache replaces idx by it, so the runs already read (and their points)
// are shared, never changed under a running query.
func (idx *seriesIndex) withPair(more *seriesIndex) *seriesIndex {
	out := &seriesIndex{
		groups: slices.Clone(idx.groups),
		runs:   idx.runs + more.runs,
		sorted: idx.sorted,
		pairs:  append(slices.Clip(idx.pairs), more.pairs...),
	}
	for g := range out.groups {
		out.groups[g].runs = append(slices.Clip(out.groups[g].runs), more.groups[g].runs...)
	}
	return out
}

// indexGroup is one row group: its runs and its ts bounds (from the
// file's statistics; hasTs false when the file has none).
type indexGroup struct {
	runs         []*seriesRun
	tsMin, tsMax int64
	hasTs        bool
	// ts and value locate the group's ts and value chunks when lean says
	// the lean decoder can read them (see chunkRef).
	ts, value chunkRef
	lean      bool
}

type seriesRun struct {
	SeriesKey
	start, end int64
	// agg summarises the run's finite points (kept in the index file), so
	// that a bucketed query whose bucket holds the whole run need not read
	// its points.
	agg runAgg
	// pts holds the run's points once a query read them, so that later
	// queries of the same series need not open the file again.
	pts atomic.Pointer[points]
}

// runAgg is the count, time span, min, max and sum of a run's finite
// points; ok is false when it was not computed (a chunk only the Parquet
// library reads).
type runAgg struct {
	ok           bool
	count        int64
	tsMin, tsMax int64
	min, max     float64
	sum          float64
}

// aggOf summarises points.
func aggOf(p *points) runAgg {
	a := runAgg{ok: true, count: int64(len(p.ts))}
	for i, v := range p.vs {
		t := p.ts[i]
		if i == 0 {
			a.tsMin, a.tsMax, a.min, a.max = t, t, v, v
		} else {
			a.tsMin, a.tsMax = min(a.tsMin, t), max(a.tsMax, t)
			a.min, a.max = math.Min(a.min, v), math.Max(a.max, v)
		}
		a.sum += v
	}
	return a
}

// points are the finite-valued points of one run, in row (time) order.
type points struct {
	ts []int64
	vs []float64
}

// Memory the cache accounts for: a run with its summary and the pointer
// to it (its strings are interned per file, or per worker when read from
// an index file), and one point.
const (
	runBytes   = 144
	pointBytes = 16
)

// fileKey identifies one version of an archive file.
type fileKey struct {
	path  string
	size  int64
	mtime time.Time
}

// indexCache keeps the series indexes (and the points read) of recently
// read files, up to a number of bytes; past it, arbitrary files are
// dropped.
type indexCache struct {
	max int64

	mu    sync.Mutex
	files map[fileKey]*seriesIndex
	bytes int64
}

func newIndexCache(max int64) *indexCache {
	return &indexCache{max: max, files: make(map[fileKey]*seriesIndex)}
}

func (c *indexCache) get(k fileKey) *seriesIndex {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.files[k]
}

func (c *indexCache) put(k fileKey, idx *seriesIndex) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.files[k]; ok {
		delete(c.files, k)
		c.bytes -= old.bytes
	}
	idx.bytes = idx.size()
	c.makeRoom(idx.bytes)
	c.files[k] = idx
	c.bytes += idx.bytes
}

// size is the memory the cache accounts for idx: its runs, and the points
// kept with them (an index extended by withPair carries runs already read).
func (idx *seriesIndex) size() int64 {
	n := int64(idx.runs) * runBytes
	for _, g := range idx.groups {
		for _, r := range g.runs {
			if p := r.pts.Load(); p != nil {
				n += int64(len(p.ts)) * pointBytes
			}
		}
	}
	return n
}

// keep records the points read for run of the file k.
func (c *indexCache) keep(k fileKey, run *seriesRun, p *points) {
	n := int64(len(p.ts)) * pointBytes
	c.mu.Lock()
	defer c.mu.Unlock()
	idx, ok := c.files[k]
	if !ok || !run.pts.CompareAndSwap(nil, p) {
		return // the file was dropped meanwhile, or another query kept them
	}
	idx.bytes += n
	c.bytes += n
	if c.bytes > c.max {
		delete(c.files, k)
		c.bytes -= idx.bytes
		c.makeRoom(idx.bytes)
		c.files[k] = idx
		c.bytes += idx.bytes
	}
}

// makeRoom drops files until n more bytes fit; c.mu is held.
func (c *indexCache) makeRoom(n int64) {
	if c.bytes+n <= c.max {
		return
	}
	for other, o := range c.files {
		if c.bytes+n <= c.max {
			return
		}
		delete(c.files, other)
		c.bytes -= o.bytes
	}
}

// span is a run of one key column.
type span struct {
	key        string
	start, end int64
}

// buildIndex reads the source, metric and target columns of every row
// group of pf, a file of size bytes.
func (r *reader) buildIndex(pf *pq.File, cols columns, size int64) (*seriesIndex, error) {
	idx := &seriesIndex{sorted: true}
	intern := make(map[string]string)
	collect := func(cc pq.ColumnChunk, n int64, spans []span) ([]span, error) {
		spans = spans[:0]
		err := r.keyRuns(cc, 0, n, func(key []byte, s, e int64) bool {
			k, ok := intern[string(key)]
			if !ok {
				k = string(key)
				intern[k] = k
			}
			spans = append(spans, span{key: k, start: s, end: e})
			return true
		})
		return spans, err
	}
	md := pf.Metadata()
	for gi, rg := range pf.RowGroups() {
		n := rg.NumRows()
		chunks := rg.ColumnChunks()
		var err error
		if r.spans[0], err = collect(chunks[cols.source], n, r.spans[0]); err != nil {
			return nil, err
		}
		if r.spans[1], err = collect(chunks[cols.metric], n, r.spans[1]); err != nil {
			return nil, err
		}
		if r.spans[2], err = collect(chunks[cols.target], n, r.spans[2]); err != nil {
			return nil, err
		}
		src, met, tgt := r.spans[0], r.spans[1], r.spans[2]
		// Each boundary of a key column ends a run: one slab holds them all.
		slab := make([]seriesRun, 0, len(src)+len(met)+len(tgt))
		i, j, k := 0, 0, 0
		for row := int64(0); row < n; {
			if i == len(src) || j == len(met) || k == len(tgt) {
				return nil, fmt.Errorf("key columns end before row %d of %d", row, n)
			}
			end := min(src[i].end, met[j].end, tgt[k].end)
			slab = append(slab, seriesRun{SeriesKey: SeriesKey{Source: src[i].key, Metric: met[j].key, Target: tgt[k].key}, start: row, end: end})
			row = end
			if src[i].end == end {
				i++
			}
			if met[j].end == end {
				j++
			}
			if tgt[k].end == end {
				k++
			}
		}
		runs := make([]*seriesRun, len(slab))
		for i := range slab {
			runs[i] = &slab[i]
		}
		idx.sorted = idx.sorted && sort.SliceIsSorted(runs, func(a, b int) bool { return compareKeys(runs[a].SeriesKey, runs[b].SeriesKey) < 0 })
		g := indexGroup{runs: runs}
		if lo, hi, ok := bounds(chunks[cols.ts]); ok {
			g.tsMin, g.tsMax, g.hasTs = lo.Int64(), hi.Int64(), true
		}
		var tsOK, valueOK bool
		g.ts, tsOK = chunkRefOf(md, pf.Schema(), gi, cols.ts, pq.Int64, size)
		g.value, valueOK = chunkRefOf(md, pf.Schema(), gi, cols.value, pq.Double, size)
		g.lean = tsOK && valueOK
		idx.groups = append(idx.groups, g)
		idx.runs += len(runs)
	}
	return idx, nil
}

// find returns the runs of one row group that hold source and metric (and
// target, when not empty).
func (idx *seriesIndex) find(group int, source, metric, target string) []*seriesRun {
	runs := idx.groups[group].runs
	if !idx.sorted || idx.pairs != nil {
		// The matching runs are contiguous in a partial index of a sorted
		// file (its runs are added a pair at a time, in row order): they
		// are returned as a slice of runs, a copy only when they are not.
		first, n := -1, 0
		var out []*seriesRun
		for i, r := range runs {
			if r.Source != source || r.Metric != metric || (target != "" && r.Target != target) {
				continue
			}
			switch {
			case first < 0:
				first = i
			case out == nil && i != first+n:
				out = slices.Clone(runs[first : first+n])
			}
			n++
			if out != nil {
				out = append(out, r)
			}
		}
		if out == nil && first >= 0 {
			return runs[first : first+n : first+n]
		}
		return out
	}
	lo := sort.Search(len(runs), func(i int) bool {
		return cmp.Or(cmp.Compare(runs[i].Source, source), cmp.Compare(runs[i].Metric, metric)) >= 0
	})
	hi := lo
	for hi < len(runs) && runs[hi].Source == source && runs[hi].Metric == metric {
		hi++
	}
	if target == "" {
		return runs[lo:hi]
	}
	for i := lo; i < hi; i++ {
		if runs[i].Target == target {
			return runs[i : i+1]
		}
	}
	return nil
}

func compareKeys(a, b SeriesKey) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Target, b.Target))
}
