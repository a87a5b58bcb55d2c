package kafkabus

import (
	"encoding/binary"
	"errors"
	"fmt"

	flatbuffers "github.com/google/flatbuffers/go"
)

// Slots of the Arrow IPC flatbuffer tables (format/Message.fbs,
// format/Schema.fbs) that hold vectors arrow-go sizes allocations from.
const (
	slotMessageHeader        = 8
	slotSchemaFields         = 6
	slotSchemaCustomMetadata = 8
	slotFieldChildren        = 14
	slotFieldCustomMetadata  = 16
	maxFieldDepth            = 64
)

// checkSchemaMessage verifies, before arrow-go reads it, that the vector
// lengths in the stream's first (schema) message fit in the message: the
// reader sizes slices from them, and a hostile length would exhaust memory
// (a fatal error no recover can catch).
func checkSchemaMessage(value []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid schema message: %v", r)
		}
	}()
	b := value
	if len(b) >= 4 && binary.LittleEndian.Uint32(b) == 0xFFFFFFFF {
		b = b[4:]
	}
	if len(b) < 4 {
		return errors.New("truncated stream")
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n <= 0 || n > len(b)-4 {
		return fmt.Errorf("schema message length %d does not fit in %d bytes", n, len(b)-4)
	}
	meta := b[4 : 4+n]
	msg := table(meta, flatbuffers.GetUOffsetT(meta))
	off := msg.Offset(slotMessageHeader)
	if off == 0 {
		return errors.New("schema message without header")
	}
	schema := table(meta, msg.Indirect(flatbuffers.UOffsetT(off)+msg.Pos))
	if err := checkVector(schema, slotSchemaCustomMetadata, len(meta)); err != nil {
		return err
	}
	return checkFields(schema, slotSchemaFields, len(meta), 0)
}

func table(buf []byte, pos flatbuffers.UOffsetT) flatbuffers.Table {
	if int(pos) >= len(buf) {
		panic(fmt.Sprintf("table offset %d outside %d bytes", pos, len(buf)))
	}
	return flatbuffers.Table{Bytes: buf, Pos: pos}
}

// checkVector checks that the vector in slot has no more elements than the
// buffer could hold (each element takes at least 4 bytes).
func checkVector(t flatbuffers.Table, slot flatbuffers.VOffsetT, size int) error {
	off := t.Offset(slot)
	if off == 0 {
		return nil
	}
	if n := t.VectorLen(flatbuffers.UOffsetT(off)); n < 0 || n*4 > size {
		return fmt.Errorf("vector of %d elements in a %d-byte message", n, size)
	}
	return nil
}

func checkFields(t flatbuffers.Table, slot flatbuffers.VOffsetT, size, depth int) error {
	if depth > maxFieldDepth {
		return errors.New("fields nested too deep")
	}
	if err := checkVector(t, slot, size); err != nil {
		return err
	}
	off := t.Offset(slot)
	if off == 0 {
		return nil
	}
	vec := t.Vector(flatbuffers.UOffsetT(off))
	for i := 0; i < t.VectorLen(flatbuffers.UOffsetT(off)); i++ {
		field := table(t.Bytes, t.Indirect(vec+flatbuffers.UOffsetT(i*4)))
		if err := checkVector(field, slotFieldCustomMetadata, size); err != nil {
			return err
		}
		if err := checkFields(field, slotFieldChildren, size, depth+1); err != nil {
			return err
		}
	}
	return nil
}
