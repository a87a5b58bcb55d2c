package journal

import (
	"bytes"
	"fmt"
	"hash/crc32"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/ipcsafe"
)

// Compression selects the IPC body compression of published batches.
type Compression int

// Compression codecs. Readers accept either whatever the journal was opened
// with: the codec is recorded inside each IPC stream.
const (
	// CompressionLZ4 compresses IPC buffers with LZ4 frames (the default).
	CompressionLZ4 Compression = iota
	// CompressionNone stores IPC buffers as they are.
	CompressionNone
)

// String returns lz4 or none.
func (c Compression) String() string {
	if c == CompressionNone {
		return "none"
	}
	return "lz4"
}

// encoded is one batch serialised as an IPC stream, with its checksum.
type encoded struct {
	buf bytes.Buffer
	crc uint32
}

// encode writes rec as a self-contained IPC stream (schema + one batch) into
// e, reusing e's buffer.
func encode(e *encoded, rec arrow.RecordBatch, c Compression, mem memory.Allocator) error {
	e.buf.Reset()
	opts := []ipc.Option{ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem)}
	if c == CompressionLZ4 {
		opts = append(opts, ipc.WithLZ4())
	}
	w := ipc.NewWriter(&e.buf, opts...)
	if err := w.Write(rec); err != nil {
		_ = w.Close()
		return fmt.Errorf("encode batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	e.crc = crc32.Checksum(e.buf.Bytes(), castagnoli)
	return nil
}

// decode reads the single record batch of a frame's IPC stream. The batch
// owns its memory (body is not referenced after decode returns). Malformed
// input is an error, never a panic.
func decode(body []byte, mem memory.Allocator) (arrow.RecordBatch, error) {
	rec, err := ipcsafe.Decode(body, mem)
	if err != nil {
		return nil, fmt.Errorf("%w: IPC stream: %v", errCorrupt, err)
	}
	return rec, nil
}
