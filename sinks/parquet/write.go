package parquet

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	kzstd "github.com/klauspost/compress/zstd"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

const nsPerHour = int64(3600e9)

// rowRef locates one row of a flush: batch index << 32 | row index.
type rowRef uint64

func (r rowRef) batch() int { return int(r >> 32) }
func (r rowRef) row() int   { return int(uint32(r)) }

// hourGroup is the rows of one flush that fall in one UTC hour, in file order.
type hourGroup struct {
	hour int64 // hours since the Unix epoch
	refs []rowRef
	keys seriesKeys
}

// seriesKeys gives the key strings of rows by their series: one copy of
// each series' keys instead of each row's own bytes. Rows of a series are
// adjacent in a file, so a column writer reading its keys this way reads
// the same few bytes, in cache, over and over, where the rows' own bytes
// are scattered over the batches they came in.
type seriesKeys struct {
	series []int32  // series id of each row, aligned with the rows' refs
	keys   []string // len(keyIdx) strings per series id
}

// slice returns the keys of rows lo..hi.
func (k seriesKeys) slice(lo, hi int) seriesKeys {
	if k.series == nil {
		return k
	}
	return seriesKeys{series: k.series[lo:hi], keys: k.keys}
}

// writerConfig tunes the Parquet files written.
type writerConfig struct {
	// CompressionLevel is the zstd level, 1..22.
	CompressionLevel int
	// RowGroupRows caps the rows of one row group.
	RowGroupRows int
	// PageBytes is the uncompressed page size a column buffers before it
	// compresses a page.
	PageBytes int
	// Window, when set, bounds the zstd window (a power of two); zero
	// means the encoder's default.
	Window int
}

func (c writerConfig) codec() compress.Codec {
	if c.Window > 0 {
		return newZstdCodec(c.CompressionLevel, c.Window)
	}
	return &zstd.Codec{Level: kzstd.EncoderLevelFromZstd(c.CompressionLevel)}
}

// encoder sorts the rows of a flush and writes them as Parquet, column by
// column. Its scratch buffers are reused across flushes; it is not safe for
// concurrent use.
type encoder struct {
	l    *layout
	cfg  writerConfig
	opts []pq.WriterOption

	// sort scratch
	maxSeries  int              // series remembered between flushes (maxKnownSeries)
	series     map[string]int32 // series key → id, kept across flushes
	seriesKeys []string         // len(keyIdx) strings per series, by series id
	order      []int32          // series ids by key
	rank       []int32          // series id → its place in order
	keyBuf     []byte
	rowSeries  []int32
	rowSlot    []int32
	rowTs      []int64
	hours      []int64
	refs       []rowRef
	sortedRefs []rowRef
	sortedIDs  []int32 // series id of each of sortedRefs
	sortedTs   []int64
	counts     []int
	next       []int
	groups     []hourGroup

	scratch []colScratch // one per column worker
}

func newEncoder(l *layout, cfg writerConfig) *encoder {
	e := &encoder{
		l:         l,
		cfg:       cfg,
		series:    make(map[string]int32),
		maxSeries: maxKnownSeries,
		scratch:   make([]colScratch, max(1, runtime.GOMAXPROCS(0))),
	}
	e.opts = writerOptions(l, cfg)
	return e
}

// writerOptions are the options of every file of the table: its schema,
// zstd at the configured level, large pages, data pages v1 (whose levels are
// compressed too: runs of nulls and map sizes shrink ~10x), and the sort
// order recorded in the row groups' metadata.
func writerOptions(l *layout, cfg writerConfig) []pq.WriterOption {
	return []pq.WriterOption{
		l.schema,
		pq.Compression(cfg.codec()),
		pq.PageBufferSize(cfg.PageBytes),
		pq.DataPageVersion(1),
		pq.DataPageStatistics(false),
		pq.CreatedBy("recon", "", ""),
		pq.KeyValueMetadata("recon-table", l.Name),
		pq.SortingWriterConfig(pq.SortingColumns(sortingColumns(l.SortColumns)...)),
	}
}

func sortingColumns(names []string) []pq.SortingColumn {
	cols := make([]pq.SortingColumn, len(names))
	for i, n := range names {
		cols[i] = pq.Ascending(n)
	}
	return cols
}

