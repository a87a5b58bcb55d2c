package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"sort"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/internal/pqfile"
	"github.com/reconmon/recon/runtime/sample"
)

// reader reads archive files for one worker, reusing its value buffers.
type reader struct {
	cache *indexCache
	vals  []pq.Value
	found []*seriesRun
	spans [3][]span          // key column runs of buildIndex
	pages pqfile.PageChecker // page headers before the Parquet reader trusts them
	key   []byte             // the current key of keyRuns
	ts    []int64            // timestamps of the rows readPoints and readLean read
	vs    []float64          // values of the rows readLean reads
	file  []byte             // a small file read whole, or the chunks readLean reads
	dec   chunkDecoder
	got   []runPoints  // the runs readLean decoded
	aggs  []*seriesRun // the runs readLean adds as their summaries
	built int          // series indexes built (not from the cache)
	// intern holds the target names read from stored indexes, which
	// repeat from file to file.
	intern map[string]string
	stored storedIndex // the stored index being looked up
}

func newReader(cache *indexCache) *reader {
	return &reader{cache: cache, vals: make([]pq.Value, 1024), intern: make(map[string]string)}
}

// columns are the leaf indexes of the columns a query reads.
type columns struct {
	ts, source, metric, target, value int
}

func lookupColumns(s *pq.Schema) (columns, error) {
	var c columns
	for _, col := range []struct {
		name string
		idx  *int
	}{
		{sample.ColTs, &c.ts}, {sample.ColSource, &c.source}, {sample.ColMetric, &c.metric},
		{sample.ColTarget, &c.target}, {sample.ColValue, &c.value},
	} {
		leaf, ok := s.Lookup(col.name)
		if !ok {
			return c, fmt.Errorf("no %q column", col.name)
		}
		*col.idx = leaf.ColumnIndex
	}
	return c, nil
}

