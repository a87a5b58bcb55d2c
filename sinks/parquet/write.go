package parquet

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	kzstd "github.com/klauspost/compress/zstd"
	pq "github.com/parquet-go/parquet-go"
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
}

// encoder sorts the rows of a flush and writes them as Parquet, column by
// column. Its scratch buffers are reused across flushes; it is not safe for
// concurrent use.
type encoder struct {
	l   *layout
	cfg writerConfig
	w   *pq.Writer

	// sort scratch
	series     map[string]int32
	seriesKeys []string // len(keyIdx) strings per series, by series id
	keyBuf     []byte
	rowSeries  []int32
	rowSlot    []int32
	rowTs      []int64
	hours      []int64
	refs       []rowRef
	sortedRefs []rowRef
	sortedTs   []int64
	counts     []int
	groups     []hourGroup

	// write scratch
	vals, vals2 []pq.Value
	arrs        []arrow.Array
}

func newEncoder(l *layout, cfg writerConfig) *encoder {
	level := kzstd.EncoderLevelFromZstd(cfg.CompressionLevel)
	e := &encoder{
		l:      l,
		cfg:    cfg,
		series: make(map[string]int32),
	}
	e.w = pq.NewWriter(io.Discard, l.schema,
		pq.Compression(&zstd.Codec{Level: level}),
		pq.PageBufferSize(cfg.PageBytes),
		pq.CreatedBy("recon", "", ""),
		pq.KeyValueMetadata("recon-table", l.Name),
		pq.SortingWriterConfig(pq.SortingColumns(sortingColumns(l.SortColumns)...)),
	)
	return e
}

func sortingColumns(names []string) []pq.SortingColumn {
	cols := make([]pq.SortingColumn, len(names))
	for i, n := range names {
		cols[i] = pq.Ascending(n)
	}
	return cols
}