// maxKnownSeries bounds the series an encoder remembers between flushes.
// Flushes of a steady stream hold the same series, so they reuse the
// series' ids, copied keys and ranking instead of sorting the keys anew
// each time; beyond the bound the next flush starts afresh.
const maxKnownSeries = 1 << 17

// plan sorts the rows of batches by (hour, series key, time), keeping the
// arrival order of equal rows so that the same input always gives the same
// files. The result is valid until the next call.
func (e *encoder) plan(batches []arrow.RecordBatch) []hourGroup {
	l := e.l
	if len(e.series) > e.maxSeries {
		clear(e.series)
		e.seriesKeys, e.rank = e.seriesKeys[:0], e.rank[:0]
	}
	e.rowSeries, e.rowSlot, e.rowTs = e.rowSeries[:0], e.rowSlot[:0], e.rowTs[:0]
	e.hours, e.refs = e.hours[:0], e.refs[:0]
	nk := len(l.keyIdx)
	for b, rec := range batches {
		ts := rec.Column(l.timeIdx).(*array.Timestamp).Values()
		keys := e.keyColumns(rec)
		for i := range int(rec.NumRows()) {
			t := int64(ts[i]) * l.timeMul
			h := floorDiv(t, nsPerHour)
			slot := slices.Index(e.hours, h)
			if slot < 0 {
				slot = len(e.hours)
				e.hours = append(e.hours, h)
			}
			e.keyBuf = e.keyBuf[:0]
			for _, s := range keys {
				v := s.Value(i)
				e.keyBuf = append(e.keyBuf, byte(len(v)), byte(len(v)>>8), byte(len(v)>>16), byte(len(v)>>24))
				e.keyBuf = append(e.keyBuf, v...)
			}
			id, ok := e.series[string(e.keyBuf)]
			if !ok {
				id = int32(len(e.series))
				e.series[string(e.keyBuf)] = id
				for _, s := range keys {
					e.seriesKeys = append(e.seriesKeys, strings.Clone(s.Value(i)))
				}
			}
			e.rowSeries = append(e.rowSeries, id)
			e.rowSlot = append(e.rowSlot, int32(slot))
			e.rowTs = append(e.rowTs, t)
			e.refs = append(e.refs, rowRef(uint64(b)<<32|uint64(i)))
		}
	}

	// Rank the series by their key strings (again only when new ones
	// came), then the hours.
	nSeries := len(e.series)
	if len(e.rank) != nSeries {
		order := slices.Grow(e.order[:0], nSeries)[:nSeries]
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int {
			ka := e.seriesKeys[int(a)*nk : int(a+1)*nk]
			kb := e.seriesKeys[int(b)*nk : int(b+1)*nk]
			return slices.Compare(ka, kb)
		})
		e.rank = slices.Grow(e.rank[:0], nSeries)[:nSeries]
		for r, id := range order {
			e.rank[id] = int32(r)
		}
		e.order = order
	}
	rank := e.rank
	hourOrder := make([]int, len(e.hours))
	for i := range hourOrder {
		hourOrder[i] = i
	}
	slices.SortFunc(hourOrder, func(a, b int) int { return cmp.Compare(e.hours[a], e.hours[b]) })
	hourRank := make([]int, len(e.hours))
	for r, slot := range hourOrder {
		hourRank[slot] = r
	}

	// Counting sort into (hour, series) buckets: stable, O(rows).
	nBuckets := len(e.hours) * nSeries
	e.counts = slices.Grow(e.counts[:0], nBuckets+1)[:nBuckets+1]
	clear(e.counts)
	bucket := func(i int) int { return hourRank[e.rowSlot[i]]*nSeries + int(rank[e.rowSeries[i]]) }
	for i := range e.refs {
		e.counts[bucket(i)+1]++
	}
	for i := 1; i <= nBuckets; i++ {
		e.counts[i] += e.counts[i-1]
	}
	n := len(e.refs)
	e.sortedRefs = slices.Grow(e.sortedRefs[:0], n)[:n]
	e.sortedIDs = slices.Grow(e.sortedIDs[:0], n)[:n]
	e.sortedTs = slices.Grow(e.sortedTs[:0], n)[:n]
	e.next = append(e.next[:0], e.counts[:nBuckets]...)
	next := e.next
	for i := range e.refs {
		k := bucket(i)
		p := next[k]
		next[k]++
		e.sortedRefs[p] = e.refs[i]
		e.sortedIDs[p] = e.rowSeries[i]
		e.sortedTs[p] = e.rowTs[i]
	}
	// Within a series rows usually arrive in time order; sort those that
	// did not.
	for k := range nBuckets {
		lo, hi := e.counts[k], e.counts[k+1]
		if !slices.IsSorted(e.sortedTs[lo:hi]) {
			sortByTime(e.sortedRefs[lo:hi], e.sortedTs[lo:hi])
		}
	}

	e.groups = e.groups[:0]
	for r, slot := range hourOrder {
		lo, hi := e.counts[r*nSeries], e.counts[(r+1)*nSeries]
		e.groups = append(e.groups, hourGroup{hour: e.hours[slot], refs: e.sortedRefs[lo:hi],
			keys: seriesKeys{series: e.sortedIDs[lo:hi], keys: e.seriesKeys}})
	}
	return e.groups
}