// readFile adds the wanted points of the file at path to acc. When the
// file's index and the wanted runs' points are in the cache, the file is
// not opened. A damaged file is an error naming the file, never a panic.
func (r *reader) readFile(key fileKey, sc *scan, acc *accumulator) (err error) {
	path := key.path
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
	if idx := r.cache.get(key); idx != nil && idx.covers(sc.q.Source, sc.q.Metric) {
		if r.fromMemory(idx, sc, acc) {
			return nil
		}
		done, err := r.readLean(key, idx, sc, acc)
		if err != nil && !errors.Is(err, errLean) {
			return fmt.Errorf("history: read %s: %w", path, err)
		}
		if done {
			return nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	pf, cols, err := r.open(f, key.size)
	if err != nil {
		return fmt.Errorf("history: read %s: %w", path, err)
	}
	if err := r.readParquet(pf, cols, key, sc, acc); err != nil {
		return fmt.Errorf("history: read %s: %w", path, err)
	}
	return nil
}

// fromMemory adds the wanted points of an indexed file from the cache, if
// every wanted run's points are there; otherwise it adds nothing and
// returns false.
func (r *reader) fromMemory(idx *seriesIndex, sc *scan, acc *accumulator) bool {
	r.found = r.found[:0]
	groups := 0
	for g := range idx.groups {
		if !idx.groups[g].overlaps(sc) {
			continue
		}
		groups++
		for _, run := range idx.find(g, sc.q.Source, sc.q.Metric, sc.q.Target) {
			if run.pts.Load() == nil {
				return false
			}
			r.found = append(r.found, run)
		}
	}
	acc.stats.RowGroupsSkipped += len(idx.groups) - groups
	acc.stats.RowGroups += groups
	if len(r.found) > 0 {
		acc.stats.Files++
	} else {
		acc.stats.FilesSkipped++
	}
	for _, run := range r.found {
		acc.addPoints(run.Target, run.pts.Load())
	}
	return true
}

// readLean adds the wanted points of a file whose series index is known,
// reading only the byte range of the ts and value chunks of the row groups
// that hold them, with the lean decoder. It returns false, having added
// nothing, when a chunk needs the Parquet library.
func (r *reader) readLean(key fileKey, idx *seriesIndex, sc *scan, acc *accumulator) (bool, error) {
	type want struct {
		g          int
		runs       []*seriesRun
		start, end int64 // rows of the runs whose points are not in memory
	}
	var wants []want
	r.aggs = r.aggs[:0]
	lo, hi := int64(math.MaxInt64), int64(0)
	groups := 0
	for g := range idx.groups {
		ig := &idx.groups[g]
		if !ig.overlaps(sc) {
			continue
		}
		groups++
		runs := idx.find(g, sc.q.Source, sc.q.Metric, sc.q.Target)
		if len(runs) == 0 {
			continue
		}
		w := want{g: g, start: math.MaxInt64, end: -1}
		for _, run := range runs {
			if run.pts.Load() == nil && sc.aggOK(&run.agg) {
				r.aggs = append(r.aggs, run)
				continue
			}
			w.runs = append(w.runs, run)
			if run.pts.Load() == nil {
				w.start, w.end = min(w.start, run.start), max(w.end, run.end)
			}
		}
		if w.end >= 0 {
			if !ig.lean {
				return false, nil
			}
			lo = min(lo, ig.ts.offset, ig.value.offset)
			hi = max(hi, ig.ts.end(), ig.value.end())
		}
		wants = append(wants, w)
	}
	var buf []byte
	if hi > lo {
		if hi > key.size {
			return false, fmt.Errorf("column chunks end at %d, past the file's %d bytes", hi, key.size)
		}
		buf = r.chunkBuf(hi - lo)
		if err := readAt(key.path, buf, lo); err != nil {
			return false, err
		}
	}
	// Everything is decoded before anything is added, so that a chunk the
	// lean decoder cannot read leaves acc as it was for the fallback.
	r.got = r.got[:0]
	var decoded int64
	for _, w := range wants {
		ig := &idx.groups[w.g]
		if w.end >= 0 {
			var err error
			if r.ts, err = r.dec.int64s(buf[ig.ts.offset-lo:ig.ts.end()-lo], ig.ts, w.start, w.end, r.ts[:0]); err != nil {
				return false, fmt.Errorf("row group %d ts: %w", w.g, err)
			}
			if r.vs, err = r.dec.float64s(buf[ig.value.offset-lo:ig.value.end()-lo], ig.value, w.start, w.end, r.vs[:0]); err != nil {
				return false, fmt.Errorf("row group %d value: %w", w.g, err)
			}
			decoded += w.end - w.start
		}
		for _, run := range w.runs {
			p := run.pts.Load()
			if p == nil {
				p = leanPoints(r.ts[run.start-w.start:run.end-w.start], r.vs[run.start-w.start:run.end-w.start])
			}
			r.got = append(r.got, runPoints{run, p})
		}
	}
	acc.stats.RowGroupsSkipped += len(idx.groups) - groups
	acc.stats.RowGroups += groups
	acc.stats.RowsDecoded += decoded
	for _, run := range r.aggs {
		acc.addAgg(run)
	}
	if len(wants) > 0 {
		acc.stats.Files++
	} else {
		acc.stats.FilesSkipped++
	}
	for _, g := range r.got {
		if g.run.pts.Load() == nil {
			r.cache.keep(key, g.run, g.p)
		}
		acc.addPoints(g.run.Target, g.p)
	}
	return true, nil
}

// aggregate computes the summary of every run of a newly indexed file,
// reading its ts and value chunks whole with the lean decoder.
func (r *reader) aggregate(key fileKey, idx *seriesIndex) error {
	f, err := os.Open(key.path)
	if err != nil {
		return err
	}
	defer f.Close()
	for g := range idx.groups {
		ig := &idx.groups[g]
		if !ig.lean {
			return errLean
		}
		if len(ig.runs) == 0 {
			continue
		}
		rows := ig.runs[len(ig.runs)-1].end
		lo, hi := min(ig.ts.offset, ig.value.offset), max(ig.ts.end(), ig.value.end())
		if hi > key.size {
			return fmt.Errorf("column chunks end at %d, past the file's %d bytes", hi, key.size)
		}
		buf := r.chunkBuf(hi - lo)
		if _, err := f.ReadAt(buf, lo); err != nil {
			return err
		}
		if r.ts, err = r.dec.int64s(buf[ig.ts.offset-lo:ig.ts.end()-lo], ig.ts, 0, rows, r.ts[:0]); err != nil {
			return fmt.Errorf("row group %d ts: %w", g, err)
		}
		if r.vs, err = r.dec.float64s(buf[ig.value.offset-lo:ig.value.end()-lo], ig.value, 0, rows, r.vs[:0]); err != nil {
			return fmt.Errorf("row group %d value: %w", g, err)
		}
		for _, run := range ig.runs {
			run.agg = aggOf(leanPoints(r.ts[run.start:run.end], r.vs[run.start:run.end]))
		}
	}
	return nil
}

// chunkBuf returns n (> 0) bytes of the reader's chunk buffer, grown to a
// power of two: a query's chunks (tens of KB, a few MB in dense hours)
// reallocate it a few times at most.
func (r *reader) chunkBuf(n int64) []byte {
	if int64(cap(r.file)) < n {
		r.file = make([]byte, pow2(n))
	}
	return r.file[:n]
}

// pow2 is the smallest power of two not below n (> 0).
func pow2(n int64) int64 { return 1 << bits.Len64(uint64(n-1)) }

// runPoints are the points of one run that readLean decoded.
type runPoints struct {
	run *seriesRun
	p   *points
}

// leanPoints keeps the rows of one run with a finite value, in time order.
func leanPoints(ts []int64, vs []float64) *points {
	p := &points{ts: make([]int64, 0, len(ts)), vs: make([]float64, 0, len(ts))}
	for i, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			p.ts = append(p.ts, ts[i])
			p.vs = append(p.vs, v)
		}
	}
	if !slices.IsSorted(p.ts) {
		sortPointsByTime(p) // not written by the archiver
	}
	return p
}

