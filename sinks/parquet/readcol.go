package parquet

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/internal/pqfile"
)

// batchReader reads an archive file column by column into Arrow record
// batches of a table's Arrow schema, a bounded number of rows at a time: it
// holds one page per column and a few hundred decoded values per column,
// whatever the size of the file. Its builders are reused from batch to
// batch and from file to file; it is not safe for concurrent use.
type batchReader struct {
	l      *layout
	mem    memory.Allocator
	b      *array.RecordBuilder
	leaves []leafCursor // one per Parquet leaf column, over the row group being read

	f    *pq.File
	rgs  []pq.RowGroup
	rg   int   // row groups started
	left int   // rows of the row group being read not read yet
	rows int64 // rows read from the file
}

func newBatchReader(l *layout, mem memory.Allocator) *batchReader {
	return &batchReader{
		l:      l,
		mem:    mem,
		b:      array.NewRecordBuilder(mem, l.Schema),
		leaves: make([]leafCursor, len(l.schema.Columns())),
	}
}

// release closes the file being read, if any, and frees the builders.
func (r *batchReader) release() {
	r.close()
	r.b.Release()
}

// open starts reading the Parquet file in src, which must have the table's
// Parquet schema; a file being read is closed first. It decodes bytes from
// disk that may be damaged, so it turns a panic inside the Parquet library
// into an error: a bad file is reported, never fatal.
func (r *batchReader) open(src io.ReaderAt, size int64) (err error) {
	r.close()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	if err := checkFooter(src, size); err != nil {
		return err
	}
	f, err := pqfile.Open(src, size)
	if err != nil {
		return err
	}
	if err := checkChunks(src, f, size); err != nil {
		return err
	}
	if !pq.EqualNodes(f.Schema(), r.l.schema) {
		return fmt.Errorf("schema differs from table %s", r.l.Name)
	}
	r.f, r.rgs = f, f.RowGroups()
	return nil
}

// close stops reading the open file.
func (r *batchReader) close() {
	for i := range r.leaves {
		r.leaves[i].stop()
	}
	r.f, r.rgs, r.rg, r.left, r.rows = nil, nil, 0, 0, 0
}

// next reads the next rows of the open file, at most max and never across
// a row group, into a new batch. It returns io.EOF after the last row, once
// it has checked that the file held the rows its footer counts. It turns a
// panic inside the Parquet library into an error; after an error the
// reader must be opened again.
func (r *batchReader) next(max int) (rec arrow.RecordBatch, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// The builders may hold columns of different lengths: start
			// afresh.
			r.b.Release()
			r.b = array.NewRecordBuilder(r.mem, r.l.Schema)
			r.close()
		}
	}()
	if r.f == nil {
		return nil, errors.New("no file open")
	}
	for r.left == 0 {
		if r.rg == len(r.rgs) {
			if r.rows != r.f.NumRows() {
				return nil, fmt.Errorf("read %d rows, footer says %d", r.rows, r.f.NumRows())
			}
			return nil, io.EOF
		}
		r.startRowGroup()
		if r.left == 0 {
			if err := r.endRowGroup(); err != nil {
				return nil, err
			}
		}
	}
	n := min(max, r.left)
	for c, kind := range r.l.cols {
		leaf := &r.leaves[r.l.leaf[c]]
		if kind == kindStringMap {
			err = r.readMap(c, leaf, &r.leaves[r.l.leaf[c]+1], n)
		} else {
			err = r.readColumn(c, kind, leaf, n)
		}
		if err != nil {
			return nil, fmt.Errorf("row group %d, column %s: %w", r.rg-1, r.l.Schema.Field(c).Name, err)
		}
	}
	r.left -= n
	r.rows += int64(n)
	rec = r.b.NewRecordBatch()
	if r.left == 0 {
		if err := r.endRowGroup(); err != nil {
			rec.Release()
			return nil, err
		}
	}
	return rec, nil
}

func (r *batchReader) startRowGroup() {
	rg := r.rgs[r.rg]
	r.rg++
	r.left = int(rg.NumRows())
	for i, chunk := range rg.ColumnChunks() {
		r.leaves[i].start(chunk.Pages())
	}
}

// endRowGroup checks that every column chunk of the row group just read
// holds no more values, and closes them.
func (r *batchReader) endRowGroup() error {
	for i := range r.leaves {
		lc := &r.leaves[i]
		vals, err := lc.values()
		if err == nil && len(vals) > 0 {
			err = fmt.Errorf("row group %d: column %d has values beyond its %d rows", r.rg-1, i, r.rgs[r.rg-1].NumRows())
		}
		lc.stop()
		if !errors.Is(err, io.EOF) {
			return err
		}
	}
	return nil
}

