package parquet

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Bounds on the rows a merge holds in Arrow batches: each input is read
// mergeRows/k rows at a time (k inputs), but at least minInputRows and at
// most maxInputRows. Batches of a few thousand rows cost no more CPU per
// row than larger ones.
const (
	mergeRows    = 64 << 10
	minInputRows = 512
	maxInputRows = 16 << 10
)

// merger merges archive files, each sorted by its table's order (hour,
// series key, time), into that order, reading every file column by column
// a bounded number of rows at a time. Rows that compare equal come in input
// order, then in their order within their input: the order of a stable sort
// of the inputs' rows taken one input after the other. It digests every
// row it reads from the columns, per input that has a row digest to be
// checked against.
type merger struct {
	l         *layout
	inputs    []*mergeInput // every input, in input order
	heap      []*mergeInput // the inputs with rows left, least next row first
	batches   []arrow.RecordBatch
	refs      []rowRef
	keep      []bool // scratch of release
	batchRows int
}

// mergeInput is one input file of a merge and the batch of it being merged.
type mergeInput struct {
	idx    int
	path   string
	file   *os.File
	rd     *batchReader
	orig   int    // index of the input's row digest, or -1 for none
	digest digest // of the rows read, from the columns, if orig >= 0

	rec  arrow.RecordBatch // the batch being merged; nil when none is left
	slot int               // its index in merger.batches
	row  int               // its next row
	n    int               // its rows
	ts   []arrow.Timestamp
	keys []stringColumn
}

// newMerger opens the files at paths for a merge; orig[i] is the index of
// input i's row digest (see checkDigests), or -1 for an input whose rows
// need no digest. The caller must close it.
func newMerger(l *layout, paths []string, orig []int) (*merger, error) {
	m := &merger{l: l, batchRows: min(max(mergeRows/max(len(paths), 1), minInputRows), maxInputRows)}
	mem := memory.NewGoAllocator()
	for i, p := range paths {
		in := &mergeInput{idx: i, path: p, rd: newBatchReader(l, mem), orig: orig[i]}
		m.inputs = append(m.inputs, in)
		if err := in.open(); err != nil {
			m.close()
			return nil, err
		}
		if err := m.load(in, -1); err != nil {
			m.close()
			return nil, err
		}
		if in.rec != nil {
			m.heap = append(m.heap, in)
			m.up(len(m.heap) - 1)
		}
	}
	return m, nil
}

func (in *mergeInput) open() error {
	f, err := os.Open(in.path)
	if err != nil {
		return err
	}
	in.file = f
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := in.rd.open(f, fi.Size()); err != nil {
		return fmt.Errorf("read %s: %w", in.path, err)
	}
	return nil
}

// close releases every batch and closes every input.
func (m *merger) close() {
	for _, b := range m.batches {
		b.Release()
	}
	m.batches = nil
	for _, in := range m.inputs {
		in.rd.release()
		if in.file != nil {
			_ = in.file.Close() // read-only
		}
	}
	m.inputs, m.heap = nil, nil
}

// release releases the batches of the last chunk that no input merges any
// more, and numbers the others afresh.
func (m *merger) release() {
	m.keep = slices.Grow(m.keep[:0], len(m.batches))[:len(m.batches)]
	clear(m.keep)
	for _, in := range m.heap {
		m.keep[in.slot] = true
	}
	for i, b := range m.batches {
		if !m.keep[i] {
			b.Release()
		}
	}
	m.batches = m.batches[:0]
	for _, in := range m.heap {
		in.slot = len(m.batches)
		m.batches = append(m.batches, in.rec)
	}
}

// done reports whether every row was merged.
func (m *merger) done() bool { return len(m.heap) == 0 }