// sortByTime sorts refs by ts, stably, keeping both slices aligned.
func sortByTime(refs []rowRef, ts []int64) {
	type pair struct {
		ts  int64
		ref rowRef
	}
	ps := make([]pair, len(refs))
	for i := range refs {
		ps[i] = pair{ts[i], refs[i]}
	}
	slices.SortStableFunc(ps, func(a, b pair) int { return cmp.Compare(a.ts, b.ts) })
	for i, p := range ps {
		refs[i], ts[i] = p.ref, p.ts
	}
}

// stringColumn reads a string or large string column.
type stringColumn interface {
	Value(i int) string
	IsNull(i int) bool
}

func (e *encoder) keyColumns(rec arrow.RecordBatch) []stringColumn {
	keys := make([]stringColumn, len(e.l.keyIdx))
	for j, c := range e.l.keyIdx {
		keys[j] = rec.Column(c).(stringColumn)
	}
	return keys
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// writeFile writes refs of batches as one Parquet file to out. Columns are
// encoded and compressed in parallel, one worker per CPU (at most one per
// column). keys, when set (a plan's hourGroup), gives the rows' key columns.
func (e *encoder) writeFile(out io.Writer, batches []arrow.RecordBatch, refs []rowRef, keys seriesKeys) error {
	// A new writer per file: parquet-go v0.32.0's Writer.Reset clears the
	// column paths of the next file's footer (path_in_schema), which
	// TestEncoderSameInputSameBytes catches.
	w := pq.NewWriter(out, e.opts...)
	for start := 0; start < len(refs); start += e.cfg.RowGroupRows {
		end := min(start+e.cfg.RowGroupRows, len(refs))
		if err := e.writeRowGroup(w.ColumnWriters(), batches, refs[start:end], keys.slice(start, end)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return w.Close()
}

func (e *encoder) writeRowGroup(cws []*pq.ColumnWriter, batches []arrow.RecordBatch, refs []rowRef, keys seriesKeys) error {
	workers := min(len(e.scratch), len(e.l.cols))
	var next atomic.Int32
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wi := range workers {
		wg.Go(func() {
			s := &e.scratch[wi]
			for {
				c := int(next.Add(1) - 1)
				if c >= len(e.l.cols) {
					return
				}
				if err := s.writeColumn(e.l, c, cws, batches, refs, keys); err != nil {
					errs[wi] = fmt.Errorf("column %s: %w", e.l.Schema.Field(c).Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// chunkRows is how many rows are handed to a column writer at once.
const chunkRows = 4096

// colScratch is one column worker's reusable buffers.
type colScratch struct {
	vals, vals2 []pq.Value
	arrs        []arrow.Array
	strs        []stringBuffers
	floats      []float64Buffers
	times       []timestampBuffers
	maps        []mapBuffers
}

func (s *colScratch) writeColumn(l *layout, c int, cws []*pq.ColumnWriter, batches []arrow.RecordBatch, refs []rowRef, keys seriesKeys) error {
	leaf := l.leaf[c]
	nullable := l.Schema.Field(c).Nullable
	s.arrs = s.arrs[:0]
	nulls := false
	for _, b := range batches {
		s.arrs = append(s.arrs, b.Column(c))
		nulls = nulls || b.Column(c).NullN() > 0
	}
	// A key column without nulls is read by series (a null key reads as
	// the empty string in the series' keys).
	key := -1
	if keys.series != nil && !nulls {
		key = slices.Index(l.keyIdx, c)
	}
	if key < 0 && l.cols[c] == kindString {
		s.prepareStrings(nullable)
	}
	for start := 0; start < len(refs); start += chunkRows {
		end := min(start+chunkRows, len(refs))
		chunk := refs[start:end]
		if key >= 0 {
			s.vals = appendKeys(s.vals[:0], keys.slice(start, end), len(l.keyIdx), key, definitionLevel(nullable))
			if _, err := cws[leaf].WriteRowValues(s.vals); err != nil {
				return err
			}
			continue
		}
		if l.cols[c] == kindStringMap {
			if err := s.writeMapChunk(cws[leaf], cws[leaf+1], nullable, chunk); err != nil {
				return err
			}
			continue
		}
		s.vals = s.appendValues(s.vals[:0], l.cols[c], chunk, nullable)
		if _, err := cws[leaf].WriteRowValues(s.vals); err != nil {
			return err
		}
	}
	return nil
}

// appendKeys appends the values of key column key (of nk) of the rows of
// keys.
func appendKeys(dst []pq.Value, keys seriesKeys, nk, key, def int) []pq.Value {
	dst, out := extend(dst, len(keys.series))
	last, v := int32(-1), pq.Value{}
	for k, id := range keys.series {
		if id != last {
			last = id
			v = pq.ByteArrayValue(bytesOf(keys.keys[int(id)*nk+key]))
			v.SetDefinitionLevel(def)
		}
		out[k] = v
	}
	return dst
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// appendValues appends the Parquet values of the rows of chunk.
func (s *colScratch) appendValues(dst []pq.Value, kind columnKind, chunk []rowRef, nullable bool) []pq.Value {
	switch kind {
	case kindTimestamp:
		return s.appendTimestamps(dst, chunk, nullable)
	case kindString:
		return s.appendStrings(dst, chunk)
	case kindLargeString:
		return appendTyped(dst, s.arrs, chunk, nullable, func(a *array.LargeString, i int) pq.Value {
			return pq.ByteArrayValue(bytesOf(a.Value(i)))
		})
	case kindFloat64:
		return s.appendFloat64s(dst, chunk, nullable)
	case kindFloat32:
		return appendTyped(dst, s.arrs, chunk, nullable, func(a *array.Float32, i int) pq.Value {
			return pq.FloatValue(a.Value(i))
		})
	case kindInt64:
		return appendTyped(dst, s.arrs, chunk, nullable, func(a *array.Int64, i int) pq.Value {
			return pq.Int64Value(a.Value(i))
		})
	case kindInt32:
		return appendTyped(dst, s.arrs, chunk, nullable, func(a *array.Int32, i int) pq.Value {
			return pq.Int32Value(a.Value(i))
		})
	case kindBool:
		return appendTyped(dst, s.arrs, chunk, nullable, func(a *array.Boolean, i int) pq.Value {
			return pq.BooleanValue(a.Value(i))
		})
	}
	panic(fmt.Sprintf("parquet: column kind %d has no writer", kind)) // compile() admits no other kind
}

// appendStrings is appendValues for the (hot) string columns, reading the
// Arrow buffers directly (prepared by prepareStrings).
func (s *colScratch) appendStrings(dst []pq.Value, chunk []rowRef) []pq.Value {
	dst, out := extend(dst, len(chunk))
	for k, r := range chunk {
		b := &s.strs[r.batch()]
		if b.constant {
			out[k] = b.value
			continue
		}
		i := r.row()
		if b.nulls && b.arr.IsNull(i) {
			out[k] = pq.NullValue()
			continue
		}
		v := pq.ByteArrayValue(b.data[b.offsets[i]-b.base : b.offsets[i+1]-b.base])
		v.SetDefinitionLevel(b.def)
		out[k] = v
	}
	return dst
}

// extend lengthens dst by n values and returns it and the n new ones: the
// append* loops store into them rather than append one at a time (a third
// of their time went to append's bookkeeping).
func extend(dst []pq.Value, n int) (all, added []pq.Value) {
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	return dst, dst[l:]
}

// prepareStrings reads the string arrays of a column for appendStrings. A
// batch whose rows all hold one value, or are all null, is marked
// constant: rows arrive in series order, scattered over their batches,
// and a constant batch's rows then cost no reads of its buffers at all.
func (s *colScratch) prepareStrings(nullable bool) {
	s.strs = s.strs[:0]
	def := definitionLevel(nullable)
	for _, a := range s.arrs {
		a := a.(*array.String)
		b := stringBuffers{arr: a, offsets: a.ValueOffsets(), data: a.ValueBytes(), nulls: nullable && a.NullN() > 0, def: def}
		if len(b.offsets) > 0 {
			b.base = b.offsets[0]
		}
		switch n := a.Len(); {
		case n == 0:
		case b.nulls && a.NullN() == n:
			b.constant, b.value = true, pq.NullValue()
		case a.NullN() == 0 && b.allEqual():
			b.constant = true
			b.value = pq.ByteArrayValue(b.data[:b.offsets[1]-b.base])
			b.value.SetDefinitionLevel(def)
		}
		s.strs = append(s.strs, b)
	}
}

type stringBuffers struct {
	arr      *array.String
	offsets  []int32
	data     []byte
	base     int32 // offsets[0]: data starts there
	nulls    bool
	def      int
	constant bool     // every row is value
	value    pq.Value // when constant
}

// allEqual reports whether every row of b holds the first row's value:
// offsets a step of its length apart, and the bytes that value repeated
// (bytes equal to themselves shifted by the step).
func (b *stringBuffers) allEqual() bool {
	step := b.offsets[1] - b.offsets[0]
	for i, o := range b.offsets {
		if o != b.base+int32(i)*step {
			return false
		}
	}
	n := int(b.offsets[len(b.offsets)-1] - b.base)
	return string(b.data[step:n]) == string(b.data[:n-int(step)])
}

// appendFloat64s is appendValues for float64 columns.
func (s *colScratch) appendFloat64s(dst []pq.Value, chunk []rowRef, nullable bool) []pq.Value {
	s.floats = s.floats[:0]
	for _, a := range s.arrs {
		a := a.(*array.Float64)
		s.floats = append(s.floats, float64Buffers{arr: a, values: a.Float64Values(), nulls: nullable && a.NullN() > 0})
	}
	def := definitionLevel(nullable)
	dst, out := extend(dst, len(chunk))
	for k, r := range chunk {
		b := &s.floats[r.batch()]
		i := r.row()
		if b.nulls && b.arr.IsNull(i) {
			out[k] = pq.NullValue()
			continue
		}
		v := pq.DoubleValue(b.values[i])
		v.SetDefinitionLevel(def)
		out[k] = v
	}
	return dst
}

// appendTimestamps is appendValues for timestamp columns (seconds are
// stored as milliseconds).
func (s *colScratch) appendTimestamps(dst []pq.Value, chunk []rowRef, nullable bool) []pq.Value {
	mul := int64(1)
	if s.arrs[0].DataType().(*arrow.TimestampType).Unit == arrow.Second {
		mul = 1000
	}
	s.times = s.times[:0]
	for _, a := range s.arrs {
		a := a.(*array.Timestamp)
		s.times = append(s.times, timestampBuffers{arr: a, values: a.TimestampValues(), nulls: nullable && a.NullN() > 0})
	}
	def := definitionLevel(nullable)
	dst, out := extend(dst, len(chunk))
	for k, r := range chunk {
		b := &s.times[r.batch()]
		i := r.row()
		if b.nulls && b.arr.IsNull(i) {
			out[k] = pq.NullValue()
			continue
		}
		v := pq.Int64Value(int64(b.values[i]) * mul)
		v.SetDefinitionLevel(def)
		out[k] = v
	}
	return dst
}

type timestampBuffers struct {
	arr    *array.Timestamp
	values []arrow.Timestamp
	nulls  bool
}

type float64Buffers struct {
	arr    *array.Float64
	values []float64
	nulls  bool
}

func appendTyped[A arrow.Array](dst []pq.Value, arrs []arrow.Array, chunk []rowRef, nullable bool, value func(a A, i int) pq.Value) []pq.Value {
	def := definitionLevel(nullable)
	typed := make([]A, len(arrs))
	for i, a := range arrs {
		typed[i] = a.(A)
	}
	dst, out := extend(dst, len(chunk))
	for k, r := range chunk {
		a := typed[r.batch()]
		i := r.row()
		if nullable && a.IsNull(i) {
			out[k] = pq.NullValue()
			continue
		}
		v := value(a, i)
		v.SetDefinitionLevel(def)
		out[k] = v
	}
	return dst
}

// definitionLevel is the definition level of a present value of a top-level
// column. Values are handed to the column writer of their leaf, which reads
// only their levels: their column index is left unset, and a null (level 0)
// is the zero Value.
func definitionLevel(nullable bool) int {
	if nullable {
		return 1
	}
	return 0
}

// writeMapChunk writes the key and value leaves of a map<string,string>
// column for the rows of chunk.
func (s *colScratch) writeMapChunk(kw, vw *pq.ColumnWriter, nullable bool, chunk []rowRef) error {
	base := 0 // definition level of a present, empty map
	if nullable {
		base = 1
	}
	s.maps = s.maps[:0]
	for _, a := range s.arrs {
		m := a.(*array.Map)
		s.maps = append(s.maps, mapBuffers{
			arr:           m,
			offsets:       m.Offsets()[m.Data().Offset():],
			keys:          m.Keys().(*array.String),
			items:         m.Items().(*array.String),
			nulls:         nullable && m.NullN() > 0,
			itemsNullable: m.DataType().(*arrow.MapType).ItemField().Nullable,
		})
	}
	empty := levels(pq.NullValue(), 0, base)
	s.vals, s.vals2 = s.vals[:0], s.vals2[:0]
	for _, r := range chunk {
		b := &s.maps[r.batch()]
		i := r.row()
		if b.nulls && b.arr.IsNull(i) {
			s.vals = append(s.vals, pq.NullValue())
			s.vals2 = append(s.vals2, pq.NullValue())
			continue
		}
		lo, hi := b.offsets[i], b.offsets[i+1]
		if lo == hi {
			s.vals = append(s.vals, empty)
			s.vals2 = append(s.vals2, empty)
			continue
		}
		for j := int(lo); j < int(hi); j++ {
			rep := 1
			if j == int(lo) {
				rep = 0
			}
			s.vals = append(s.vals, levels(pq.ByteArrayValue(bytesOf(b.keys.Value(j))), rep, base+1))
			switch {
			case b.itemsNullable && b.items.IsNull(j):
				s.vals2 = append(s.vals2, levels(pq.NullValue(), rep, base+1))
			case b.itemsNullable:
				s.vals2 = append(s.vals2, levels(pq.ByteArrayValue(bytesOf(b.items.Value(j))), rep, base+2))
			default:
				s.vals2 = append(s.vals2, levels(pq.ByteArrayValue(bytesOf(b.items.Value(j))), rep, base+1))
			}
		}
	}
	if _, err := kw.WriteRowValues(s.vals); err != nil {
		return err
	}
	_, err := vw.WriteRowValues(s.vals2)
	return err
}

// mapBuffers are the parts of one batch's map column that writeMapChunk
// reads per row.
type mapBuffers struct {
	arr           *array.Map
	offsets       []int32 // offsets[i]..offsets[i+1] are row i's entries
	keys, items   *array.String
	nulls         bool
	itemsNullable bool
}

// levels returns v with its repetition and definition levels set.
func levels(v pq.Value, rep, def int) pq.Value {
	v.SetRepetitionLevel(rep)
	v.SetDefinitionLevel(def)
	return v
}
