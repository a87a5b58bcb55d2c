package ipcsafe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

// Decode reads the single record batch of an IPC stream (schema + one
// batch, buffers optionally LZ4/ZSTD-compressed). The batch owns its memory:
// stream is not referenced after Decode returns. Malformed input is an
// error, never a panic.
func Decode(stream []byte, mem memory.Allocator) (arrow.RecordBatch, error) {
	return decode(stream, mem, false)
}

// DecodeShared is Decode without the copy: the uncompressed buffers of the
// batch are slices of stream itself, which must therefore stay unmodified
// for as long as the batch (or anything sliced from it) lives. Use it for
// a stream nobody writes to again, such as a fetched Kafka message value.
// The checks are Decode's.
func DecodeShared(stream []byte, mem memory.Allocator) (arrow.RecordBatch, error) {
	return decode(stream, mem, true)
}

func decode(stream []byte, mem memory.Allocator, shared bool) (rec arrow.RecordBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			if rec != nil {
				rec.Release()
				rec = nil
			}
			err = fmt.Errorf("undecodable IPC stream: %v", r)
		}
	}()
	if err := Check(stream); err != nil {
		return nil, err
	}
	guard := limitAllocator{Allocator: mem, limit: maxExpansion*len(stream) + 1<<20}
	msgs := &streamMessages{rest: stream, shared: shared}
	msgs.refs.Add(1)
	rd, err := ipc.NewReaderFromMessageReader(msgs, ipc.WithAllocator(guard))
	if err != nil {
		return nil, err // the reader released msgs
	}
	defer rd.Release()
	if !rd.Next() {
		if err := rd.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("IPC stream holds no record batch")
	}
	rec = rd.RecordBatch()
	rec.Retain()
	if rows := rec.NumRows(); rows > maxRows(len(stream)) {
		rec.Release()
		return nil, fmt.Errorf("record batch claims %d rows in a %d-byte stream", rows, len(stream))
	}
	if rd.Next() {
		rec.Release()
		return nil, errors.New("IPC stream holds more than one record batch")
	}
	if err := rd.Err(); err != nil {
		rec.Release()
		return nil, err
	}
	return rec, nil
}

// maxRows bounds the rows a stream of n bytes can hold: one bit per row
// (a validity or boolean buffer) after the largest expansion a codec
// allows. Only a batch without buffers (no columns, or null-typed ones)
// could claim more, and whoever iterates its rows would never finish.
func maxRows(n int) int64 { return 8 * maxExpansion * int64(n) }

// streamMessages is an ipc.MessageReader over an in-memory IPC stream that
// Check accepted. Each message's metadata is a slice of the stream; its body
// is one too when shared is set and the body is 8-byte aligned in memory
// (Arrow's buffers are read in place as typed slices), and an aligned copy
// of exactly its length otherwise.
type streamMessages struct {
	rest   []byte
	shared bool
	refs   atomic.Int64
	msg    *ipc.Message
}

// Message returns the next message, io.EOF at the end of the stream. It is
// valid until the next call.
func (s *streamMessages) Message() (*ipc.Message, error) {
	if s.msg != nil {
		s.msg.Release()
		s.msg = nil
	}
	if len(s.rest) == 0 {
		return nil, io.EOF
	}
	n, err := s.u32()
	if err != nil {
		return nil, err
	}
	if n == 0xFFFFFFFF {
		if n, err = s.u32(); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, io.EOF // end-of-stream marker
	}
	if n < 8 || uint64(n) > uint64(len(s.rest)) {
		return nil, fmt.Errorf("message metadata of %d bytes does not fit the stream", n)
	}
	meta := s.rest[:n:n]
	s.rest = s.rest[n:]
	body := bodyLength(meta)
	if body < 0 || body > int64(len(s.rest)) {
		return nil, fmt.Errorf("message body of %d bytes exceeds the stream", body)
	}
	raw := s.rest[:body:body]
	s.rest = s.rest[body:]
	if !s.shared || (len(raw) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%8 != 0) {
		// A copy, 8-byte aligned, with exactly the body's capacity: an
		// allocator's copy would be padded, and a buffer the metadata
		// places past the body would read that padding instead of
		// failing as it does in place.
		words := make([]uint64, (len(raw)+7)/8)
		body := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), len(raw))
		copy(body, raw)
		raw = body
	}
	buf := memory.NewBufferBytes(raw)
	s.msg = ipc.NewMessage(memory.NewBufferBytes(meta), buf)
	buf.Release() // the message holds it
	return s.msg, nil
}

