package parquet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	pq "github.com/parquet-go/parquet-go"
	"github.com/zeebo/xxh3"
)

// fileRows is the content of one Parquet file.
type fileRows struct {
	schema *pq.Schema
	rows   []pq.Row
}

// readFile reads every row of the Parquet file in r. It decodes bytes from
// disk that may be damaged, so it turns a panic inside the Parquet library
// into an error: a bad file is reported, never fatal. Byte-array values are
// copied into arena, which the rows then reference.
func readFile(r io.ReaderAt, size int64, arena *arena) (out fileRows, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = fileRows{}, fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	if err := checkFooter(r, size); err != nil {
		return fileRows{}, err
	}
	f, err := pq.OpenFile(r, size)
	if err != nil {
		return fileRows{}, err
	}
	if err := checkChunks(f, size); err != nil {
		return fileRows{}, err
	}
	out.schema = f.Schema()
	buf := make([]pq.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				out.rows = append(out.rows, arena.cloneRow(row))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = rows.Close()
				return fileRows{}, err
			}
			if n == 0 {
				_ = rows.Close()
				return fileRows{}, errors.New("row reader made no progress")
			}
		}
		if err := rows.Close(); err != nil {
			return fileRows{}, err
		}
	}
	if int64(len(out.rows)) != f.NumRows() {
		return fileRows{}, fmt.Errorf("read %d rows, footer says %d", len(out.rows), f.NumRows())
	}
	return out, nil
}

// checkFooter checks the magic bytes and that the footer length fits in the
// file, before the Parquet library allocates a buffer of that length.
func checkFooter(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("not a parquet file: %d bytes", size)
	}
	var head, tail [4]byte
	var footer [8]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return err
	}
	if _, err := r.ReadAt(footer[:], size-8); err != nil {
		return err
	}
	copy(tail[:], footer[4:])
	if string(head[:]) != "PAR1" || string(tail[:]) != "PAR1" {
		return errors.New("not a parquet file: no PAR1 magic")
	}
	n := int64(binary.LittleEndian.Uint32(footer[:4]))
	if n > size-12 {
		return fmt.Errorf("corrupt parquet file: footer of %d bytes in a file of %d", n, size)
	}
	meta := make([]byte, n)
	if _, err := r.ReadAt(meta, size-8-n); err != nil {
		return err
	}
	return checkThrift(meta)
}

// checkChunks checks that every column chunk lies inside the file and that
// sizes and counts are plausible, so that damaged metadata cannot make the
// reader allocate without bound.
func checkChunks(f *pq.File, size int64) error {
	md := f.Metadata()
	if md.NumRows < 0 || md.NumRows > maxRows {
		return fmt.Errorf("corrupt parquet file: %d rows", md.NumRows)
	}
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 || rg.NumRows > md.NumRows {
			return fmt.Errorf("corrupt parquet file: row group %d has %d rows", i, rg.NumRows)
		}
		for _, c := range rg.Columns {
			m := c.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 4 || m.TotalCompressedSize < 0 || start+m.TotalCompressedSize > size ||
				m.TotalUncompressedSize < 0 || m.TotalUncompressedSize > maxChunkBytes ||
				m.NumValues < 0 || m.NumValues > maxRows*64 {
				return fmt.Errorf("corrupt parquet file: column %v of row group %d is out of bounds", m.PathInSchema, i)
			}
		}
	}
	return nil
}

// Bounds on what one archive file may hold; ours stay far below.
const (
	maxRows       = 1 << 32
	maxChunkBytes = 1 << 34
)

// readPath reads the Parquet file at path.
func readPath(path string, arena *arena) (fileRows, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileRows{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileRows{}, err
	}
	rows, err := readFile(f, fi.Size(), arena)
	if err != nil {
		return fileRows{}, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}

// arena holds copies of byte-array values in large chunks, so that reading
// a file does not allocate once per string.
type arena struct {
	chunk []byte
	vals  []pq.Value
}

const arenaChunk = 1 << 20

func (a *arena) bytes(b []byte) []byte {
	if len(b) > arenaChunk/4 {
		return append([]byte(nil), b...)
	}
	if len(a.chunk)+len(b) > cap(a.chunk) {
		a.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

func (a *arena) cloneRow(row pq.Row) pq.Row {
	if len(a.vals)+len(row) > cap(a.vals) {
		a.vals = make([]pq.Value, 0, max(4096, len(row)))
	}
	start := len(a.vals)
	for _, v := range row {
		if k := v.Kind(); k == pq.ByteArray || k == pq.FixedLenByteArray {
			b := a.bytes(v.ByteArray())
			if k == pq.ByteArray {
				v = pq.ByteArrayValue(b).Level(v.RepetitionLevel(), v.DefinitionLevel(), v.Column())
			} else {
				v = pq.FixedLenByteArrayValue(b).Level(v.RepetitionLevel(), v.DefinitionLevel(), v.Column())
			}
		}
		a.vals = append(a.vals, v)
	}
	return pq.Row(a.vals[start:len(a.vals):len(a.vals)])
}

// digest is an order-independent checksum of a set of rows: the row count
// and the sum of a 128-bit hash of every row. Two sets with the same digest
// hold the same rows (as a multiset) with overwhelming probability, whatever
// their order.
type digest struct {
	Rows   int64  `json:"rows"`
	SumLo  uint64 `json:"sum_lo"`
	SumHi  uint64 `json:"sum_hi"`
	buffer []byte
}

func (d *digest) add(row pq.Row) {
	b := d.buffer[:0]
	for _, v := range row {
		b = binary.AppendUvarint(b, uint64(v.Column()))
		b = append(b, byte(v.RepetitionLevel()), byte(v.DefinitionLevel()), byte(v.Kind()))
		if v.IsNull() {
			continue
		}
		raw := v.Bytes()
		b = binary.AppendUvarint(b, uint64(len(raw)))
		b = append(b, raw...)
	}
	d.buffer = b
	h := xxh3.Hash128(b)
	d.Rows++
	d.SumLo += h.Lo
	d.SumHi += h.Hi
}

func (d *digest) equal(o *digest) bool {
	return d.Rows == o.Rows && d.SumLo == o.SumLo && d.SumHi == o.SumHi
}

func (d *digest) String() string {
	return fmt.Sprintf("%d rows, sum %016x%016x", d.Rows, d.SumHi, d.SumLo)
}
