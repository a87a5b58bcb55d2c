package ipcsafe

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Decode reads the single record batch of an IPC stream (schema + one
// batch, buffers optionally LZ4/ZSTD-compressed). The batch owns its memory:
// stream is not referenced after Decode returns. Malformed input is an
// error, never a panic.
func Decode(stream []byte, mem memory.Allocator) (rec arrow.RecordBatch, err error) {
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
	limit := int64(len(stream))
	guard := limitAllocator{Allocator: mem, limit: maxExpansion*len(stream) + 1<<20}
	rd, err := ipc.NewReader(bytes.NewReader(stream),
		ipc.WithAllocator(guard), ipc.WithBodySizeLimit(limit), ipc.WithMetadataSizeLimit(limit))
	if err != nil {
		return nil, err
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
	if rd.Next() {
		rec.Release()
		return nil, errors.New("IPC stream holds more than one record batch")
	}
	return rec, nil
}

// Validate checks the offsets and lengths of every column of rec, so that a
// batch from an unchecksummed source is refused before anyone indexes it.
func Validate(rec arrow.RecordBatch) error {
	for i, col := range rec.Columns() {
		if int64(col.Len()) != rec.NumRows() {
			return fmt.Errorf("column %d has %d rows, batch %d", i, col.Len(), rec.NumRows())
		}
		if err := validateArray(col); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
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
	if v, ok := a.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return err
		}
	}
	switch arr := a.(type) {
	case *array.Map:
		if err := validateArray(arr.Keys()); err != nil {
			return err
		}
		return validateArray(arr.Items())
	case *array.Struct:
		for i := 0; i < arr.NumField(); i++ {
			if err := validateArray(arr.Field(i)); err != nil {
				return err
			}
		}
	}
	return nil
}
