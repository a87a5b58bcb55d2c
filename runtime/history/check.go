package history

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// maxPageBytes bounds a page's uncompressed size. The archiver buffers
// pages of a few MiB; a page header claiming more is damage, and trusting
// it would allocate that much before failing.
const maxPageBytes = 64 << 20

// checkChunks walks the page headers of the column chunks a query reads
// (leaves, in every row group) and checks that every page lies within its
// chunk, every chunk within the file, and no page claims more than
// maxPageBytes, and no page more values than its row group has rows (the
// columns read are neither repeated nor nested). The Parquet reader allocates what a page header claims
// before it reads the page, so a damaged header must be caught here.
func (r *reader) checkChunks(ra io.ReaderAt, size int64, md *format.FileMetaData, leaves []int) error {
	var proto thrift.CompactProtocol
	for g := range md.RowGroups {
		cols := md.RowGroups[g].Columns
		rows := md.RowGroups[g].NumRows
		for _, c := range leaves {
			if c >= len(cols) {
				return fmt.Errorf("row group %d has no column %d", g, c)
			}
			m := &cols[c].MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 0 || m.TotalCompressedSize < 0 || start > size || m.TotalCompressedSize > size-start {
				return fmt.Errorf("row group %d column %d: chunk [%d, +%d) outside the file (%d bytes)", g, c, start, m.TotalCompressedSize, size)
			}
			cr := &countingReader{r: io.NewSectionReader(ra, start, m.TotalCompressedSize)}
			if r.br == nil {
				r.br = bufio.NewReaderSize(cr, 4096)
			} else {
				r.br.Reset(cr)
			}
			dec := thrift.NewDecoder(proto.NewReader(r.br))
			for pos := int64(0); pos < m.TotalCompressedSize; {
				var h format.PageHeader
				if err := dec.Decode(&h); err != nil {
					return fmt.Errorf("row group %d column %d: page header at %d: %w", g, c, start+pos, err)
				}
				pos = cr.n - int64(r.br.Buffered())
				if h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > m.TotalCompressedSize-pos ||
					h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes {
					return fmt.Errorf("row group %d column %d: page at %d claims %d bytes (%d uncompressed), chunk has %d left",
						g, c, start+pos, h.CompressedPageSize, h.UncompressedPageSize, m.TotalCompressedSize-pos)
				}
				if n := pageValues(&h); n < 0 || n > rows {
					return fmt.Errorf("row group %d column %d: page at %d claims %d values, the row group has %d rows", g, c, start+pos, n, rows)
				}
				if _, err := r.br.Discard(int(h.CompressedPageSize)); err != nil {
					return fmt.Errorf("row group %d column %d: page at %d: %w", g, c, start+pos, err)
				}
				pos += int64(h.CompressedPageSize)
			}
		}
	}
	return nil
}

// checkFooter checks a Parquet file's trailer (footer length, magic)
// against its size: the reader allocates the length the trailer claims.
func checkFooter(ra io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes: too short for a Parquet file", size)
	}
	var tail [8]byte
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		return errors.New("no Parquet magic at the end")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("footer of %d bytes in a file of %d", n, size)
	}
	return nil
}

// pageValues is the number of values a page header claims.
func pageValues(h *format.PageHeader) int64 {
	switch {
	case h.DataPageHeader.Valid:
		return int64(h.DataPageHeader.V.NumValues)
	case h.DataPageHeaderV2.Valid:
		return max(int64(h.DataPageHeaderV2.V.NumValues), int64(h.DataPageHeaderV2.V.NumRows))
	case h.DictionaryPageHeader.Valid:
		return int64(h.DictionaryPageHeader.V.NumValues)
	}
	return 0
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// leaves returns the leaf columns a query reads.
func (c columns) leaves() []int { return []int{c.ts, c.source, c.metric, c.target, c.value} }