// plan sorts the rows of batches by (hour, series key, time), keeping the
// arrival order of equal rows so that the same input always gives the same
// files. The result is valid until the next call.
func (e *encoder) plan(batches []arrow.RecordBatch) []hourGroup {
	l := e.l
	clear(e.series)
	e.seriesKeys = e.seriesKeys[:0]
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
					e.seriesKeys = append(e.seriesKeys, s.Value(i)) // copied below
				}
				for j := len(e.seriesKeys) - nk; j < len(e.seriesKeys); j++ {
					e.seriesKeys[j] = string([]byte(e.seriesKeys[j]))
				}
			}
			e.rowSeries = append(e.rowSeries, id)
			e.rowSlot = append(e.rowSlot, int32(slot))
			e.rowTs = append(e.rowTs, t)
			e.refs = append(e.refs, rowRef(uint64(b)<<32|uint64(i)))
		}
	}

	// Rank the series by their key strings, then the hours.
	nSeries := len(e.series)
	order := make([]int32, nSeries)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		ka := e.seriesKeys[int(a)*nk : int(a+1)*nk]
		kb := e.seriesKeys[int(b)*nk : int(b+1)*nk]
		return slices.Compare(ka, kb)
	})
	rank := make([]int32, nSeries)
	for r, id := range order {
		rank[id] = int32(r)
	}
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
	e.sortedTs = slices.Grow(e.sortedTs[:0], n)[:n]
	next := slices.Clone(e.counts[:nBuckets])
	for i := range e.refs {
		k := bucket(i)
		p := next[k]
		next[k]++
		e.sortedRefs[p] = e.refs[i]
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
		e.groups = append(e.groups, hourGroup{hour: e.hours[slot], refs: e.sortedRefs[lo:hi]})
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

// writeFile writes refs of batches as one Parquet file to out.
func (e *encoder) writeFile(out io.Writer, batches []arrow.RecordBatch, refs []rowRef) error {
	e.w.Reset(out)
	for start := 0; start < len(refs); start += e.cfg.RowGroupRows {
		rg := refs[start:min(start+e.cfg.RowGroupRows, len(refs))]
		for c := range e.l.cols {
			if err := e.writeColumn(c, batches, rg); err != nil {
				return fmt.Errorf("column %s: %w", e.l.Schema.Field(c).Name, err)
			}
		}
		if err := e.w.Flush(); err != nil {
			return err
		}
	}
	return e.w.Close()
}

// chunkRows is how many rows are handed to a column writer at once.
const chunkRows = 4096

func (e *encoder) writeColumn(c int, batches []arrow.RecordBatch, refs []rowRef) error {
	cws := e.w.ColumnWriters()
	leaf := e.l.leaf[c]
	nullable := e.l.Schema.Field(c).Nullable
	e.arrs = e.arrs[:0]
	for _, b := range batches {
		e.arrs = append(e.arrs, b.Column(c))
	}
	for start := 0; start < len(refs); start += chunkRows {
		chunk := refs[start:min(start+chunkRows, len(refs))]
		if e.l.cols[c] == kindStringMap {
			if err := e.writeMapChunk(cws[leaf], cws[leaf+1], leaf, nullable, chunk); err != nil {
				return err
			}
			continue
		}
		e.vals = e.vals[:0]
		for _, r := range chunk {
			e.vals = append(e.vals, e.value(c, r, nullable, leaf))
		}
		if _, err := cws[leaf].WriteRowValues(e.vals); err != nil {
			return err
		}
	}
	return nil
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// value returns the Parquet value of column c at r.
func (e *encoder) value(c int, r rowRef, nullable bool, leaf int) pq.Value {
	a := e.arrs[r.batch()]
	i := r.row()
	def := 0
	if nullable {
		if a.IsNull(i) {
			return pq.NullValue().Level(0, 0, leaf)
		}
		def = 1
	}
	var v pq.Value
	switch e.l.cols[c] {
	case kindTimestamp:
		t := int64(a.(*array.Timestamp).Value(i))
		if a.DataType().(*arrow.TimestampType).Unit == arrow.Second {
			t *= 1000
		}
		v = pq.Int64Value(t)
	case kindString:
		v = pq.ByteArrayValue(bytesOf(a.(*array.String).Value(i)))
	case kindLargeString:
		v = pq.ByteArrayValue(bytesOf(a.(*array.LargeString).Value(i)))
	case kindFloat64:
		v = pq.DoubleValue(a.(*array.Float64).Value(i))
	case kindFloat32:
		v = pq.FloatValue(a.(*array.Float32).Value(i))
	case kindInt64:
		v = pq.Int64Value(a.(*array.Int64).Value(i))
	case kindInt32:
		v = pq.Int32Value(a.(*array.Int32).Value(i))
	case kindBool:
		v = pq.BooleanValue(a.(*array.Boolean).Value(i))
	}
	return v.Level(0, def, leaf)
}

// writeMapChunk writes the key and value leaves of a map<string,string>
// column for the rows of chunk.
func (e *encoder) writeMapChunk(kw, vw *pq.ColumnWriter, leaf int, nullable bool, chunk []rowRef) error {
	base := 0 // definition level of a present, empty map
	if nullable {
		base = 1
	}
	kcol, vcol := leaf, leaf+1
	e.vals, e.vals2 = e.vals[:0], e.vals2[:0]
	for _, r := range chunk {
		m := e.arrs[r.batch()].(*array.Map)
		i := r.row()
		if nullable && m.IsNull(i) {
			e.vals = append(e.vals, pq.NullValue().Level(0, 0, kcol))
			e.vals2 = append(e.vals2, pq.NullValue().Level(0, 0, vcol))
			continue
		}
		lo, hi := m.ValueOffsets(i)
		if lo == hi {
			e.vals = append(e.vals, pq.NullValue().Level(0, base, kcol))
			e.vals2 = append(e.vals2, pq.NullValue().Level(0, base, vcol))
			continue
		}
		keys := m.Keys().(*array.String)
		items := m.Items().(*array.String)
		itemsNullable := m.DataType().(*arrow.MapType).ItemField().Nullable
		for j := lo; j < hi; j++ {
			rep := 1
			if j == lo {
				rep = 0
			}
			e.vals = append(e.vals, pq.ByteArrayValue(bytesOf(keys.Value(int(j)))).Level(rep, base+1, kcol))
			switch {
			case itemsNullable && items.IsNull(int(j)):
				e.vals2 = append(e.vals2, pq.NullValue().Level(rep, base+1, vcol))
			case itemsNullable:
				e.vals2 = append(e.vals2, pq.ByteArrayValue(bytesOf(items.Value(int(j)))).Level(rep, base+2, vcol))
			default:
				e.vals2 = append(e.vals2, pq.ByteArrayValue(bytesOf(items.Value(int(j)))).Level(rep, base+1, vcol))
			}
		}
	}
	if _, err := kw.WriteRowValues(e.vals); err != nil {
		return err
	}
	_, err := vw.WriteRowValues(e.vals2)
	return err
}