func (s *streamMessages) u32() (uint32, error) {
	if len(s.rest) < 4 {
		return 0, errors.New("truncated message length")
	}
	n := binary.LittleEndian.Uint32(s.rest)
	s.rest = s.rest[4:]
	return n, nil
}

// bodyLength reads Message.bodyLength from metadata Check verified.
func bodyLength(meta []byte) int64 {
	msg := flatbuffers.Table{Bytes: meta, Pos: flatbuffers.GetUOffsetT(meta)}
	if o := msg.Offset(fbSlot(3)); o != 0 {
		return msg.GetInt64(msg.Pos + flatbuffers.UOffsetT(o))
	}
	return 0
}

// Retain implements ipc.MessageReader.
func (s *streamMessages) Retain() { s.refs.Add(1) }

// Release implements ipc.MessageReader.
func (s *streamMessages) Release() {
	if s.refs.Add(-1) == 0 && s.msg != nil {
		s.msg.Release()
		s.msg = nil
	}
}

// Validate checks the offsets and lengths of every column of rec, so that a
// batch from an unchecksummed source is refused before anyone indexes it.
func Validate(rec arrow.RecordBatch) error {
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("column %d has %d rows, batch %d", i, col.Len(), rec.NumRows())
		}
		if err := validateBitmaps(col.Data()); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
		if err := validateArray(col); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

// validateBitmaps checks that every validity bitmap and fixed-width values
// buffer, of the array and of its children and dictionary, covers the
// array's rows, and that a struct's
// fields hold its rows. arrow-go's checks look at neither: counting the
// nulls over a short bitmap, or slicing a struct (a map's entries) whose
// fields are short, indexes past their ends.
func validateBitmaps(d arrow.ArrayData) error {
	if bufs := d.Buffers(); len(bufs) > 0 && bufs[0] != nil && d.DataType().ID() != arrow.NULL {
		if need := bitutil.BytesForBits(int64(d.Offset() + d.Len())); int64(bufs[0].Len()) < need {
			return fmt.Errorf("validity bitmap of %d bytes for %d rows at offset %d", bufs[0].Len(), d.Len(), d.Offset())
		}
	}
	// Nor do they check that a fixed-width array's values (a boolean's
	// bits, a dictionary's indices) cover its rows: reading them does.
	if fw, ok := d.DataType().(arrow.FixedWidthDataType); ok && d.Len() > 0 && d.DataType().ID() != arrow.NULL {
		bits := int64(fw.BitWidth())
		bufs := d.Buffers()
		if bits <= 0 {
			return fmt.Errorf("%s values of %d bits", d.DataType(), bits)
		}
		if need := bitutil.BytesForBits(int64(d.Offset()+d.Len()) * bits); len(bufs) < 2 || bufs[1] == nil || int64(bufs[1].Len()) < need {
			return fmt.Errorf("%s values shorter than %d rows at offset %d", d.DataType(), d.Len(), d.Offset())
		}
	}
	for i, c := range d.Children() {
		// A struct's fields are read at the struct's rows (slicing a map's
		// entries slices its key and item columns): each must hold them.
		if d.DataType().ID() == arrow.STRUCT && c.Len() < d.Offset()+d.Len() {
			return fmt.Errorf("struct field %d has %d rows, the struct %d at offset %d", i, c.Len(), d.Len(), d.Offset())
		}
		if err := validateBitmaps(c); err != nil {
			return err
		}
	}
	if d.DataType().ID() == arrow.DICTIONARY {
		if dict, ok := d.Dictionary().(*array.Data); ok && dict != nil {
			return validateBitmaps(dict)
		}
	}
	return nil
}

