package parquet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/internal/pqfile"
	"github.com/zeebo/xxh3"
)

// digestFile reads every row of the Parquet file in r into an
// order-independent digest. It decodes bytes from disk that may be damaged,
// so it turns a panic inside the Parquet library into an error: a bad file
// is reported, never fatal. It reads rows with the Parquet library's row
// reader, a decoder independent of the column reader compaction moves data
// with, so that the two check each other.
func digestFile(r io.ReaderAt, size int64) (d digest, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = digest{}, fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	if err := checkFooter(r, size); err != nil {
		return digest{}, err
	}
	f, err := pqfile.Open(r, size)
	if err != nil {
		return digest{}, err
	}
	if err := checkChunks(r, f, size); err != nil {
		return digest{}, err
	}
	buf := make([]pq.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				d.add(row)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = rows.Close()
				return digest{}, err
			}
			if n == 0 {
				_ = rows.Close()
				return digest{}, errors.New("row reader made no progress")
			}
		}
		if err := rows.Close(); err != nil {
			return digest{}, err
		}
	}
	if d.Rows != f.NumRows() {
		return digest{}, fmt.Errorf("read %d rows, footer says %d", d.Rows, f.NumRows())
	}
	return d, nil
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
func checkChunks(r io.ReaderAt, f *pq.File, size int64) error {
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
	// The page headers too: the Parquet reader allocates what one claims
	// before it reads the page.
	var pages pqfile.PageChecker
	if err := pages.CheckFile(r, size, f); err != nil {
		return fmt.Errorf("corrupt parquet file: %w", err)
	}
	return nil
}

// Bounds on what one archive file may hold; ours stay far below.
const (
	maxRows       = 1 << 32
	maxChunkBytes = 1 << 34
)

// digestPath is digestFile of the file at path.
func digestPath(path string) (digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return digest{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return digest{}, err
	}
	d, err := digestFile(f, fi.Size())
	if err != nil {
		return digest{}, fmt.Errorf("read %s: %w", path, err)
	}
	return d, nil
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
		// The value's bytes (Value.Bytes), prefixed by their length;
		// appended in place: Value.Bytes allocates for fixed-size kinds.
		switch v.Kind() {
		case pq.Boolean:
			b = append(b, 1)
		case pq.Int32, pq.Float:
			b = append(b, 4)
		case pq.Int64, pq.Double:
			b = append(b, 8)
		default:
			raw := v.Bytes()
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = append(b, raw...)
			continue
		}
		b = v.AppendBytes(b)
	}
	d.buffer = b
	h := xxh3.Hash128(b)
	d.Rows++
	d.SumLo += h.Lo
	d.SumHi += h.Hi
}

// merge adds the rows of o to d.
func (d *digest) merge(o *digest) {
	d.Rows += o.Rows
	d.SumLo += o.SumLo
	d.SumHi += o.SumHi
}

func (d *digest) equal(o *digest) bool {
	return d.Rows == o.Rows && d.SumLo == o.SumLo && d.SumHi == o.SumHi
}

func (d *digest) String() string {
	return fmt.Sprintf("%d rows, sum %016x%016x", d.Rows, d.SumHi, d.SumLo)
}
