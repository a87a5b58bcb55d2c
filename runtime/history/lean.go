package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/reconmon/recon/internal/pqfile"
)

// chunkRef locates the ts or value column chunk of one row group, so that a
// query whose series index is known reads and decodes just those bytes,
// without opening the file with the Parquet library (footer, schema, page
// readers). Any encoding and codec parquet-go knows is decoded; the column
// must be a flat INT64 (ts) or DOUBLE (value), required or optional.
type chunkRef struct {
	offset, length int64
	codec          format.CompressionCodec
	optional       bool
}

func (c chunkRef) end() int64 { return c.offset + c.length }

// errLean is wrapped by the errors of column chunks the lean decoder does
// not handle (a layout the archiver does not write); the caller then reads
// the file with the Parquet library instead.
var errLean = errors.New("column chunk not readable by the lean decoder")

// chunkRefOf returns the location of leaf column col of row group g of a
// file, and whether the lean decoder can read it.
func chunkRefOf(md *format.FileMetaData, schema *pq.Schema, g, col int, want pq.Kind, size int64) (chunkRef, bool) {
	leaf, ok := schema.Lookup(schema.Columns()[col]...)
	if !ok || leaf.MaxRepetitionLevel > 0 || leaf.MaxDefinitionLevel > 1 || leaf.Node.Type().Kind() != want {
		return chunkRef{}, false
	}
	m := &md.RowGroups[g].Columns[col].MetaData
	start := m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
		start = m.DictionaryPageOffset
	}
	if start < 0 || m.TotalCompressedSize < 0 || start > size || m.TotalCompressedSize > size-start {
		return chunkRef{}, false
	}
	return chunkRef{offset: start, length: m.TotalCompressedSize, codec: m.Codec, optional: leaf.MaxDefinitionLevel == 1}, true
}

// chunkDecoder decodes rows of ts and value column chunks, reusing its
// buffers across chunks.
type chunkDecoder struct {
	proto  thrift.CompactProtocol
	br     bytes.Reader
	dec    *thrift.Decoder
	page   []byte // decompressed page
	levels []uint8
	idx    []int32
	i64    []int64
	f64    []float64
	dictI  []int64
	dictF  []float64
}

// pageHeader decodes the page header at the start of b and returns it with
// its length in bytes.
func (d *chunkDecoder) pageHeader(b []byte) (*format.PageHeader, int, error) {
	d.br.Reset(b)
	if d.dec == nil {
		d.dec = thrift.NewDecoder(d.proto.NewReader(&d.br))
	} else {
		d.dec.Reset(d.proto.NewReader(&d.br))
	}
	h := new(format.PageHeader)
	if err := d.dec.Decode(h); err != nil {
		return nil, 0, err
	}
	return h, len(b) - d.br.Len(), nil
}

// column receives the decoded rows [start, end) of a chunk, in order.
type column interface {
	// decode decodes the values of a page body (after the levels) with
	// enc, or maps dictionary indexes through the dictionary.
	decode(enc encoding.Encoding, src []byte) (int, error)
	decodeDict(enc encoding.Encoding, src []byte) error
	useDict(idx []int32) (int, error)
	// plain takes the values of a PLAIN page body as they are: only the
	// rows emitted are read (a page may hold far more rows than a run).
	plain(src []byte) int
	// emit appends value i (or null) to the output.
	emit(i int)
	emitNull()
}

// int64s decodes rows [start, end) of an INT64 chunk (ts) into dst.
func (d *chunkDecoder) int64s(chunk []byte, ref chunkRef, start, end int64, dst []int64) ([]int64, error) {
	c := &int64Column{d: d, out: dst}
	err := d.rows(chunk, ref, start, end, c)
	return c.out, err
}

// float64s decodes rows [start, end) of a DOUBLE chunk (value) into dst;
// null rows are NaN.
func (d *chunkDecoder) float64s(chunk []byte, ref chunkRef, start, end int64, dst []float64) ([]float64, error) {
	c := &float64Column{d: d, out: dst}
	err := d.rows(chunk, ref, start, end, c)
	return c.out, err
}