func validateArray(a arrow.Array) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid array: %v", r)
		}
	}()
	if s, ok := a.(*array.String); ok {
		return validateString(s)
	}
	if dt, ok := a.DataType().(arrow.DecimalType); ok {
		if err := validateDecimal(dt); err != nil {
			return err
		}
	}
	if v, ok := a.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return err
		}
	}
	switch arr := a.(type) {
	case *array.Map:
		// The entries struct must hold the rows the offsets point at (the
		// list check does not look inside it); its key and item columns
		// are validated whole.
		if entries, ok := arr.ListValues().(*array.Struct); ok {
			if err := entries.Validate(); err != nil {
				return err
			}
		}
		if err := validateArray(arr.Keys()); err != nil {
			return err
		}
		return validateArray(arr.Items())
	case *array.FixedSizeBinary:
		// arrow-go checks neither the width a schema declares nor the
		// values buffer's length against it.
		width := arr.DataType().(*arrow.FixedSizeBinaryType).ByteWidth
		d := arr.Data()
		if width <= 0 {
			return fmt.Errorf("fixed-size binary of width %d", width)
		}
		if bufs := d.Buffers(); d.Len() > 0 && (len(bufs) < 2 || bufs[1] == nil || int64(bufs[1].Len()) < int64(d.Offset()+d.Len())*int64(width)) {
			return fmt.Errorf("fixed-size binary values shorter than %d rows of %d bytes", d.Len(), width)
		}
	case *array.FixedSizeList:
		n, d := int64(arr.DataType().(*arrow.FixedSizeListType).Len()), arr.Data()
		if n < 0 {
			return fmt.Errorf("fixed-size list of %d values", n)
		}
		if int64(arr.ListValues().Len()) < int64(d.Offset()+d.Len())*n {
			return fmt.Errorf("fixed-size list of %d rows of %d values holds %d values", d.Len(), n, arr.ListValues().Len())
		}
		return validateArray(arr.ListValues())
	case array.ListLike:
		// The list check covers the offsets, not the values they index.
		return validateArray(arr.ListValues())
	case *array.Struct:
		for i := 0; i < arr.NumField(); i++ {
			if err := validateArray(arr.Field(i)); err != nil {
				return err
			}
		}
	case *array.Dictionary:
		return validateArray(arr.Dictionary())
	}
	return nil
}

// validateDecimal checks a decimal's precision and scale against the most
// digits its width holds. arrow-go takes any int32 from a schema; a value
// of a decimal scaled by 10^1,000,000,000 then takes gigabytes to print
// (found by FuzzDecode).
func validateDecimal(dt arrow.DecimalType) error {
	digits := map[int]int32{32: 9, 64: 18, 128: 38, 256: 76}[dt.BitWidth()]
	p, s := dt.GetPrecision(), dt.GetScale()
	if p < 1 || p > digits || s < -digits || s > digits {
		return fmt.Errorf("decimal%d of precision %d and scale %d (at most %d digits)", dt.BitWidth(), p, s, digits)
	}
	return nil
}

// validateString checks what (*array.String).ValidateFull checks, offsets
// in bounds and non-decreasing, every value valid UTF-8, with one UTF-8
// pass over the values' bytes instead of one per value: the values are
// each valid exactly when their concatenation is and none of them starts
// inside a character (on a continuation byte).
func validateString(a *array.String) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.Len() == 0 {
		return nil
	}
	offs := a.ValueOffsets()
	if offs[0] < 0 {
		return fmt.Errorf("string offset %d is negative", offs[0])
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] < offs[i-1] {
			return fmt.Errorf("string offsets decrease at index %d: %d < %d", i, offs[i], offs[i-1])
		}
	}
	data := a.ValueBytes()
	if !utf8.Valid(data) {
		return errors.New("string values are not valid UTF-8")
	}
	first := offs[0]
	for i, o := range offs[:len(offs)-1] {
		if at := int(o - first); at < len(data) && !utf8.RuneStart(data[at]) {
			return fmt.Errorf("string at index %d does not start on a UTF-8 character", i)
		}
	}
	return nil
}
