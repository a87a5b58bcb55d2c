// Package ipcsafe decodes Arrow IPC streams from outside (journal files,
// Kafka messages) without trusting them: arrow-go sizes slices and buffers
// from lengths inside the metadata, so a malformed stream could make it
// exhaust memory (a fatal error, not a recoverable panic) or recurse
// without end. Check bounds every vector the reader sizes allocations from
// and every buffer against its message's body, and Decode caps each
// allocation and turns any remaining panic into an error.
package ipcsafe

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

const (
	maxFieldDepth = 64
	// maxExpansion bounds decoded buffer size relative to the frame size
	// (LZ4 cannot expand data more than ~255 times).
	maxExpansion = 256
)

// Arrow IPC message header types (format/Message.fbs).
const (
	fbHeaderSchema          = 1
	fbHeaderDictionaryBatch = 2
	fbHeaderRecordBatch     = 3
)

// Arrow IPC body compression codecs (format/Message.fbs, CompressionType).
const (
	fbCompressionLZ4Frame = 0
	fbCompressionZSTD     = 1
)

// Arrow field types whose arrays have variadic data buffers
// (format/Schema.fbs, Type).
const (
	fbTypeBinaryView = 23
	fbTypeUtf8View   = 24
)

type fbChecker struct {
	buf    []byte
	budget int // tables left to visit, bounded by the buffer size
	views  *viewCounts
}

// viewCounts is how many view arrays (one variadic buffer count each) the
// stream's schema puts in a record batch and in each dictionary's batch.
// arrow-go reads a count per view array without checking the counts
// vector's length, so a batch must carry at least that many.
type viewCounts struct {
	batch int
	dicts map[int64]int
}

// Check walks the metadata of every message of an IPC stream.
func Check(stream []byte) error {
	views := &viewCounts{dicts: map[int64]int{}}
	for len(stream) > 0 {
		if len(stream) < 4 {
			return fmt.Errorf("truncated message length")
		}
		n := binary.LittleEndian.Uint32(stream)
		stream = stream[4:]
		if n == 0xFFFFFFFF {
			if len(stream) < 4 {
				return fmt.Errorf("truncated message length")
			}
			n = binary.LittleEndian.Uint32(stream)
			stream = stream[4:]
		}
		if n == 0 {
			return nil // end of stream
		}
		if uint64(n) > uint64(len(stream)) {
			return fmt.Errorf("message metadata of %d bytes exceeds the stream", n)
		}
		body, err := checkMessage(stream[:n], views)
		if err != nil {
			return err
		}
		stream = stream[n:]
		if body < 0 || body > int64(len(stream)) {
			return fmt.Errorf("message body of %d bytes exceeds the stream", body)
		}
		stream = stream[body:]
	}
	return nil
}

// checkMessage verifies one Message flatbuffer and returns its body length.
func checkMessage(meta []byte, views *viewCounts) (int64, error) {
	if len(meta) < 8 {
		return 0, fmt.Errorf("message metadata too short")
	}
	c := &fbChecker{buf: meta, budget: len(meta) / 4, views: views}
	msg, err := c.root()
	if err != nil {
		return 0, err
	}
	var body int64
	if o := msg.Offset(fbSlot(3)); o != 0 {
		body = msg.GetInt64(msg.Pos + flatbuffers.UOffsetT(o))
	}
	if body < 0 {
		return 0, fmt.Errorf("message body length %d is negative", body)
	}
	var kind byte
	if o := msg.Offset(fbSlot(1)); o != 0 {
		kind = msg.GetByte(msg.Pos + flatbuffers.UOffsetT(o))
	}
	if err := c.keyValues(msg, 4); err != nil {
		return 0, err
	}
	hdr, ok, err := c.table(msg, 2)
	if err != nil || !ok {
		return body, err
	}
	switch kind {
	case fbHeaderSchema:
		err = c.schema(hdr)
	case fbHeaderRecordBatch:
		err = c.recordBatch(hdr, body, views.batch)
	case fbHeaderDictionaryBatch:
		var id int64
		if o := hdr.Offset(fbSlot(0)); o != 0 {
			id = hdr.GetInt64(hdr.Pos + flatbuffers.UOffsetT(o))
		}
		var data flatbuffers.Table
		if data, ok, err = c.table(hdr, 1); err == nil && ok {
			err = c.recordBatch(data, body, views.dicts[id])
		}
	}
	return body, err
}

func fbSlot(i int) flatbuffers.VOffsetT { return flatbuffers.VOffsetT(4 + 2*i) }

func (c *fbChecker) inBounds(pos uint64) bool { return pos <= uint64(len(c.buf)) }

