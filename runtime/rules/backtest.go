package rules

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
	"github.com/reconmon/recon/internal/pqfile"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/sample"
)

// BacktestOptions configure a replay of archived samples.
type BacktestOptions struct {
	Plan *plan.Plan
	// Archive is the archive root (ARCHIVE/samples/date=…/hour=…/*.parquet).
	Archive string
	// From and To bound the replayed event times: [From, To).
	From, To time.Time
	Logger   *slog.Logger
}

// BacktestResult is what a replay found.
type BacktestResult struct {
	Events []alert.Event
	Stats  []Stats
	// Samples read from the archive within [From, To); Files and RowGroups
	// read (others were skipped by their partition or statistics).
	Samples, Files, RowGroups int64
}

// Backtest replays the archived samples of [From, To) through the plan's
// rules at event time, hour partition by hour partition, and returns the
// alert transitions. It reads Parquet directly, skipping partitions and row
// groups whose time statistics lie outside the range.
func Backtest(ctx context.Context, opts BacktestOptions) (*BacktestResult, error) {
	if !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("backtest: --from %s is not before --to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	e, err := New(Options{Plan: opts.Plan, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	hours, err := archiveHours(filepath.Join(opts.Archive, "samples"), opts.From, opts.To)
	if err != nil {
		return nil, err
	}
	rd := newArchiveReader(neededColumns(opts.Plan), rowFilters(opts.Plan), opts.From.UnixNano(), opts.To.UnixNano())
	res := &BacktestResult{}
	// One goroutine decodes Parquet while this one runs the engine; an hour
	// partition ends with a nil record.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs := make(chan arrow.RecordBatch, 4)
	decodeErr := make(chan error, 1)
	go func() {
		defer close(recs)
		emit := func(rec arrow.RecordBatch) error {
			select {
			case recs <- rec:
				return nil
			case <-ctx.Done():
				rec.Release()
				return ctx.Err()
			}
		}
		for _, h := range hours {
			for _, path := range h.files {
				if err := rd.readFile(path, emit); err != nil {
					decodeErr <- fmt.Errorf("backtest: %s: %w", path, err)
					return
				}
			}
			select {
			case recs <- nil:
			case <-ctx.Done():
				return
			}
		}
		decodeErr <- nil
	}()
	e.freeze()
	for rec := range recs {
		if rec == nil {
			// End of an hour partition: evaluate what it closed.
			e.thaw()
			res.Events = append(res.Events, e.Eval(time.Time{})...)
			e.freeze()
			continue
		}
		err := e.Ingest(rec)
		rec.Release()
		if err != nil {
			cancel()
			for r := range recs {
				if r != nil {
					r.Release()
				}
			}
			return nil, err
		}
	}
	e.thaw()
	if err := <-decodeErr; err != nil {
		return nil, err
	}
	res.Events = append(res.Events, e.Eval(opts.To)...)
	res.Stats = e.Stats()
	res.Samples, res.Files, res.RowGroups = rd.samples, rd.files, rd.rowGroups
	return res, nil
}

// freeze makes the late check of every rule use its current watermark
// until thaw: an hour partition's files are sorted by series, not by time,
// so within the hour rows arrive out of order but never behind the
// previous hour.
func (e *Engine) freeze() {
	for _, r := range e.rules {
		r.frozen = r.watermark()
		if r.frozen == none {
			r.frozen = math.MinInt64 + 1
		}
	}
}

func (e *Engine) thaw() {
	for _, r := range e.rules {
		r.frozen = none
	}
}

type hourPart struct {
	start int64
	files []string
}

// archiveHours lists the hour partitions overlapping [from, to), in time
// order, each with its Parquet files.
func archiveHours(root string, from, to time.Time) ([]hourPart, error) {
	days, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("backtest: archive: %w", err)
	}
	var out []hourPart
	for _, d := range days {
		date, ok := strings.CutPrefix(d.Name(), "date=")
		if !d.IsDir() || !ok {
			continue
		}
		day, err := time.Parse("2006-01-02", date)
		if err != nil || !day.Before(to) || !day.Add(24*time.Hour).After(from) {
			continue
		}
		hours, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("backtest: archive: %w", err)
		}
		for _, h := range hours {
			hh, ok := strings.CutPrefix(h.Name(), "hour=")
			if !h.IsDir() || !ok {
				continue
			}
			t, err := time.Parse("2006-01-02 15", date+" "+hh)
			if err != nil || !t.Before(to) || !t.Add(time.Hour).After(from) {
				continue
			}
			files, err := filepath.Glob(filepath.Join(root, d.Name(), h.Name(), "*.parquet"))
			if err != nil {
				return nil, err
			}
			sort.Strings(files)
			out = append(out, hourPart{start: t.UnixNano(), files: files})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}

// neededColumns lists the sample columns the plan's rules read besides ts,
// source and module (which routing always reads).
func neededColumns(p *plan.Plan) map[string]bool {
	need := map[string]bool{}
	var walk func(e *plan.Expr)
	walk = func(e *plan.Expr) {
		if e == nil {
			return
		}
		switch e.Op {
		case "col":
			need[e.Name] = true
		case "label":
			need[sample.ColLabels] = true
		}
		for _, a := range e.Args {
			walk(a)
		}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		walk(r.Where)
		walk(r.Clear)
		for k := range r.GroupBy {
			walk(&r.GroupBy[k])
		}
		for _, c := range r.Clauses {
			walk(c.When)
			if c.Pattern != nil {
				walk(c.Pattern.First)
				walk(c.Pattern.Then)
			}
		}
	}
	return need
}

// rowFilter is a string column whose value alone can rule a row out: every
// rule requires one of want (by its routing or a `col == "literal"`
// conjunct of its where), so a row with another value (or null) is read by
// no rule and is dropped before its other columns are decoded.
type rowFilter struct {
	col  string
	want map[string]bool
}

// rowFilters derives the plan's row filters. They are conservative: a
// column gets one only when every rule constrains it.
func rowFilters(p *plan.Plan) []rowFilter {
	if len(p.Rules) == 0 {
		return nil
	}
	sources, modules := map[string]bool{}, map[string]bool{}
	bySources, byModules := true, true
	eq := map[string]map[string]bool{} // column → the literals rules require; only columns every rule constrains
	for i := range p.Rules {
		r := &p.Rules[i]
		for _, f := range r.From {
			switch {
			case f == "*":
				bySources, byModules = false, false
			case len(f) > len("module:") && strings.HasPrefix(f, "module:"):
				bySources = false
				modules[strings.TrimPrefix(f, "module:")] = true
			default:
				byModules = false
				sources[f] = true
			}
		}
		lits := map[string]string{}
		whereEqualities(r.Where, lits)
		if i == 0 {
			for col, lit := range lits {
				eq[col] = map[string]bool{lit: true}
			}
			continue
		}
		for col, m := range eq {
			lit, ok := lits[col]
			if !ok {
				delete(eq, col) // this rule reads any value
				continue
			}
			m[lit] = true
		}
	}
	var out []rowFilter
	if bySources {
		out = append(out, rowFilter{col: sample.ColSource, want: sources})
	} else if byModules {
		out = append(out, rowFilter{col: sample.ColModule, want: modules})
	}
	cols := make([]string, 0, len(eq))
	for col := range eq {
		cols = append(cols, col)
	}
	sort.Strings(cols)
	for _, col := range cols {
		out = append(out, rowFilter{col: col, want: eq[col]})
	}
	return out
}

// whereEqualities collects the `col == "literal"` conjuncts of a where
// condition (top-level `and` only) by column.
func whereEqualities(e *plan.Expr, out map[string]string) {
	if e == nil {
		return
	}
	switch e.Op {
	case "and":
		for _, a := range e.Args {
			whereEqualities(a, out)
		}
	case "==":
		if len(e.Args) != 2 {
			return
		}
		c, l := e.Args[0], e.Args[1]
		if c.Op == "str" {
			c, l = l, c
		}
		if c.Op == "col" && l.Op == "str" && stringCols[c.Name] != nil {
			out[c.Name] = l.Str
		}
	}
}

// archiveReader turns archive row groups into sample.Schema records. Each
// record gets fresh buffers, so records may outlive the next read; columns
// no rule reads share one immutable buffer of zeros.
type archiveReader struct {
	need     map[string]bool
	filters  []rowFilter
	from, to int64
	vals     []pq.Value
	keep     []bool // per row of the row group: in range and wanted
	all      bool   // every row of the row group is kept
	tsAll    []int64
	dictOK   []bool
	zeros    []byte
	pool     bufferPool
	width    map[string]int // bytes per value of each string column, last seen
	pages    pqfile.PageChecker
	// samples counts the rows within the range, files and row groups
	// those read (others were skipped by their partition or statistics).
	samples   int64
	files     int64
	rowGroups int64
}

func newArchiveReader(need map[string]bool, filters []rowFilter, from, to int64) *archiveReader {
	return &archiveReader{need: need, filters: filters, from: from, to: to, vals: make([]pq.Value, 4096), width: map[string]int{}}
}

// readFile reads the file's row groups within the range and hands each as a
// record to emit (which takes ownership). A damaged file is an error, never
// a panic.
func (a *archiveReader) readFile(path string, emit func(arrow.RecordBatch) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	pf, err := pqfile.Open(f, fi.Size(), pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return err
	}
	schema := pf.Schema()
	if err := a.pages.CheckFile(f, fi.Size(), pf); err != nil {
		return fmt.Errorf("corrupt parquet file: %w", err)
	}
	a.files++
	lookup := func(path ...string) (int, error) {
		l, ok := schema.Lookup(path...)
		if !ok {
			return 0, fmt.Errorf("no column %s: not a %s file", strings.Join(path, "."), sample.SchemaVersion)
		}
		return l.ColumnIndex, nil
	}
	tsCol, err := lookup(sample.ColTs)
	if err != nil {
		return err
	}
	for g, rg := range pf.RowGroups() {
		if min, max, ok := tsStats(pf, g, tsCol); ok && (max < a.from || min >= a.to) {
			continue
		}
		a.rowGroups++
		rec, err := a.readRowGroup(rg, lookup, tsCol)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// tsStats returns the row group's ts range from the footer statistics.
func tsStats(f *pq.File, g, col int) (lo, hi int64, ok bool) {
	rgs := f.Metadata().RowGroups
	if g >= len(rgs) || col >= len(rgs[g].Columns) {
		return 0, 0, false
	}
	st := rgs[g].Columns[col].MetaData.Statistics
	mn, mx := st.MinValue, st.MaxValue
	if len(mn) != 8 || len(mx) != 8 {
		mn, mx = st.Min, st.Max
	}
	if len(mn) != 8 || len(mx) != 8 {
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(mn)), int64(binary.LittleEndian.Uint64(mx)), true
}

// eachValue calls f with every value of column col of rg, in row order.
func (a *archiveReader) eachValue(rg pq.RowGroup, col int, f func(v *pq.Value)) error {
	pages := rg.ColumnChunks()[col].Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := p.Values()
		for {
			n, err := r.ReadValues(a.vals)
			for i := range a.vals[:n] {
				f(&a.vals[i])
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				pq.Release(p)
				return err
			}
			if n == 0 {
				pq.Release(p)
				return errors.New("page reader made no progress")
			}
		}
		pq.Release(p)
	}
}

// bitmap is an Arrow validity bitmap under construction; it stays
// unallocated until the first null.
type bitmap struct {
	bits  []byte
	n     int
	nulls int
}

func (b *bitmap) append(valid bool) {
	i := b.n
	b.n++
	if b.bits == nil {
		if valid {
			return
		}
		// The first null: every row before it was valid.
		b.bits = make([]byte, i/8+1)
		for k := range b.bits[:i/8] {
			b.bits[k] = 0xff
		}
		for k := i &^ 7; k < i; k++ {
			b.bits[k/8] |= 1 << (k % 8)
		}
	}
	if i/8 >= len(b.bits) {
		b.bits = append(b.bits, 0)
	}
	if valid {
		b.bits[i/8] |= 1 << (i % 8)
	} else {
		b.nulls++
	}
}

func (b *bitmap) buffer() *memory.Buffer {
	if b.nulls == 0 {
		return nil
	}
	return memory.NewBufferBytes(b.bits)
}

// readRowGroup builds the record of the rows of rg inside the range that a
// rule may read (nil when there are none); columns no rule reads are empty
// (or null).
func (a *archiveReader) readRowGroup(rg pq.RowGroup, lookup func(...string) (int, error), tsCol int) (arrow.RecordBatch, error) {
	n := int(rg.NumRows())
	a.keep, a.tsAll = a.keep[:0], a.tsAll[:0]
	inRange := 0
	if err := a.eachPage(rg, tsCol, pq.Int64, func(p pq.Page) error {
		if p.NumNulls() > 0 {
			return errors.New("null time")
		}
		data := p.Data()
		for _, t := range data.Int64() {
			in := t >= a.from && t < a.to
			a.keep = append(a.keep, in)
			if in {
				inRange++
			}
		}
		a.tsAll = append(a.tsAll, data.Int64()...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("column ts: %w", err)
	}
	if len(a.keep) != n {
		return nil, fmt.Errorf("column ts has %d values for %d rows", len(a.keep), n)
	}
	a.samples += int64(inRange)
	for _, f := range a.filters {
		if inRange == 0 {
			break
		}
		var err error
		if inRange, err = a.filterRows(rg, lookup, f); err != nil {
			return nil, fmt.Errorf("column %s: %w", f.col, err)
		}
	}
	if inRange == 0 {
		return nil, nil
	}
	kept := inRange
	a.all = kept == n
	ts := arrow.Int64Traits.CastFromBytes(a.pool.Allocate(8 * kept))[:0]
	for i, t := range a.tsAll {
		if a.keep[i] {
			ts = append(ts, t)
		}
	}
	cols := make([]arrow.Array, sample.Schema.NumFields())
	release := func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}
	fields := sample.Schema.Fields()
	cols[sample.IdxTs] = a.array(fields[sample.IdxTs].Type, kept, 0, nil, arrow.Int64Traits.CastToBytes(ts))
	for idx, f := range fields {
		if idx == sample.IdxTs {
			continue
		}
		var err error
		read := f.Name == sample.ColSource || f.Name == sample.ColModule || a.need[f.Name]
		switch {
		case !read:
			cols[idx] = a.emptyColumn(f, kept)
		case f.Name == sample.ColValue:
			cols[idx], err = a.readDoubles(rg, lookup, kept)
		case f.Name == sample.ColLabels:
			cols[idx], err = a.readLabels(rg, lookup)
		default:
			cols[idx], err = a.readStrings(rg, lookup, f.Name, kept)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
		if cols[idx].Len() != kept {
			release()
			return nil, fmt.Errorf("column %s has %d values for %d rows", f.Name, cols[idx].Len(), kept)
		}
	}
	rec := array.NewRecordBatch(sample.Schema, cols, int64(kept))
	release()
	return rec, nil
}

// filterRows drops the kept rows whose value of f.col is not wanted and
// returns how many remain kept.
func (a *archiveReader) filterRows(rg pq.RowGroup, lookup func(...string) (int, error), f rowFilter) (int, error) {
	col, err := lookup(f.col)
	if err != nil {
		return 0, err
	}
	row, kept := 0, 0
	err = a.eachPage(rg, col, pq.ByteArray, func(p pq.Page) error {
		defs := p.DefinitionLevels()
		pd := p.Data()
		var idx []int32
		var vdata []byte
		var voffs []uint32
		if d := p.Dictionary(); d != nil {
			idx = pd.Int32()
			dd := d.Page().Data()
			vdata, voffs = dd.ByteArray()
			if err := checkOffsets(vdata, voffs); err != nil {
				return err
			}
			// Decide once per dictionary entry.
			a.dictOK = a.dictOK[:0]
			for j := 0; j+1 < len(voffs); j++ {
				a.dictOK = append(a.dictOK, f.want[string(vdata[voffs[j]:voffs[j+1]])])
			}
		} else {
			vdata, voffs = pd.ByteArray()
			if err := checkOffsets(vdata, voffs); err != nil {
				return err
			}
		}
		n, k := int(p.NumValues()), 0
		if idx != nil && p.NumNulls() == 0 && !slices.Contains(a.dictOK, false) {
			// Every value of the page is wanted.
			if row+n > len(a.keep) {
				return errors.New("more values than rows")
			}
			for _, in := range a.keep[row : row+n] {
				if in {
					kept++
				}
			}
			row += n
			return nil
		}
		for i := 0; i < n; i, row = i+1, row+1 {
			if row >= len(a.keep) {
				return errors.New("more values than rows")
			}
			null := nullAt(defs, i)
			if a.keep[row] {
				var in bool
				switch {
				case null:
				case idx != nil:
					if k >= len(idx) || uint(idx[k]) >= uint(len(a.dictOK)) {
						return errors.New("dictionary index out of range")
					}
					in = a.dictOK[idx[k]]
				default:
					if k+1 >= len(voffs) {
						return errors.New("value out of range")
					}
					in = f.want[string(vdata[voffs[k]:voffs[k+1]])]
				}
				a.keep[row] = in
				if in {
					kept++
				}
			}
			if !null {
				k++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if row != len(a.keep) {
		return 0, fmt.Errorf("%d values for %d rows", row, len(a.keep))
	}
	return kept, nil
}

// checkOffsets checks that byte array offsets are in order and within data.
func checkOffsets(data []byte, offs []uint32) error {
	for j := 0; j+1 < len(offs); j++ {
		if offs[j] > offs[j+1] {
			return errors.New("value offsets out of order")
		}
	}
	if len(offs) > 0 && int(offs[len(offs)-1]) > len(data) {
		return errors.New("value out of range")
	}
	return nil
}

// array makes an array of n values over bufs (slices from a.pool, given
// back to it when the last record using them is released) and validity.
func (a *archiveReader) array(typ arrow.DataType, n, nulls int, validity *memory.Buffer, bufs ...[]byte) arrow.Array {
	mb := make([]*memory.Buffer, 1, 1+len(bufs))
	mb[0] = validity
	for _, b := range bufs {
		mb = append(mb, memory.NewBufferWithAllocator(b, &a.pool))
	}
	data := array.NewData(typ, n, mb, nil, nulls, 0)
	for _, b := range mb[1:] {
		b.Release() // the data holds them now
	}
	defer data.Release()
	return array.MakeFromData(data)
}

// bufferPool recycles the column buffers of backtest records: the engine
// copies what it keeps from a record, so once the record is released its
// buffers can hold a later row group, and the decoder does not allocate
// (and the runtime does not zero) ~50 bytes per sample anew. Allocate does
// not zero what it returns: the reader overwrites all of it.
type bufferPool struct {
	mu    sync.Mutex
	free  [][]byte
	bytes int
}

// The pool keeps at most maxPooledBuffers buffers and maxPooledBytes bytes;
// it hands out a buffer at most 4 times (plus 64 KiB) larger than asked.
const (
	maxPooledBuffers = 64
	maxPooledBytes   = 512 << 20
)

func (p *bufferPool) Allocate(n int) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && cap(b) <= 4*n+64<<10 && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best < 0 {
		p.mu.Unlock()
		return make([]byte, n)
	}
	b := p.free[best]
	last := len(p.free) - 1
	p.free[best], p.free[last] = p.free[last], nil
	p.free = p.free[:last]
	p.bytes -= cap(b)
	p.mu.Unlock()
	return b[:n]
}

func (p *bufferPool) Reallocate(n int, b []byte) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := p.Allocate(n)
	copy(nb, b)
	p.Free(b)
	return nb
}

func (p *bufferPool) Free(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) >= maxPooledBuffers || p.bytes+cap(b) > maxPooledBytes {
		return
	}
	p.free = append(p.free, b[:0])
	p.bytes += cap(b)
}

// zeroBytes returns n zero bytes, shared (never written) by every column no
// rule reads.
func (a *archiveReader) zeroBytes(n int) []byte {
	if len(a.zeros) < n {
		a.zeros = make([]byte, max(n, 2*len(a.zeros)))
	}
	return a.zeros[:n]
}

// emptyColumn is a column of n nulls (nullable) or empty values (strings,
// maps), its buffers zeros shared with the other empty columns.
func (a *archiveReader) emptyColumn(f arrow.Field, n int) arrow.Array {
	offsets := memory.NewBufferBytes(a.zeroBytes(4 * (n + 1)))
	empty := memory.NewBufferBytes(nil)
	if mt, ok := f.Type.(*arrow.MapType); ok {
		keys := array.NewData(mt.KeyType(), 0, []*memory.Buffer{nil, memory.NewBufferBytes(a.zeroBytes(4)), empty}, nil, 0, 0)
		items := array.NewData(mt.ItemType(), 0, []*memory.Buffer{nil, memory.NewBufferBytes(a.zeroBytes(4)), empty}, nil, 0, 0)
		entries := array.NewData(mt.Elem(), 0, []*memory.Buffer{nil}, []arrow.ArrayData{keys, items}, 0, 0)
		data := array.NewData(mt, n, []*memory.Buffer{nil, offsets}, []arrow.ArrayData{entries}, 0, 0)
		keys.Release()
		items.Release()
		entries.Release()
		defer data.Release()
		return array.MakeFromData(data)
	}
	if !f.Nullable {
		data := array.NewData(f.Type, n, []*memory.Buffer{nil, offsets, empty}, nil, 0, 0)
		defer data.Release()
		return array.MakeFromData(data)
	}
	nulls := memory.NewBufferBytes(a.zeroBytes((n + 7) / 8))
	switch f.Type.ID() {
	case arrow.STRING:
		data := array.NewData(f.Type, n, []*memory.Buffer{nulls, offsets, empty}, nil, n, 0)
		defer data.Release()
		return array.MakeFromData(data)
	case arrow.FLOAT64:
		data := array.NewData(f.Type, n, []*memory.Buffer{nulls, memory.NewBufferBytes(a.zeroBytes(8 * n))}, nil, n, 0)
		defer data.Release()
		return array.MakeFromData(data)
	}
	return array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, n)
}

// eachPage calls f with every page of column col of rg, which must hold
// values of kind.
func (a *archiveReader) eachPage(rg pq.RowGroup, col int, kind pq.Kind, f func(p pq.Page) error) error {
	pages := rg.ColumnChunks()[col].Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if k := p.Type().Kind(); k != kind {
			pq.Release(p)
			return fmt.Errorf("values of kind %s, want %s", k, kind)
		}
		err = f(p)
		pq.Release(p)
		if err != nil {
			return err
		}
	}
}

// nullAt reports whether row i of a page of a top-level column is null
// (its definition level is below the column's).
func nullAt(defs []byte, i int) bool { return defs != nil && defs[i] == 0 }

// readStrings copies a string column's kept rows straight from the pages
// (dictionary indexes or plain byte arrays) into an Arrow string array.
func (a *archiveReader) readStrings(rg pq.RowGroup, lookup func(...string) (int, error), name string, kept int) (arrow.Array, error) {
	col, err := lookup(name)
	if err != nil {
		return nil, err
	}
	offsets := append(arrow.Int32Traits.CastFromBytes(a.pool.Allocate(4 * (kept + 1)))[:0], 0)
	data := a.pool.Allocate(kept*a.width[name] + 64)[:0]
	var valid bitmap
	row := 0
	err = a.eachPage(rg, col, pq.ByteArray, func(p pq.Page) error {
		var vdata []byte
		var voffs []uint32
		var idx []int32
		pd := p.Data()
		if d := p.Dictionary(); d != nil {
			idx = pd.Int32()
			dd := d.Page().Data()
			vdata, voffs = dd.ByteArray()
		} else {
			vdata, voffs = pd.ByteArray()
		}
		if err := checkOffsets(vdata, voffs); err != nil {
			return err
		}
		n := int(p.NumValues())
		if row+n > len(a.keep) {
			return errors.New("more values than rows")
		}
		// The loops append to locals: the closure's captured slices live
		// on the heap, and storing to them per row costs write barriers.
		d, o := data, offsets
		defer func() { data, offsets = d, o }()
		if p.NumNulls() == 0 && (idx != nil || a.all) {
			keep := a.keep[row : row+n]
			row += n
			if idx == nil {
				// Plain values, every row kept: one block copy.
				if len(voffs) < n+1 {
					return errors.New("fewer values than rows")
				}
				base := int32(len(d)) - int32(voffs[0])
				d = append(d, vdata[voffs[0]:voffs[n]]...)
				for _, off := range voffs[1 : n+1] {
					o = append(o, base+int32(off))
				}
				return nil
			}
			if len(idx) < n {
				return errors.New("fewer dictionary indexes than values")
			}
			// Check the indexes and size the buffer first: one allocation.
			nd, size := uint(len(voffs)-1), 0
			for i, j := range idx[:n] {
				if uint(j) >= nd {
					return errors.New("dictionary index out of range")
				}
				if keep[i] {
					size += int(voffs[j+1] - voffs[j])
				}
			}
			d = slices.Grow(d, size)
			// Rows come sorted by series, so a value repeats over long
			// runs: write it once and double it, rather than one copy per
			// row.
			for i := 0; i < n; {
				if !keep[i] {
					i++
					continue
				}
				j := idx[i]
				r := i + 1
				for r < n && idx[r] == j && keep[r] {
					r++
				}
				v := vdata[voffs[j]:voffs[j+1]]
				start, w := len(d), len(v)
				end := start + w*(r-i)
				d = d[:end]
				for filled := start + copy(d[start:end], v); filled < end; {
					filled += copy(d[filled:end], d[start:filled])
				}
				for k := 1; k <= r-i; k++ {
					o = append(o, int32(start+k*w))
				}
				i = r
			}
			return nil
		}
		defs := p.DefinitionLevels()
		k := 0
		for i := 0; i < n; i, row = i+1, row+1 {
			null := nullAt(defs, i)
			if a.keep[row] {
				if !null {
					j := k
					if idx != nil {
						if k >= len(idx) {
							return errors.New("fewer dictionary indexes than values")
						}
						j = int(idx[k])
					}
					if j < 0 || j+1 >= len(voffs) {
						return errors.New("value out of range")
					}
					d = append(d, vdata[voffs[j]:voffs[j+1]]...)
				}
				o = append(o, int32(len(d)))
				valid.append(!null)
			}
			if !null {
				k++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(data) > math.MaxInt32 {
		return nil, fmt.Errorf("row group holds more than 2 GiB of strings")
	}
	out := len(offsets) - 1
	if out > 0 {
		a.width[name] = len(data)/out + 1 // sizes the next row group's buffer
	}
	return a.array(arrow.BinaryTypes.String, out, valid.nulls, valid.buffer(), arrow.Int32Traits.CastToBytes(offsets), data), nil
}

func (a *archiveReader) readDoubles(rg pq.RowGroup, lookup func(...string) (int, error), kept int) (arrow.Array, error) {
	col, err := lookup(sample.ColValue)
	if err != nil {
		return nil, err
	}
	vals := arrow.Float64Traits.CastFromBytes(a.pool.Allocate(8 * kept))[:0]
	var valid bitmap
	row := 0
	err = a.eachPage(rg, col, pq.Double, func(p pq.Page) error {
		pd := p.Data()
		src := pd.Double()
		n := int(p.NumValues())
		if row+n > len(a.keep) {
			return errors.New("more values than rows")
		}
		if a.all && p.NumNulls() == 0 {
			if len(src) < n {
				return errors.New("fewer values than rows")
			}
			vals = append(vals, src[:n]...)
			row += n
			return nil
		}
		defs := p.DefinitionLevels()
		k := 0
		for i := 0; i < n; i, row = i+1, row+1 {
			null := nullAt(defs, i)
			if !null && k >= len(src) {
				return errors.New("more values than rows")
			}
			if a.keep[row] {
				x := 0.0
				if !null {
					x = src[k]
				}
				valid.append(!null)
				vals = append(vals, x)
			}
			if !null {
				k++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a.array(arrow.PrimitiveTypes.Float64, len(vals), valid.nulls, valid.buffer(), arrow.Float64Traits.CastToBytes(vals)), nil
}

// readLabels rebuilds the labels map from its key and value leaf columns:
// repetition level 0 starts a row; a null key is an empty map.
func (a *archiveReader) readLabels(rg pq.RowGroup, lookup func(...string) (int, error)) (arrow.Array, error) {
	kcol, err := lookup(sample.ColLabels, "key_value", "key")
	if err != nil {
		return nil, err
	}
	vcol, err := lookup(sample.ColLabels, "key_value", "value")
	if err != nil {
		return nil, err
	}
	var keys, values []string
	var starts []int
	var present []bool
	if err := a.eachValue(rg, kcol, func(v *pq.Value) {
		if v.RepetitionLevel() == 0 {
			starts = append(starts, len(keys))
			present = append(present, !v.IsNull())
		}
		if !v.IsNull() {
			keys = append(keys, string(v.ByteArray()))
		}
	}); err != nil {
		return nil, err
	}
	if err := a.eachValue(rg, vcol, func(v *pq.Value) {
		if !v.IsNull() || v.DefinitionLevel() > 0 {
			values = append(values, string(v.ByteArray()))
		}
	}); err != nil {
		return nil, err
	}
	if len(starts) != len(a.keep) {
		return nil, fmt.Errorf("%d label rows for %d rows", len(starts), len(a.keep))
	}
	mb := array.NewMapBuilderWithType(memory.DefaultAllocator, sample.Schema.Field(sample.IdxLabels).Type.(*arrow.MapType))
	defer mb.Release()
	kb, vb := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
	for row, s := range starts {
		if !a.keep[row] {
			continue
		}
		mb.Append(true)
		if !present[row] {
			continue
		}
		end := len(keys)
		if row+1 < len(starts) {
			end = starts[row+1]
		}
		for k := s; k < end && k < len(values); k++ {
			kb.Append(keys[k])
			vb.Append(values[k])
		}
	}
	return mb.NewArray(), nil
}

// BacktestCommand implements `reconc backtest FILE --archive DIR --from T --to
// T [--format table|json]`: it loads the rules of FILE with load, replays
// the archive and prints the alert timeline. Exit code 0 on success, 2 on
// a usage or load error, 1 when the replay fails.
func BacktestCommand(args []string, stdout, stderr io.Writer, load func(path string) (*plan.Plan, error)) int {
	fs := flag.NewFlagSet("reconc backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	archive := fs.String("archive", "", "archive root directory (holds samples/date=…/hour=…)")
	fromS := fs.String("from", "", "start of the replayed event time, RFC 3339 or YYYY-MM-DD (inclusive)")
	toS := fs.String("to", "", "end of the replayed event time, RFC 3339 or YYYY-MM-DD (exclusive)")
	format := fs.String("format", "table", "output: table or json (one alert event per line)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reconc backtest FILE --archive DIR --from T --to T [--format table|json]")
		fs.PrintDefaults()
	}
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if file == "" || *archive == "" || *fromS == "" || *toS == "" || (*format != "table" && *format != "json") {
		fs.Usage()
		return 2
	}
	from, err := parseTime(*fromS)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: --from: %v\n", err)
		return 2
	}
	to, err := parseTime(*toS)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: --to: %v\n", err)
		return 2
	}
	p, err := load(file)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
		return 2
	}
	start := time.Now()
	res, err := Backtest(context.Background(), BacktestOptions{Plan: p, Archive: *archive, From: from, To: to, Logger: discardLogger()})
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for i := range res.Events {
			if err := enc.Encode(&res.Events[i]); err != nil {
				fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
				return 1
			}
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tRULE\tSEVERITY\tPREVIOUS\tGROUP\tVALUE\tMESSAGE")
		for _, ev := range res.Events {
			v := ""
			if !math.IsNaN(ev.Value) {
				v = fmtNum(ev.Value)
			}
			sev := ev.Severity.String()
			if ev.Repeat {
				sev += " (repeat)"
			}
			if ev.Flapping {
				sev += " (flapping)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339Nano), ev.Rule, sev, ev.Previous, ev.GroupString(), v, ev.Message)
		}
		tw.Flush()
	}
	var late uint64
	for _, s := range res.Stats {
		late += s.Late
	}
	fmt.Fprintf(stderr, "%d transitions; %d samples from %d files (%d row groups) in %s; %d late samples dropped\n",
		len(res.Events), res.Samples, res.Files, res.RowGroups, time.Since(start).Round(time.Millisecond), late)
	return 0
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-05-01T00:00:00Z) or a date (2026-05-01)", s)
}