func (g *indexGroup) overlaps(sc *scan) bool {
	return !g.hasTs || (g.tsMax >= sc.from && g.tsMin < sc.to)
}

// wholeFile is the size up to which a file is read in one system call
// rather than in many small reads as its pages are needed.
const wholeFile = 1 << 20

// open opens a Parquet file and checks the page headers of the columns a
// query reads. Small files (most hour files) are read whole into a buffer
// the reader reuses; nothing read from them outlives the query of the
// file.
func (r *reader) open(f *os.File, size int64) (*pq.File, columns, error) {
	opts := []pq.FileOption{pq.SkipBloomFilters(true), pq.SkipPageIndex(true)}
	var ra io.ReaderAt = f
	if size > wholeFile {
		opts = append(opts, pq.ReadBufferSize(64<<10))
	} else {
		if int64(cap(r.file)) < size {
			r.file = make([]byte, wholeFile)
		}
		buf := r.file[:size]
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, columns{}, err
		}
		ra = bytes.NewReader(buf)
	}
	if err := checkFooter(ra, size); err != nil {
		return nil, columns{}, err
	}
	pf, err := pqfile.Open(ra, size, opts...)
	if err != nil {
		return nil, columns{}, err
	}
	cols, err := lookupColumns(pf.Schema())
	if err != nil {
		return nil, columns{}, err
	}
	if err := r.pages.CheckPages(ra, size, pf.Metadata(), cols.leaves(), flatLeaves); err != nil {
		return nil, columns{}, err
	}
	return pf, cols, nil
}