func (c *fbChecker) visit() error {
	c.budget--
	if c.budget < 0 {
		return fmt.Errorf("metadata refers to more tables than it can hold")
	}
	return nil
}

func (c *fbChecker) root() (flatbuffers.Table, error) {
	pos := uint64(flatbuffers.GetUOffsetT(c.buf))
	if !c.inBounds(pos + 4) {
		return flatbuffers.Table{}, fmt.Errorf("metadata root out of bounds")
	}
	return flatbuffers.Table{Bytes: c.buf, Pos: flatbuffers.UOffsetT(pos)}, c.visit()
}

// table returns the sub-table in slot of t, if present.
func (c *fbChecker) table(t flatbuffers.Table, slot int) (flatbuffers.Table, bool, error) {
	o := t.Offset(fbSlot(slot))
	if o == 0 {
		return flatbuffers.Table{}, false, nil
	}
	at := uint64(t.Pos) + uint64(o)
	if !c.inBounds(at + 4) {
		return flatbuffers.Table{}, false, fmt.Errorf("table offset out of bounds")
	}
	pos := at + uint64(flatbuffers.GetUOffsetT(c.buf[at:]))
	if !c.inBounds(pos + 4) {
		return flatbuffers.Table{}, false, fmt.Errorf("table out of bounds")
	}
	return flatbuffers.Table{Bytes: c.buf, Pos: flatbuffers.UOffsetT(pos)}, true, c.visit()
}

// vector checks the vector in slot of t (elements of elem bytes) lies
// inside the buffer, and returns its start and length.
func (c *fbChecker) vector(t flatbuffers.Table, slot, elem int) (start uint64, n int, err error) {
	o := t.Offset(fbSlot(slot))
	if o == 0 {
		return 0, 0, nil
	}
	at := uint64(t.Pos) + uint64(o)
	if !c.inBounds(at + 4) {
		return 0, 0, fmt.Errorf("vector offset out of bounds")
	}
	vec := at + uint64(flatbuffers.GetUOffsetT(c.buf[at:]))
	if !c.inBounds(vec + 4) {
		return 0, 0, fmt.Errorf("vector out of bounds")
	}
	n = int(flatbuffers.GetUOffsetT(c.buf[vec:]))
	start = vec + 4
	if !c.inBounds(start + uint64(n)*uint64(elem)) {
		return 0, 0, fmt.Errorf("vector of %d elements exceeds the metadata", n)
	}
	return start, n, nil
}

// tables calls fn for each table of the vector of tables in slot of t.
func (c *fbChecker) tables(t flatbuffers.Table, slot int, fn func(flatbuffers.Table) error) error {
	start, n, err := c.vector(t, slot, 4)
	if err != nil {
		return err
	}
	for i := range n {
		at := start + uint64(i)*4
		pos := at + uint64(flatbuffers.GetUOffsetT(c.buf[at:]))
		if !c.inBounds(pos + 4) {
			return fmt.Errorf("vector element out of bounds")
		}
		if err := c.visit(); err != nil {
			return err
		}
		if err := fn(flatbuffers.Table{Bytes: c.buf, Pos: flatbuffers.UOffsetT(pos)}); err != nil {
			return err
		}
	}
	return nil
}

// keyValues checks a custom_metadata vector of KeyValue{key, value}.
func (c *fbChecker) keyValues(t flatbuffers.Table, slot int) error {
	return c.tables(t, slot, func(kv flatbuffers.Table) error {
		if _, _, err := c.vector(kv, 0, 1); err != nil {
			return err
		}
		_, _, err := c.vector(kv, 1, 1)
		return err
	})
}

func (c *fbChecker) schema(s flatbuffers.Table) error {
	if err := c.keyValues(s, 2); err != nil {
		return err
	}
	if _, _, err := c.vector(s, 3, 8); err != nil {
		return err
	}
	var batch int
	dicts := map[int64]int{}
	if err := c.tables(s, 1, func(f flatbuffers.Table) error { return c.field(f, 0, &batch, dicts) }); err != nil {
		return err
	}
	// A second schema message is an error to the reader; counting the
	// most any schema asks keeps the check on the safe side.
	c.views.batch = max(c.views.batch, batch)
	for id, n := range dicts {
		c.views.dicts[id] = max(c.views.dicts[id], n)
	}
	return nil
}