// next returns the next rows of the merge, up to max of them: refs into
// batches, both valid until the next call. No rows means the merge is done.
func (m *merger) next(max int) ([]arrow.RecordBatch, []rowRef, error) {
	m.release()
	m.refs = m.refs[:0]
	for len(m.refs) < max && len(m.heap) > 0 {
		top := m.heap[0]
		var second *mergeInput
		switch {
		case len(m.heap) == 2:
			second = m.heap[1]
		case len(m.heap) > 2:
			second = m.heap[1]
			if m.less(m.heap[2], second) {
				second = m.heap[2]
			}
		}
		// Take top's rows up to second's next row.
		for top.row < top.n && len(m.refs) < max {
			if second != nil && m.less(second, top) {
				break
			}
			m.refs = append(m.refs, rowRef(uint64(top.slot)<<32|uint64(top.row)))
			top.row++
			if top.row < top.n && compareRows(top.keys, top.ts, top.row-1, top.keys, top.ts, top.row, m.l.timeMul) > 0 {
				return nil, nil, fmt.Errorf("%s: row %d is out of the table's sort order: not compacted", top.path, top.rd.rows-int64(top.n-top.row))
			}
		}
		if top.row == top.n {
			if err := m.load(top, top.n-1); err != nil {
				return nil, nil, err
			}
			if top.rec == nil {
				m.pop()
				continue
			}
		}
		m.down(0)
	}
	return m.batches, m.refs, nil
}

// load reads in's next batch into in.rec (nil at the end of the file); last
// is the last row of the batch it replaces (-1 for none), which the new
// batch's first row must not sort before. The replaced batch stays in
// m.batches until the next call of next.
func (m *merger) load(in *mergeInput, last int) error {
	prev, prevKeys, prevTs := in.rec, in.keys, in.ts
	in.rec = nil
	rec, err := in.rd.next(m.batchRows)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", in.path, err)
	}
	if in.orig >= 0 {
		in.digest.addBatch(m.l, rec)
	}
	in.rec, in.slot, in.row, in.n = rec, len(m.batches), 0, int(rec.NumRows())
	m.batches = append(m.batches, rec)
	in.ts = rec.Column(m.l.timeIdx).(*array.Timestamp).Values()
	in.keys = in.keys[:0:0]
	for _, c := range m.l.keyIdx {
		in.keys = append(in.keys, rec.Column(c).(stringColumn))
	}
	if prev != nil && in.n > 0 && compareRows(prevKeys, prevTs, last, in.keys, in.ts, 0, m.l.timeMul) > 0 {
		return fmt.Errorf("%s: row %d is out of the table's sort order: not compacted", in.path, in.rd.rows-int64(in.n))
	}
	return nil
}

// checkDigests checks, once every row was merged, that the column
// reader's digest of each input equals its row reader's, rowDigests[orig].
func (m *merger) checkDigests(rowDigests []digest) error {
	for _, in := range m.inputs {
		if in.orig >= 0 && !in.digest.equal(&rowDigests[in.orig]) {
			return fmt.Errorf("%s: the column reader read %s, the row reader %s: not compacted", in.path, &in.digest, &rowDigests[in.orig])
		}
	}
	return nil
}

// less reports whether a's next row comes before b's.
func (m *merger) less(a, b *mergeInput) bool {
	if c := compareRows(a.keys, a.ts, a.row, b.keys, b.ts, b.row, m.l.timeMul); c != 0 {
		return c < 0
	}
	return a.idx < b.idx
}

// compareRows compares row i of one batch with row j of another by the
// table's sort order: hour, series key, time.
func compareRows(ki []stringColumn, tsi []arrow.Timestamp, i int, kj []stringColumn, tsj []arrow.Timestamp, j int, timeMul int64) int {
	ti, tj := int64(tsi[i]), int64(tsj[j])
	if c := cmp.Compare(floorDiv(ti*timeMul, nsPerHour), floorDiv(tj*timeMul, nsPerHour)); c != 0 {
		return c
	}
	for k := range ki {
		if c := strings.Compare(ki[k].Value(i), kj[k].Value(j)); c != 0 {
			return c
		}
	}
	return cmp.Compare(ti, tj)
}

func (m *merger) pop() {
	last := len(m.heap) - 1
	m.heap[0] = m.heap[last]
	m.heap[last] = nil
	m.heap = m.heap[:last]
	if last > 0 {
		m.down(0)
	}
}

func (m *merger) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !m.less(m.heap[i], m.heap[p]) {
			return
		}
		m.heap[i], m.heap[p] = m.heap[p], m.heap[i]
		i = p
	}
}

func (m *merger) down(i int) {
	h := m.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && m.less(h[c+1], h[c]) {
			c++
		}
		if !m.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