// maxReserve caps the rows a builder reserves up front: the row count comes
// from a footer that may be damaged.
const maxReserve = 1 << 20

// leafValues is how many values a leaf cursor decodes at a time.
const leafValues = 512

// leafCursor reads the values of one column chunk in order, a page at a
// time, a few hundred values ahead of its reader.
type leafCursor struct {
	pages pq.Pages
	vr    pq.ValueReader // of the current page; nil between pages
	buf   []pq.Value     // values decoded, buf[pos:] not consumed yet
	pos   int
}

func (c *leafCursor) start(p pq.Pages) {
	c.stop()
	c.pages = p
}

func (c *leafCursor) stop() {
	if c.pages != nil {
		_ = c.pages.Close() // read-only: nothing to lose
	}
	c.pages, c.vr, c.buf, c.pos = nil, nil, c.buf[:0], 0
}

// values returns the decoded values not consumed yet, decoding more when
// there are none; io.EOF at the end of the chunk. They stay valid until the
// next call after they were all consumed.
func (c *leafCursor) values() ([]pq.Value, error) {
	if c.pos < len(c.buf) {
		return c.buf[c.pos:], nil
	}
	if cap(c.buf) == 0 {
		c.buf = make([]pq.Value, leafValues)
	}
	for {
		if c.vr == nil {
			p, err := c.pages.ReadPage()
			if err != nil {
				return nil, err
			}
			c.vr = p.Values()
		}
		n, err := c.vr.ReadValues(c.buf[:cap(c.buf)])
		switch {
		case errors.Is(err, io.EOF):
			c.vr = nil
		case err != nil:
			return nil, err
		case n == 0:
			return nil, errors.New("page reader made no progress")
		}
		if n > 0 {
			c.buf, c.pos = c.buf[:n], 0
			return c.buf, nil
		}
	}
}

// consume marks the first n values values returned as read.
func (c *leafCursor) consume(n int) { c.pos += n }

// readColumn appends the next n values of a flat column to the builder of
// Arrow column c.
func (r *batchReader) readColumn(c int, kind columnKind, lc *leafCursor, n int) error {
	fb := r.b.Field(c)
	fb.Reserve(min(n, maxReserve))
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
	for got := 0; got < n; {
		vals, err := lc.values()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the column chunk ends %d values short of the row group", n-got)
		}
		if err != nil {
			return err
		}
		vals = vals[:min(len(vals), n-got)]
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
		lc.consume(len(vals))
		got += len(vals)
	}
	return nil
}

// readMap appends the next n rows of a map<string,string> column, whose
// keys and values are read by kc and vc, to the builder of Arrow column c.
func (r *batchReader) readMap(c int, kc, vc *leafCursor, n int) error {
	entry := 1 // definition level of a map entry
	if r.l.Schema.Field(c).Nullable {
		entry = 2
	}
	mb := r.b.Field(c).(*array.MapBuilder)
	kb := mb.KeyBuilder().(*array.StringBuilder)
	ib := mb.ItemBuilder().(*array.StringBuilder)
	mb.Reserve(min(n, maxReserve))
	rows := 0
	inMap := false // the last row started holds entries
	for {
		ks, err := kc.values()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		vs, err := vc.values()
		if errors.Is(err, io.EOF) {
			return errors.New("more map keys than values")
		}
		if err != nil {
			return err
		}
		m := min(len(ks), len(vs))
		i := 0
		for ; i < m; i++ {
			k, it := &ks[i], &vs[i]
			if k.RepetitionLevel() != it.RepetitionLevel() {
				return errors.New("map keys and values are not aligned")
			}
			if k.RepetitionLevel() == 0 {
				if rows == n {
					break
				}
				rows++
				inMap = false
				switch def := k.DefinitionLevel(); {
				case def < entry-1:
					mb.AppendNull()
					continue
				case def == entry-1:
					mb.Append(true) // an empty map
					continue
				}
				mb.Append(true)
				inMap = true
			} else if !inMap {
				return errors.New("map entry outside a map")
			}
			if k.IsNull() {
				return errors.New("null map key")
			}
			kb.BinaryBuilder.Append(k.ByteArray())
			if it.IsNull() {
				ib.AppendNull()
			} else {
				ib.BinaryBuilder.Append(it.ByteArray())
			}
		}
		kc.consume(i)
		vc.consume(i)
		if i < m {
			break // at the first value of row n+1
		}
	}
	if rows != n {
		return fmt.Errorf("%d map rows, want %d", rows, n)
	}
	return nil
}