// field checks a Field: name, type, dictionary, children, custom_metadata.
// It counts the field's view arrays in *views, or, for a dictionary-encoded
// field, in dicts under its dictionary's id (the batch holds its indices).
func (c *fbChecker) field(f flatbuffers.Table, depth int, views *int, dicts map[int64]int) error {
	if depth > maxFieldDepth {
		return fmt.Errorf("fields nested deeper than %d", maxFieldDepth)
	}
	if _, _, err := c.vector(f, 0, 1); err != nil {
		return err
	}
	if typ, ok, err := c.table(f, 3); err != nil {
		return err
	} else if ok {
		// Union.typeIds is the only vector inside a type table.
		if _, _, err := c.vector(typ, 1, 4); err != nil {
			return err
		}
	}
	if dict, ok, err := c.table(f, 4); err != nil {
		return err
	} else if ok {
		if _, _, err := c.table(dict, 1); err != nil {
			return err
		}
		var id int64
		if o := dict.Offset(fbSlot(0)); o != 0 {
			id = dict.GetInt64(dict.Pos + flatbuffers.UOffsetT(o))
		}
		n := dicts[id]
		defer func() { dicts[id] = n }()
		views = &n
	}
	var typ byte
	if o := f.Offset(fbSlot(2)); o != 0 {
		typ = f.GetByte(f.Pos + flatbuffers.UOffsetT(o))
	}
	if typ == fbTypeBinaryView || typ == fbTypeUtf8View {
		*views++
	}
	if err := c.keyValues(f, 6); err != nil {
		return err
	}
	return c.tables(f, 5, func(child flatbuffers.Table) error { return c.field(child, depth+1, views, dicts) })
}

// recordBatch checks a RecordBatch: nodes, buffers, compression,
// variadicBufferCounts (one per view array of the batch, views), and that every buffer lies inside the message body
// of body bytes. arrow-go slices a buffer out of the body without checking
// its end against the body's length, only against the capacity behind it:
// a buffer running past the body would read the stream's next bytes, or
// the padding of a copied body.
func (c *fbChecker) recordBatch(rb flatbuffers.Table, body int64, views int) error {
	if _, _, err := c.vector(rb, 1, 16); err != nil {
		return err
	}
	compressed, err := c.compression(rb)
	if err != nil {
		return err
	}
	start, n, err := c.vector(rb, 2, 16)
	if err != nil {
		return err
	}
	// A view column has as many data buffers as its variadic count says;
	// arrow-go allocates a slice of that many before it reads one, so a
	// count is bounded by the buffers the message has.
	vstart, vn, err := c.vector(rb, 4, 8)
	if err != nil {
		return err
	}
	if vn < views {
		return fmt.Errorf("%d variadic buffer counts for %d view arrays", vn, views)
	}
	var variadic int64
	for i := range vn {
		count := int64(binary.LittleEndian.Uint64(c.buf[vstart+uint64(i)*8:]))
		if count < 0 || count > int64(n)-variadic {
			return fmt.Errorf("variadic buffer count %d exceeds the %d buffers of the message", count, n)
		}
		variadic += count
	}
	for i := range n {
		at := start + uint64(i)*16
		off := int64(binary.LittleEndian.Uint64(c.buf[at:]))
		length := int64(binary.LittleEndian.Uint64(c.buf[at+8:]))
		if off < 0 || length < 0 || off > body || length > body-off {
			return fmt.Errorf("buffer %d (offset %d, %d bytes) exceeds the message body of %d bytes", i, off, length, body)
		}
		if compressed && length > 0 && length < 8 {
			return fmt.Errorf("compressed buffer %d of %d bytes is shorter than its 8-byte length prefix", i, length)
		}
	}
	return nil
}

// compression checks the BodyCompression of a RecordBatch, if any, and
// reports whether its buffers are compressed.
func (c *fbChecker) compression(rb flatbuffers.Table) (bool, error) {
	bc, ok, err := c.table(rb, 3)
	if err != nil || !ok {
		return false, err
	}
	var codec byte // LZ4_FRAME when absent
	if o := bc.Offset(fbSlot(0)); o != 0 {
		codec = bc.GetByte(bc.Pos + flatbuffers.UOffsetT(o))
	}
	if codec != fbCompressionLZ4Frame && codec != fbCompressionZSTD {
		return false, fmt.Errorf("unknown body compression codec %d", codec)
	}
	return true, nil
}

// limitAllocator refuses (with a recoverable panic) any single allocation
// larger than limit, so that a length field cannot make the decoder ask the
// runtime for more memory than exists.
type limitAllocator struct {
	memory.Allocator
	limit int
}

func (a limitAllocator) Allocate(size int) []byte {
	a.check(size)
	return a.Allocator.Allocate(size)
}

func (a limitAllocator) Reallocate(size int, b []byte) []byte {
	a.check(size)
	return a.Allocator.Reallocate(size, b)
}

func (a limitAllocator) check(size int) {
	if size < 0 || size > a.limit {
		panic(fmt.Sprintf("allocation of %d bytes exceeds the limit of %d for this frame", size, a.limit))
	}
}
