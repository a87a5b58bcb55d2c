package parquet

import (
	"sync"

	kzstd "github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec is a Parquet zstd codec (compress.Codec) whose encoders keep a
// bounded window. parquet-go's own codec uses the encoder's default window
// (8 MiB, a 16 MiB history per pooled encoder); the live writer's pages
// hold one flush's rows, so a smaller window costs next to nothing in size
// and keeps the resident memory of recond down. Output is deterministic:
// the same page always compresses to the same bytes.
type zstdCodec struct {
	level  kzstd.EncoderLevel
	window int // bytes, a power of two

	encoders sync.Pool // *kzstd.Encoder
	decoders sync.Pool // *kzstd.Decoder
}

func newZstdCodec(level, window int) *zstdCodec {
	return &zstdCodec{level: kzstd.EncoderLevelFromZstd(level), window: window}
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode appends the compressed src to dst[:0].
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e, _ := c.encoders.Get().(*kzstd.Encoder)
	if e == nil {
		var err error
		e, err = kzstd.NewWriter(nil,
			kzstd.WithEncoderLevel(c.level),
			kzstd.WithWindowSize(c.window),
			kzstd.WithLowerEncoderMem(true),
			kzstd.WithEncoderConcurrency(1),
			kzstd.WithZeroFrames(true),
			kzstd.WithEncoderCRC(false),
		)
		if err != nil {
			return dst, err
		}
	}
	defer c.encoders.Put(e)
	return e.EncodeAll(src, dst[:0]), nil
}

// Decode appends the decompressed src to dst[:0].
func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	d, _ := c.decoders.Get().(*kzstd.Decoder)
	if d == nil {
		var err error
		d, err = kzstd.NewReader(nil, kzstd.WithDecoderConcurrency(1))
		if err != nil {
			return dst, err
		}
	}
	defer c.decoders.Put(d)
	return d.DecodeAll(src, dst[:0])
}
