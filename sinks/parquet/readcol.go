package parquet

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/internal/pqfile"
)

// batchReader reads archive files column by column into Arrow record
// batches of a table's Arrow schema, one batch per row group. Its builder
// and value buffers are reused from file to file; it is not safe for
// concurrent use.
type batchReader struct {
	l     *layout
	mem   memory.Allocator
	b     *array.RecordBuilder
	vals  []pq.Value
	keys  leafValues // a map column's key leaf, whole chunk
	items leafValues // its value leaf
}

func newBatchReader(l *layout, mem memory.Allocator) *batchReader {
	return &batchReader{l: l, mem: mem, b: array.NewRecordBuilder(mem, l.Schema), vals: make([]pq.Value, chunkRows)}
}

func (r *batchReader) release() { r.b.Release() }

// readPath reads the Parquet file at path, which must have the table's
// Parquet schema, and appends its row groups to batches.
func (r *batchReader) readPath(path string, batches []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return batches, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return batches, err
	}
	out, err := r.read(f, fi.Size(), batches)
	if err != nil {
		return out, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// read reads the Parquet file in r. It decodes bytes from disk that may be
// damaged, so it turns a panic inside the Parquet library into an error: a
// bad file is reported, never fatal. On error, the batches it appended are
// released and batches is returned as it was given.
func (r *batchReader) read(src io.ReaderAt, size int64, batches []arrow.RecordBatch) (out []arrow.RecordBatch, err error) {
	n0 := len(batches)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
		if err != nil {
			for _, b := range batches[n0:] {
				b.Release()
			}
			// The builders may hold columns of different lengths: start
			// afresh.
			r.b.Release()
			r.b = array.NewRecordBuilder(r.mem, r.l.Schema)
			out = batches[:n0]
		}
	}()
	if err := checkFooter(src, size); err != nil {
		return batches, err
	}
	f, err := pqfile.Open(src, size)
	if err != nil {
		return batches, err
	}
	if err := checkChunks(f, size); err != nil {
		return batches, err
	}
	if !pq.EqualNodes(f.Schema(), r.l.schema) {
		return batches, fmt.Errorf("schema differs from table %s", r.l.Name)
	}
	var rows int64
	for i, rg := range f.RowGroups() {
		n := int(rg.NumRows())
		chunks := rg.ColumnChunks()
		for c, kind := range r.l.cols {
			leaf := r.l.leaf[c]
			if kind == kindStringMap {
				err = r.readMap(c, chunks[leaf], chunks[leaf+1], n)
			} else {
				err = r.readColumn(c, kind, chunks[leaf], n)
			}
			if err != nil {
				return batches, fmt.Errorf("row group %d, column %s: %w", i, r.l.Schema.Field(c).Name, err)
			}
		}
		batches = append(batches, r.b.NewRecordBatch())
		rows += int64(n)
	}
	if rows != f.NumRows() {
		return batches, fmt.Errorf("read %d rows, footer says %d", rows, f.NumRows())
	}
	return batches, nil
}

// maxReserve caps the rows a builder reserves up front: the row count comes
// from a footer that may be damaged.
const maxReserve = 1 << 20

// eachValue calls fn with the values of chunk, in order, a buffer at a time.
func eachValue(chunk pq.ColumnChunk, buf []pq.Value, fn func([]pq.Value) error) error {
	pages := chunk.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			if n > 0 {
				if err := fn(buf[:n]); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return errors.New("page reader made no progress")
			}
		}
	}
}