// rows walks the pages of chunk (the chunk's bytes) and hands rows
// [start, end) to c. Pages before start are skipped without being
// decompressed; no page after end is read. Every length a header claims is
// checked against the chunk before it is used.
func (d *chunkDecoder) rows(chunk []byte, ref chunkRef, start, end int64, c column) error {
	codec := pq.LookupCompressionCodec(ref.codec)
	if codec.CompressionCodec() != ref.codec {
		return fmt.Errorf("%w: codec %v", errLean, ref.codec)
	}
	var maxDef uint8
	if ref.optional {
		maxDef = 1
	}
	hasDict := false
	row := int64(0)
	for pos := 0; row < end && pos < len(chunk); {
		h, n, err := d.pageHeader(chunk[pos:])
		if err != nil {
			return fmt.Errorf("page header at %d: %w", pos, err)
		}
		pos += n
		if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(chunk)-pos ||
			h.UncompressedPageSize < 0 || h.UncompressedPageSize > pqfile.MaxPageBytes {
			return fmt.Errorf("page at %d claims %d bytes (%d uncompressed), chunk has %d left", pos, h.CompressedPageSize, h.UncompressedPageSize, len(chunk)-pos)
		}
		body := chunk[pos : pos+int(h.CompressedPageSize)]
		pos += int(h.CompressedPageSize)
		switch h.Type {
		case format.DictionaryPage:
			if !h.DictionaryPageHeader.Valid {
				return errors.New("dictionary page without its header")
			}
			page, err := d.decompress(codec, body, h.UncompressedPageSize)
			if err != nil {
				return err
			}
			enc := h.DictionaryPageHeader.V.Encoding
			//lint:ignore SA1019 older writers still write it
			if enc == format.PlainDictionary {
				enc = format.Plain
			}
			if err := c.decodeDict(pq.LookupEncoding(enc), page); err != nil {
				return fmt.Errorf("dictionary page: %w", err)
			}
			hasDict = true
		case format.DataPage:
			if !h.DataPageHeader.Valid {
				return errors.New("data page without its header")
			}
			ph := &h.DataPageHeader.V
			nv := int64(ph.NumValues)
			if nv < 0 || nv > pqfile.MaxPageBytes {
				return fmt.Errorf("data page claims %d values", nv)
			}
			if row+nv <= start {
				row += nv
				continue
			}
			page, err := d.decompress(codec, body, h.UncompressedPageSize)
			if err != nil {
				return err
			}
			levels := page[:0]
			if maxDef > 0 {
				if len(page) < 4 {
					return errors.New("data page too short for its levels")
				}
				ln := int(uint32(page[0]) | uint32(page[1])<<8 | uint32(page[2])<<16 | uint32(page[3])<<24)
				if ln < 0 || ln > len(page)-4 {
					return fmt.Errorf("definition levels of %d bytes in a page of %d", ln, len(page))
				}
				levels, page = page[4:4+ln], page[4+ln:]
			}
			if err := d.page1(c, ph.Encoding, hasDict, levels, page, maxDef, nv, row, start, end); err != nil {
				return err
			}
			row += nv
		case format.DataPageV2:
			if !h.DataPageHeaderV2.Valid {
				return errors.New("data page v2 without its header")
			}
			ph := &h.DataPageHeaderV2.V
			nv := int64(ph.NumValues)
			if nv < 0 || nv > pqfile.MaxPageBytes || ph.NumRows != ph.NumValues {
				return fmt.Errorf("data page v2 claims %d values in %d rows", nv, ph.NumRows)
			}
			if row+nv <= start {
				row += nv
				continue
			}
			rl, dl := int(ph.RepetitionLevelsByteLength), int(ph.DefinitionLevelsByteLength)
			if rl != 0 || dl < 0 || dl > len(body) {
				return fmt.Errorf("data page v2 levels (%d, %d bytes) in a page of %d", rl, dl, len(body))
			}
			levels, data := body[:dl], body[dl:]
			if !ph.IsCompressed.Valid || ph.IsCompressed.V {
				if data, err = d.decompress(codec, data, h.UncompressedPageSize-int32(dl)); err != nil {
					return err
				}
			}
			if err := d.page1(c, ph.Encoding, hasDict, levels, data, maxDef, nv, row, start, end); err != nil {
				return err
			}
			row += nv
		}
	}
	if row < end {
		return fmt.Errorf("chunk ends at row %d, before %d", row, end)
	}
	return nil
}

// page1 decodes one data page's levels and values, and emits its rows
// that fall in [start, end); the page's first row is row.
func (d *chunkDecoder) page1(c column, enc format.Encoding, hasDict bool, levels, data []byte, maxDef uint8, nv, row, start, end int64) error {
	var n int
	var err error
	switch enc {
	//lint:ignore SA1019 older writers still write PLAIN_DICTIONARY
	case format.RLEDictionary, format.PlainDictionary:
		if !hasDict {
			return errors.New("dictionary-encoded page without a dictionary")
		}
		d.idx, err = pq.LookupEncoding(format.RLEDictionary).DecodeInt32(d.idx[:0], data)
		if err == nil {
			n, err = c.useDict(d.idx)
		}
	case format.Plain:
		if len(data)%8 != 0 {
			return fmt.Errorf("data page values: plain values of %d bytes", len(data))
		}
		n = c.plain(data)
	default:
		e := pq.LookupEncoding(enc)
		if e.Encoding() != enc {
			return fmt.Errorf("%w: encoding %v", errLean, enc)
		}
		n, err = c.decode(e, data)
	}
	if err != nil {
		return fmt.Errorf("data page values: %w", err)
	}
	lo, hi := max(start-row, 0), min(end-row, nv)
	if maxDef == 0 {
		if int64(n) < nv {
			return fmt.Errorf("data page holds %d values, claims %d", n, nv)
		}
		for i := lo; i < hi; i++ {
			c.emit(int(i))
		}
		return nil
	}
	d.levels, err = (&rle.Encoding{BitWidth: 1}).DecodeLevels(d.levels[:0], levels)
	if err != nil {
		return fmt.Errorf("definition levels: %w", err)
	}
	if int64(len(d.levels)) < nv {
		return fmt.Errorf("data page holds %d definition levels, claims %d values", len(d.levels), nv)
	}
	vi := 0
	for i := range hi {
		defined := d.levels[i] == maxDef
		if i >= lo {
			if !defined {
				c.emitNull()
			} else if vi < n {
				c.emit(vi)
			} else {
				return fmt.Errorf("data page holds %d values, its levels more", n)
			}
		}
		if defined {
			vi++
		}
	}
	return nil
}

