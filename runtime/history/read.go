package history

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/runtime/sample"
)

// reader reads archive files for one worker, reusing its value buffers.
type reader struct {
	cache *indexCache
	vals  []pq.Value
	found []*seriesRun
	spans [3][]span     // key column runs of buildIndex
	br    *bufio.Reader // page headers of checkChunks
	key   []byte        // the current key of keyRuns
	ts    []int64       // timestamps of the rows readPoints reads
	file  []byte        // a small file read whole
}

func newReader(cache *indexCache) *reader {
	return &reader{cache: cache, vals: make([]pq.Value, 1024)}
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
	if idx := r.cache.get(key); idx != nil && r.fromMemory(idx, sc, acc) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
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
	pf, err := pq.OpenFile(ra, size, opts...)
	if err != nil {
		return nil, columns{}, err
	}
	cols, err := lookupColumns(pf.Schema())
	if err != nil {
		return nil, columns{}, err
	}
	if err := r.checkChunks(ra, size, pf.Metadata(), cols.leaves()); err != nil {
		return nil, columns{}, err
	}
	return pf, cols, nil
}

// readParquet adds the wanted points of an open file to acc, keeping what
// it reads in the cache.
func (r *reader) readParquet(pf *pq.File, cols columns, key fileKey, sc *scan, acc *accumulator) error {
	var idx *seriesIndex
	var err error
	read := false
	for g, rg := range pf.RowGroups() {
		if rg.NumRows() == 0 || !r.mayHold(rg, cols, sc) {
			acc.stats.RowGroupsSkipped++
			continue
		}
		if idx == nil {
			if idx, err = r.index(pf, key, cols); err != nil {
				return err
			}
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
	if idx := r.cache.get(key); idx != nil && len(idx.groups) == len(pf.RowGroups()) {
		return idx, nil
	}
	idx, err := r.buildIndex(pf, cols)
	if err != nil {
		return nil, err
	}
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
