package history

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/runtime/sample"
)

// reader reads archive files for one worker, reusing its value buffers.
type reader struct {
	vals  []pq.Value
	vals2 []pq.Value
	runs  []run
}

// run is a stretch of rows [start, end) of one row group that belong to one
// target of the wanted series.
type run struct {
	start, end int64
	target     string
}

func newReader() *reader {
	return &reader{vals: make([]pq.Value, 1024), vals2: make([]pq.Value, 1024)}
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

// readFile adds the wanted points of the file at path to acc. A damaged
// file is an error naming the file, never a panic.
func (r *reader) readFile(path string, sc *scan, acc *accumulator) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
	pf, err := pq.OpenFile(f, fi.Size(), pq.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("history: read %s: %w", path, err)
	}
	if err := r.readParquet(pf, sc, acc); err != nil {
		return fmt.Errorf("history: read %s: %w", path, err)
	}
	return nil
}

// readParquet adds the wanted points of an open file to acc.
func (r *reader) readParquet(pf *pq.File, sc *scan, acc *accumulator) error {
	cols, err := lookupColumns(pf.Schema())
	if err != nil {
		return err
	}
	groups := pf.RowGroups()
	read := false
	for _, rg := range groups {
		if rg.NumRows() == 0 || !r.mayHold(rg, cols, sc) {
			acc.stats.RowGroupsSkipped++
			continue
		}
		acc.stats.RowGroups++
		read = true
		if err := r.readRowGroup(rg, cols, sc, acc); err != nil {
			return err
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

// readRowGroup finds the rows of the wanted series (contiguous, since rows
// are sorted by source, metric, target, ts), then reads ts and value for
// those rows only.
func (r *reader) readRowGroup(rg pq.RowGroup, cols columns, sc *scan, acc *accumulator) error {
	chunks := rg.ColumnChunks()
	start, end, err := r.matchRange(chunks[cols.source], 0, rg.NumRows(), sc.q.Source)
	if err != nil || start == end {
		return err
	}
	start, end, err = r.matchRange(chunks[cols.metric], start, end, sc.q.Metric)
	if err != nil || start == end {
		return err
	}
	if err := r.targetRuns(chunks[cols.target], start, end, sc.q.Target); err != nil {
		return err
	}
	if len(r.runs) == 0 {
		return nil
	}
	start, end = r.runs[0].start, r.runs[len(r.runs)-1].end
	acc.stats.RowsDecoded += end - start
	return r.readPoints(chunks[cols.ts], chunks[cols.value], start, end, acc)
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

// matchRange narrows [start, end) to the rows whose value in the string
// column cc equals want. Within the range the column is sorted, so the
// matching rows are contiguous.
func (r *reader) matchRange(cc pq.ColumnChunk, start, end int64, want string) (int64, int64, error) {
	w := []byte(want)
	lo, hi := int64(-1), int64(-1)
	err := r.scanColumn(cc, start, end, func(row int64, v pq.Value) bool {
		c := bytes.Compare(v.ByteArray(), w)
		if c == 0 {
			if lo < 0 {
				lo = row
			}
			hi = row + 1
			return true
		}
		return c < 0 // past the wanted key: done
	})
	if err != nil || lo < 0 {
		return 0, 0, err
	}
	return lo, hi, nil
}

// targetRuns splits [start, end) into runs of one target each, keeping
// only want when it is set.
func (r *reader) targetRuns(cc pq.ColumnChunk, start, end int64, want string) error {
	r.runs = r.runs[:0]
	return r.scanColumn(cc, start, end, func(row int64, v pq.Value) bool {
		b := v.ByteArray()
		if want != "" && string(b) != want {
			return true
		}
		if n := len(r.runs); n > 0 && r.runs[n-1].end == row && r.runs[n-1].target == string(b) {
			r.runs[n-1].end = row + 1
			return true
		}
		r.runs = append(r.runs, run{start: row, end: row + 1, target: string(b)})
		return true
	})
}

// readPoints reads ts and value for rows [start, end) together and adds
// the points of r.runs that fall in the time range and have a finite value.
func (r *reader) readPoints(tsCC, valCC pq.ColumnChunk, start, end int64, acc *accumulator) error {
	ts := make([]int64, 0, end-start)
	err := r.scanColumn(tsCC, start, end, func(_ int64, v pq.Value) bool {
		ts = append(ts, v.Int64())
		return true
	})
	if err != nil {
		return err
	}
	ri := 0
	var tgt *target
	sc := acc.sc
	return r.scanColumn(valCC, start, end, func(row int64, v pq.Value) bool {
		for ri < len(r.runs) && row >= r.runs[ri].end {
			ri++
			tgt = nil
		}
		if ri == len(r.runs) {
			return false
		}
		if row < r.runs[ri].start || v.IsNull() {
			return true
		}
		t := ts[row-start]
		if t < sc.from || t >= sc.to {
			return true
		}
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return true
		}
		if tgt == nil {
			tgt = acc.target(r.runs[ri].target)
		}
		acc.add(tgt, t, f)
		return true
	})
}