// decompress returns a page body decompressed into the decoder's buffer.
func (d *chunkDecoder) decompress(codec compress.Codec, body []byte, size int32) ([]byte, error) {
	if codec.CompressionCodec() == format.Uncompressed {
		return body, nil
	}
	if cap(d.page) < int(size) {
		d.page = make([]byte, 0, pow2(int64(size)))
	}
	out, err := codec.Decode(d.page[:0], body)
	if err != nil {
		return nil, fmt.Errorf("decompress page: %w", err)
	}
	if len(out) != int(size) {
		return nil, fmt.Errorf("page decompressed to %d bytes, its header says %d", len(out), size)
	}
	d.page = out
	return out, nil
}

type int64Column struct {
	d    *chunkDecoder
	vals []int64
	raw  []byte // the values of a PLAIN page, when not nil
	out  []int64
}

func (c *int64Column) decode(enc encoding.Encoding, src []byte) (n int, err error) {
	c.d.i64, err = enc.DecodeInt64(c.d.i64[:0], src)
	c.vals, c.raw = c.d.i64, nil
	return len(c.vals), err
}

func (c *int64Column) plain(src []byte) int {
	c.raw = src
	return len(src) / 8
}

func (c *int64Column) decodeDict(enc encoding.Encoding, src []byte) (err error) {
	c.d.dictI, err = enc.DecodeInt64(c.d.dictI[:0], src)
	return err
}

func (c *int64Column) useDict(idx []int32) (int, error) {
	c.d.i64 = c.d.i64[:0]
	for _, k := range idx {
		if k < 0 || int(k) >= len(c.d.dictI) {
			return 0, fmt.Errorf("dictionary index %d out of %d", k, len(c.d.dictI))
		}
		c.d.i64 = append(c.d.i64, c.d.dictI[k])
	}
	c.vals, c.raw = c.d.i64, nil
	return len(c.vals), nil
}

func (c *int64Column) emit(i int) {
	if c.raw != nil {
		c.out = append(c.out, int64(binary.LittleEndian.Uint64(c.raw[8*i:])))
		return
	}
	c.out = append(c.out, c.vals[i])
}

// emitNull keeps rows aligned; a null ts is never written by the archiver
// (ts is required), and its row is dropped by its value.
func (c *int64Column) emitNull() { c.out = append(c.out, 0) }

type float64Column struct {
	d    *chunkDecoder
	vals []float64
	raw  []byte // the values of a PLAIN page, when not nil
	out  []float64
}

func (c *float64Column) decode(enc encoding.Encoding, src []byte) (n int, err error) {
	c.d.f64, err = enc.DecodeDouble(c.d.f64[:0], src)
	c.vals, c.raw = c.d.f64, nil
	return len(c.vals), err
}

func (c *float64Column) plain(src []byte) int {
	c.raw = src
	return len(src) / 8
}

func (c *float64Column) decodeDict(enc encoding.Encoding, src []byte) (err error) {
	c.d.dictF, err = enc.DecodeDouble(c.d.dictF[:0], src)
	return err
}

func (c *float64Column) useDict(idx []int32) (int, error) {
	c.d.f64 = c.d.f64[:0]
	for _, k := range idx {
		if k < 0 || int(k) >= len(c.d.dictF) {
			return 0, fmt.Errorf("dictionary index %d out of %d", k, len(c.d.dictF))
		}
		c.d.f64 = append(c.d.f64, c.d.dictF[k])
	}
	c.vals, c.raw = c.d.f64, nil
	return len(c.vals), nil
}

func (c *float64Column) emit(i int) {
	if c.raw != nil {
		c.out = append(c.out, math.Float64frombits(binary.LittleEndian.Uint64(c.raw[8*i:])))
		return
	}
	c.out = append(c.out, c.vals[i])
}

func (c *float64Column) emitNull() { c.out = append(c.out, math.NaN()) }
