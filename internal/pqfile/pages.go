package pqfile

import (
	"bufio"
	"fmt"
	"io"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// MaxPageBytes bounds a page's uncompressed size. The archiver buffers
// pages of a few MiB; a page header claiming more is damage, and trusting
// it would allocate that much before failing.
const MaxPageBytes = 64 << 20

// PageChecker walks page headers; it reuses its buffer from file to file
// and is not safe for concurrent use.
type PageChecker struct {
	br *bufio.Reader
}

// CheckPages walks the page headers of the column chunks leaves (in every
// row group of md, a file of size bytes read through ra) and checks that
// every chunk lies within the file, every page within its chunk, no page
// claims more than MaxPageBytes uncompressed and, for a flat leaf (neither
// repeated nor nested: flat(leaf)), no page claims more values than its
// row group has rows. The Parquet reader allocates what a page header
// claims before it reads the page, so a damaged header must be caught
// before the file's pages are read.
func (c *PageChecker) CheckPages(ra io.ReaderAt, size int64, md *format.FileMetaData, leaves []int, flat func(leaf int) bool) error {
	var proto thrift.CompactProtocol
	for g := range md.RowGroups {
		cols := md.RowGroups[g].Columns
		rows := md.RowGroups[g].NumRows
		for _, leaf := range leaves {
			if leaf >= len(cols) {
				return fmt.Errorf("row group %d has no column %d", g, leaf)
			}
			m := &cols[leaf].MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 0 || m.TotalCompressedSize < 0 || start > size || m.TotalCompressedSize > size-start {
				return fmt.Errorf("row group %d column %d: chunk [%d, +%d) outside the file (%d bytes)", g, leaf, start, m.TotalCompressedSize, size)
			}
			cr := &countingReader{r: io.NewSectionReader(ra, start, m.TotalCompressedSize)}
			if c.br == nil {
				c.br = bufio.NewReaderSize(cr, 4096)
			} else {
				c.br.Reset(cr)
			}
			dec := thrift.NewDecoder(proto.NewReader(c.br))
			for pos := int64(0); pos < m.TotalCompressedSize; {
				var h format.PageHeader
				if err := dec.Decode(&h); err != nil {
					return fmt.Errorf("row group %d column %d: page header at %d: %w", g, leaf, start+pos, err)
				}
				pos = cr.n - int64(c.br.Buffered())
				if h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > m.TotalCompressedSize-pos ||
					h.UncompressedPageSize < 0 || h.UncompressedPageSize > MaxPageBytes {
					return fmt.Errorf("row group %d column %d: page at %d claims %d bytes (%d uncompressed), chunk has %d left",
						g, leaf, start+pos, h.CompressedPageSize, h.UncompressedPageSize, m.TotalCompressedSize-pos)
				}
				if n := pageValues(&h); n < 0 || (flat(leaf) && n > rows) {
					return fmt.Errorf("row group %d column %d: page at %d claims %d values, the row group has %d rows", g, leaf, start+pos, n, rows)
				}
				if _, err := c.br.Discard(int(h.CompressedPageSize)); err != nil {
					return fmt.Errorf("row group %d column %d: page at %d: %w", g, leaf, start+pos, err)
				}
				pos += int64(h.CompressedPageSize)
			}
		}
	}
	return nil
}

// CheckFile is CheckPages over every column chunk of f, a file of size
// bytes read through ra.
func (c *PageChecker) CheckFile(ra io.ReaderAt, size int64, f *pq.File) error {
	schema := f.Schema()
	cols := schema.Columns()
	leaves := make([]int, len(cols))
	for i := range leaves {
		leaves[i] = i
	}
	flat := func(leaf int) bool {
		l, ok := schema.Lookup(cols[leaf]...)
		return ok && l.MaxRepetitionLevel == 0
	}
	return c.CheckPages(ra, size, f.Metadata(), leaves, flat)
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
