package parquet

import (
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	pq "github.com/parquet-go/parquet-go"
	"github.com/zeebo/xxh3"
)

// nullKind is the kind byte digest.add hashes for a null Parquet value:
const nullKind byte = 0xff // byte(pq.NullValue().Kind()), Kind being ^0

// addBatch adds every row of rec, a batch of l's Arrow schema, to d. It
// hashes exactly the bytes digest.add hashes for the same row read back from
// a file of l's Parquet schema, so that the batches compaction reads can be
// checked against the row reader's digest of their file.
func (d *digest) addBatch(l *layout, rec arrow.RecordBatch) {
	cols := make([]func(b []byte, i int) []byte, len(l.cols))
	for c := range l.cols {
		cols[c] = digestColumn(l, c, rec.Column(c))
	}
	for i := range int(rec.NumRows()) {
		b := d.buffer[:0]
		for _, col := range cols {
			b = col(b, i)
		}
		d.buffer = b
		h := xxh3.Hash128(b)
		d.Rows++
		d.SumLo += h.Lo
		d.SumHi += h.Hi
	}
}

// digestColumn returns the function appending the digest bytes of row i of
// Arrow column c.
func digestColumn(l *layout, c int, arr arrow.Array) func(b []byte, i int) []byte {
	leaf := uint64(l.leaf[c])
	field := l.Schema.Field(c)
	def := byte(definitionLevel(field.Nullable))
	head := func(b []byte, col uint64, rep, def, kind byte) []byte {
		b = binary.AppendUvarint(b, col)
		return append(b, rep, def, kind)
	}
	present := func(b []byte, kind byte, raw []byte) []byte {
		b = head(b, leaf, 0, def, kind)
		b = binary.AppendUvarint(b, uint64(len(raw)))
		return append(b, raw...)
	}
	fixed := func(b []byte, kind byte, v uint64, size int) []byte {
		b = head(b, leaf, 0, def, kind)
		b = binary.AppendUvarint(b, uint64(size))
		for k := range size {
			b = append(b, byte(v>>(8*k)))
		}
		return b
	}
	nullable := field.Nullable && arr.NullN() > 0
	var value func(b []byte, i int) []byte
	switch a := arr.(type) {
	case *array.Timestamp:
		mul := int64(1)
		if field.Type.(*arrow.TimestampType).Unit == arrow.Second {
			mul = 1000 // stored as milliseconds
		}
		value = func(b []byte, i int) []byte { return fixed(b, byte(pq.Int64), uint64(int64(a.Value(i))*mul), 8) }
	case *array.String:
		value = func(b []byte, i int) []byte { return present(b, byte(pq.ByteArray), bytesOf(a.Value(i))) }
	case *array.LargeString:
		value = func(b []byte, i int) []byte { return present(b, byte(pq.ByteArray), bytesOf(a.Value(i))) }
	case *array.Float64:
		value = func(b []byte, i int) []byte { return fixed(b, byte(pq.Double), math.Float64bits(a.Value(i)), 8) }
	case *array.Float32:
		value = func(b []byte, i int) []byte {
			return fixed(b, byte(pq.Float), uint64(math.Float32bits(a.Value(i))), 4)
		}
	case *array.Int64:
		value = func(b []byte, i int) []byte { return fixed(b, byte(pq.Int64), uint64(a.Value(i)), 8) }
	case *array.Int32:
		value = func(b []byte, i int) []byte { return fixed(b, byte(pq.Int32), uint64(uint32(a.Value(i))), 4) }
	case *array.Boolean:
		value = func(b []byte, i int) []byte {
			v := uint64(0)
			if a.Value(i) {
				v = 1
			}
			return fixed(b, byte(pq.Boolean), v, 1)
		}
	case *array.Map:
		return digestMap(leaf, field.Nullable, a)
	}
	if !nullable {
		return value
	}
	return func(b []byte, i int) []byte {
		if arr.IsNull(i) {
			return head(b, leaf, 0, 0, nullKind)
		}
		return value(b, i)
	}
}

// digestMap is digestColumn for a map<string,string> column: the keys of a
// row, then its values, as the two leaves of a Parquet row hold them.
func digestMap(leaf uint64, nullable bool, m *array.Map) func(b []byte, i int) []byte {
	base := byte(definitionLevel(nullable)) // level of a present, empty map
	offsets := m.Offsets()[m.Data().Offset():]
	keys := m.Keys().(*array.String)
	items := m.Items().(*array.String)
	itemsNullable := m.DataType().(*arrow.MapType).ItemField().Nullable
	head := func(b []byte, col uint64, rep, def, kind byte) []byte {
		b = binary.AppendUvarint(b, col)
		return append(b, rep, def, kind)
	}
	str := func(b []byte, col uint64, rep, def byte, s string) []byte {
		b = head(b, col, rep, def, byte(pq.ByteArray))
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	return func(b []byte, i int) []byte {
		if nullable && m.IsNull(i) {
			b = head(b, leaf, 0, 0, nullKind)
			return head(b, leaf+1, 0, 0, nullKind)
		}
		lo, hi := int(offsets[i]), int(offsets[i+1])
		if lo == hi {
			b = head(b, leaf, 0, base, nullKind)
			return head(b, leaf+1, 0, base, nullKind)
		}
		for j := lo; j < hi; j++ {
			b = str(b, leaf, repOf(j, lo), base+1, keys.Value(j))
		}
		for j := lo; j < hi; j++ {
			switch {
			case itemsNullable && items.IsNull(j):
				b = head(b, leaf+1, repOf(j, lo), base+1, nullKind)
			case itemsNullable:
				b = str(b, leaf+1, repOf(j, lo), base+2, items.Value(j))
			default:
				b = str(b, leaf+1, repOf(j, lo), base+1, items.Value(j))
			}
		}
		return b
	}
}

func repOf(j, lo int) byte {
	if j == lo {
		return 0
	}
	return 1
}