// readParquet adds the wanted points of an open file to acc, keeping what
// it reads in the cache.
func (r *reader) readParquet(pf *pq.File, cols columns, key fileKey, sc *scan, acc *accumulator) error {
	may := false
	for _, rg := range pf.RowGroups() {
		if rg.NumRows() > 0 && r.mayHold(rg, cols, sc) {
			may = true
			break
		}
	}
	if !may {
		acc.stats.RowGroupsSkipped += len(pf.RowGroups())
		acc.stats.FilesSkipped++
		return nil
	}
	idx, err := r.index(pf, key, cols)
	if err != nil {
		return err
	}
	if done, err := r.readLean(key, idx, sc, acc); done || (err != nil && !errors.Is(err, errLean)) {
		return err
	}
	read := false
	for g, rg := range pf.RowGroups() {
		if rg.NumRows() == 0 || !r.mayHold(rg, cols, sc) {
			acc.stats.RowGroupsSkipped++
			continue
		}
		acc.stats.RowGroups++
		read = true
		for _, run := range idx.find(g, sc.q.Source, sc.q.Metric, sc.q.Target) {
			p := run.pts.Load()
			if p == nil {
				if p, err = r.readRun(rg, run, cols); err != nil {
					return err
				}
				acc.stats.RowsDecoded += run.end - run.start
				r.cache.keep(key, run, p)
			}
			acc.addPoints(run.Target, p)
		}
	}
	if read {
		acc.stats.Files++
	} else {
		acc.stats.FilesSkipped++
	}
	return nil
}

// mayHold reports whether the row group's statistics allow rows of the
// wanted series within the time range. Missing statistics never exclude.
func (r *reader) mayHold(rg pq.RowGroup, cols columns, sc *scan) bool {
	chunks := rg.ColumnChunks()
	if lo, hi, ok := bounds(chunks[cols.ts]); ok {
		if hi.Int64() < sc.from || lo.Int64() >= sc.to {
			return false
		}
	}
	for _, k := range []struct {
		col  int
		want string
	}{{cols.source, sc.q.Source}, {cols.metric, sc.q.Metric}, {cols.target, sc.q.Target}} {
		if k.want == "" {
			continue
		}
		if lo, hi, ok := bounds(chunks[k.col]); ok {
			w := []byte(k.want)
			if bytes.Compare(w, lo.ByteArray()) < 0 || bytes.Compare(w, hi.ByteArray()) > 0 {
				return false
			}
		}
	}
	return true
}

// bounds returns a column chunk's min and max from the file's statistics.
func bounds(cc pq.ColumnChunk) (lo, hi pq.Value, ok bool) {
	fc, isFile := cc.(*pq.FileColumnChunk)
	if !isFile {
		return lo, hi, false
	}
	return fc.Bounds()
}

// index returns the file's series index, from the cache or built now.
func (r *reader) index(pf *pq.File, key fileKey, cols columns) (*seriesIndex, error) {
	if idx := r.cache.get(key); idx != nil && idx.pairs == nil && len(idx.groups) == len(pf.RowGroups()) {
		return idx, nil
	}
	idx, err := r.buildIndex(pf, cols, key.size)
	if err != nil {
		return nil, err
	}
	if err := r.aggregate(key, idx); err != nil && !errors.Is(err, errLean) {
		return nil, err
	}
	r.built++
	r.cache.put(key, idx)
	return idx, nil
}

// scanColumn calls visit with every value of rows [start, end) of a
// required, non-repeated column chunk, in row order, stopping early when
// visit returns false.
func (r *reader) scanColumn(cc pq.ColumnChunk, start, end int64, visit func(row int64, v pq.Value) bool) error {
	pages := cc.Pages()
	defer pages.Close()
	if err := pages.SeekToRow(start); err != nil {
		return fmt.Errorf("column %d: seek to row %d: %w", cc.Column(), start, err)
	}
	row := start
	for row < end {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("column %d: rows end at %d, before %d", cc.Column(), row, end)
		}
		if err != nil {
			return fmt.Errorf("column %d: %w", cc.Column(), err)
		}
		stop, err := r.scanPage(page, &row, end, visit)
		pq.Release(page)
		if err != nil {
			return fmt.Errorf("column %d: %w", cc.Column(), err)
		}
		if stop {
			return nil
		}
	}
	return nil
}

