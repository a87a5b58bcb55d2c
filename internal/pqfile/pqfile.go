// Package pqfile opens Parquet files from outside (the archive as found on
// disk) after checking their frame, so that a damaged or hostile file is an
// error rather than a huge allocation: parquet-go sizes its footer buffer
// from the file's last bytes before checking them against the file size.
package pqfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	pq "github.com/parquet-go/parquet-go"
)

const magic = "PAR1"

// ErrNotParquet is returned for a file whose frame (magic bytes, footer
// length) is not a Parquet file's.
var ErrNotParquet = errors.New("not a Parquet file")

// Open checks the file's frame — "PAR1" at both ends, a footer that fits
// in the file — then opens it with parquet-go.
func Open(r io.ReaderAt, size int64, opts ...pq.FileOption) (*pq.File, error) {
	if size < 2*int64(len(magic))+4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotParquet, size)
	}
	var head [4]byte
	if _, err := r.ReadAt(head[:], 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("read footer length: %w", err)
	}
	if !bytes.Equal(head[:], []byte(magic)) || !bytes.Equal(tail[4:], []byte(magic)) {
		return nil, fmt.Errorf("%w: no PAR1 magic", ErrNotParquet)
	}
	if footer := int64(binary.LittleEndian.Uint32(tail[:4])); footer > size-2*int64(len(magic))-4 {
		return nil, fmt.Errorf("%w: footer of %d bytes in a file of %d", ErrNotParquet, footer, size)
	}
	return pq.OpenFile(r, size, opts...)
}
