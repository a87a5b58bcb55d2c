package parquet

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/parquet-go/parquet-go/compress/zstd"
)

// The live writer's codec round-trips a page, compresses it the same way
// every time (a replay must rewrite the same file), and writes frames any
// zstd reader decodes.
func TestZstdCodecRoundTrip(t *testing.T) {
	page := make([]byte, 0, 3<<20)
	for i := range 3 << 17 { // 3 MiB of timestamps: larger than the window
		page = binary.LittleEndian.AppendUint64(page, uint64(1_717_200_000_000_000_000+int64(i%600)*60e9+int64(i*7919%5000)))
	}
	c := newZstdCodec(DefaultCompressionLevel, liveWindow)
	first, err := c.Encode(nil, page)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) >= len(page)/2 {
		t.Errorf("compressed %d bytes to %d", len(page), len(first))
	}
	again, err := c.Encode(make([]byte, 10), page)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("the same page compressed to different bytes")
	}
	for name, dec := range map[string]interface {
		Decode(dst, src []byte) ([]byte, error)
	}{"own": c, "parquet-go": &zstd.Codec{}} {
		got, err := dec.Decode(nil, first)
		if err != nil || !bytes.Equal(got, page) {
			t.Errorf("%s decoder: %d bytes back, err %v", name, len(got), err)
		}
	}
}