func (r *reader) scanPage(page pq.Page, row *int64, end int64, visit func(int64, pq.Value) bool) (stop bool, err error) {
	values := page.Values()
	for *row < end {
		n, err := values.ReadValues(r.vals)
		for _, v := range r.vals[:n] {
			if *row >= end {
				return true, nil
			}
			if !visit(*row, v) {
				return true, nil
			}
			*row++
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, errors.New("page reader made no progress")
		}
	}
	return true, nil
}

// keyRuns calls visit with each run of equal values of the string column
// cc over rows [start, end), in row order, stopping early when visit
// returns false. Dictionary-encoded pages (the archive's string columns)
// are walked as dictionary indexes, without decoding a value per row.
func (r *reader) keyRuns(cc pq.ColumnChunk, start, end int64, visit func(key []byte, s, e int64) bool) error {
	pages := cc.Pages()
	defer pages.Close()
	if err := pages.SeekToRow(start); err != nil {
		return fmt.Errorf("column %d: seek to row %d: %w", cc.Column(), start, err)
	}
	r.key = r.key[:0]
	runStart := int64(-1)
	stopped := false
	// next starts a run of key at row; it ends the previous run there.
	next := func(key []byte, row int64) {
		if runStart >= 0 && bytes.Equal(key, r.key) {
			return
		}
		if runStart >= 0 && !visit(r.key, runStart, row) {
			stopped = true
			return
		}
		r.key = append(r.key[:0], key...)
		runStart = row
	}
	row := start
	for row < end && !stopped {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("column %d: rows end at %d, before %d", cc.Column(), row, end)
		}
		if err != nil {
			return fmt.Errorf("column %d: %w", cc.Column(), err)
		}
		n := min(page.NumRows(), end-row)
		data := page.Data()
		if dict := page.Dictionary(); dict != nil && page.NumNulls() == 0 && int64(len(data.Int32())) >= n {
			last := int32(-1)
			for i, k := range data.Int32()[:n] {
				if k == last {
					continue
				}
				if k < 0 || int(k) >= dict.Len() {
					pq.Release(page)
					return fmt.Errorf("column %d: dictionary index %d out of range", cc.Column(), k)
				}
				last = k
				next(dict.Index(k).ByteArray(), row+int64(i))
				if stopped {
					break
				}
			}
			row += n
		} else {
			_, err = r.scanPage(page, &row, row+n, func(at int64, v pq.Value) bool {
				next(v.ByteArray(), at)
				return !stopped
			})
		}
		pq.Release(page)
		if err != nil {
			return fmt.Errorf("column %d: %w", cc.Column(), err)
		}
	}
	if !stopped && runStart >= 0 {
		visit(r.key, runStart, row)
	}
	return nil
}

// readRun reads the points of one run: ts and value of its rows, keeping
// the rows with a finite value.
func (r *reader) readRun(rg pq.RowGroup, run *seriesRun, cols columns) (*points, error) {
	chunks := rg.ColumnChunks()
	r.ts = r.ts[:0]
	err := r.scanColumn(chunks[cols.ts], run.start, run.end, func(_ int64, v pq.Value) bool {
		r.ts = append(r.ts, v.Int64())
		return true
	})
	if err != nil {
		return nil, err
	}
	n := run.end - run.start
	p := &points{ts: make([]int64, 0, n), vs: make([]float64, 0, n)}
	err = r.scanColumn(chunks[cols.value], run.start, run.end, func(row int64, v pq.Value) bool {
		if v.IsNull() {
			return true
		}
		if f := v.Double(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			p.ts = append(p.ts, r.ts[row-run.start])
			p.vs = append(p.vs, f)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if !slices.IsSorted(p.ts) {
		sortPointsByTime(p) // not written by the archiver
	}
	return p, nil
}

func sortPointsByTime(p *points) {
	idx := make([]int, len(p.ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p.ts[idx[a]] < p.ts[idx[b]] })
	ts, vs := make([]int64, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		ts[i], vs[i] = p.ts[j], p.vs[j]
	}
	p.ts, p.vs = ts, vs
}