// readColumn appends the n values of a flat column chunk to the builder of
// Arrow column c.
func (r *batchReader) readColumn(c int, kind columnKind, chunk pq.ColumnChunk, n int) error {
	fb := r.b.Field(c)
	fb.Reserve(min(n, maxReserve))
	got := 0
	var appendValue func(v pq.Value)
	switch kind {
	case kindTimestamp:
		tb := fb.(*array.TimestampBuilder)
		div := int64(1)
		if r.l.Schema.Field(c).Type.(*arrow.TimestampType).Unit == arrow.Second {
			div = 1000 // stored as milliseconds
		}
		appendValue = func(v pq.Value) { tb.UnsafeAppend(arrow.Timestamp(v.Int64() / div)) }
	case kindString:
		sb := fb.(*array.StringBuilder)
		appendValue = func(v pq.Value) { sb.BinaryBuilder.Append(v.ByteArray()) }
	case kindLargeString:
		sb := fb.(*array.LargeStringBuilder)
		appendValue = func(v pq.Value) { sb.BinaryBuilder.Append(v.ByteArray()) }
	case kindFloat64:
		b := fb.(*array.Float64Builder)
		appendValue = func(v pq.Value) { b.UnsafeAppend(v.Double()) }
	case kindFloat32:
		b := fb.(*array.Float32Builder)
		appendValue = func(v pq.Value) { b.UnsafeAppend(v.Float()) }
	case kindInt64:
		b := fb.(*array.Int64Builder)
		appendValue = func(v pq.Value) { b.UnsafeAppend(v.Int64()) }
	case kindInt32:
		b := fb.(*array.Int32Builder)
		appendValue = func(v pq.Value) { b.UnsafeAppend(v.Int32()) }
	case kindBool:
		b := fb.(*array.BooleanBuilder)
		appendValue = func(v pq.Value) { b.UnsafeAppend(v.Boolean()) }
	default:
		return fmt.Errorf("column kind %d has no reader", kind)
	}
	err := eachValue(chunk, r.vals, func(vals []pq.Value) error {
		if got+len(vals) > n {
			return fmt.Errorf("more than the row group's %d values", n)
		}
		got += len(vals)
		for _, v := range vals {
			if v.RepetitionLevel() != 0 {
				return errors.New("repeated value in a flat column")
			}
			if v.IsNull() {
				fb.AppendNull()
				continue
			}
			appendValue(v)
		}
		return nil
	})
	if err == nil && got != n {
		err = fmt.Errorf("%d values, the row group has %d rows", got, n)
	}
	return err
}

// readMap appends the n rows of a map<string,string> column, whose keys
// and values are the chunks kc and vc, to the builder of Arrow column c.
func (r *batchReader) readMap(c int, kc, vc pq.ColumnChunk, n int) error {
	if err := r.keys.read(kc, r.vals); err != nil {
		return err
	}
	if err := r.items.read(vc, r.vals); err != nil {
		return err
	}
	k, it := &r.keys, &r.items
	if len(k.rep) != len(it.rep) {
		return fmt.Errorf("%d map keys but %d values", len(k.rep), len(it.rep))
	}
	entry := int8(1) // definition level of a map entry
	if r.l.Schema.Field(c).Nullable {
		entry = 2
	}
	mb := r.b.Field(c).(*array.MapBuilder)
	kb := mb.KeyBuilder().(*array.StringBuilder)
	ib := mb.ItemBuilder().(*array.StringBuilder)
	mb.Reserve(min(n, maxReserve))
	rows := 0
	for i := range k.rep {
		if k.rep[i] != it.rep[i] {
			return errors.New("map keys and values are not aligned")
		}
		if k.rep[i] == 0 {
			if rows == n {
				return fmt.Errorf("more than the row group's %d rows", n)
			}
			rows++
			switch {
			case k.def[i] < entry-1:
				mb.AppendNull()
				continue
			case k.def[i] == entry-1:
				mb.Append(true) // an empty map
				continue
			}
			mb.Append(true)
		}
		if k.null[i] {
			return errors.New("null map key")
		}
		kb.BinaryBuilder.Append(k.value(i))
		if it.null[i] {
			ib.AppendNull()
		} else {
			ib.BinaryBuilder.Append(it.value(i))
		}
	}
	if rows != n {
		return fmt.Errorf("%d map rows, the row group has %d", rows, n)
	}
	return nil
}

// leafValues is a copy of the values of one leaf column chunk: their
// levels, whether null, and their bytes.
type leafValues struct {
	rep, def []int8
	null     []bool
	off      []int // value i is data[off[i]:off[i+1]]
	data     []byte
}

func (lv *leafValues) read(chunk pq.ColumnChunk, buf []pq.Value) error {
	lv.rep, lv.def, lv.null, lv.off, lv.data = lv.rep[:0], lv.def[:0], lv.null[:0], append(lv.off[:0], 0), lv.data[:0]
	return eachValue(chunk, buf, func(vals []pq.Value) error {
		for _, v := range vals {
			lv.rep = append(lv.rep, int8(v.RepetitionLevel()))
			lv.def = append(lv.def, int8(v.DefinitionLevel()))
			lv.null = append(lv.null, v.IsNull())
			if !v.IsNull() {
				lv.data = append(lv.data, v.ByteArray()...)
			}
			lv.off = append(lv.off, len(lv.data))
		}
		return nil
	})
}

func (lv *leafValues) value(i int) []byte { return lv.data[lv.off[i]:lv.off[i+1]] }
