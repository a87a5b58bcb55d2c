package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk format (little endian).
//
// A segment file is named after the offset of its first frame
// (%020d.seg) and starts with a 16-byte header: the magic "RCNJSEG1" and that
// base offset again. Frames follow back to back:
//
//	0  uint32 length of key+body
//	4  uint32 CRC-32C of body ‖ bytes 8..frameHeaderSize ‖ key
//	8  uint64 offset
//	16 uint16 key length
//	18 uint16 flags (0)
//	20 key, then body: one Arrow IPC stream (schema + one record batch)
//
// The CRC covers the body first so that publishers can checksum their body
// in parallel and the committer only extends it with the header it fills in.
const (
	segMagic        = "RCNJSEG1"
	segHeaderSize   = 16
	frameHeaderSize = 20
	segSuffix       = ".seg"
	maxKeyLen       = 1<<16 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a frame or segment that fails verification.
var errCorrupt = errors.New("corrupt frame")

func segmentName(base int64) string {
	return fmt.Sprintf("%020d%s", base, segSuffix)
}

// parseSegmentName returns the base offset of a segment file name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

func putSegmentHeader(b []byte, base int64) {
	copy(b[:8], segMagic)
	binary.LittleEndian.PutUint64(b[8:16], uint64(base))
}

func checkSegmentHeader(b []byte, base int64) error {
	if len(b) < segHeaderSize {
		return fmt.Errorf("%w: short segment header (%d bytes)", errCorrupt, len(b))
	}
	if string(b[:8]) != segMagic {
		return fmt.Errorf("%w: bad segment magic %q", errCorrupt, b[:8])
	}
	if got := int64(binary.LittleEndian.Uint64(b[8:16])); got != base {
		return fmt.Errorf("%w: segment header says base %d, file name says %d", errCorrupt, got, base)
	}
	return nil
}

// frameHeader is the decoded fixed part of a frame.
type frameHeader struct {
	length uint32 // key + body
	crc    uint32
	offset int64
	keyLen uint16
	flags  uint16
}

func (h frameHeader) size() int64 { return frameHeaderSize + int64(h.length) }

func parseFrameHeader(b []byte) (frameHeader, error) {
	h := frameHeader{
		length: binary.LittleEndian.Uint32(b[0:4]),
		crc:    binary.LittleEndian.Uint32(b[4:8]),
		offset: int64(binary.LittleEndian.Uint64(b[8:16])),
		keyLen: binary.LittleEndian.Uint16(b[16:18]),
		flags:  binary.LittleEndian.Uint16(b[18:20]),
	}
	switch {
	case h.flags != 0:
		return h, fmt.Errorf("%w: unknown flags %#x", errCorrupt, h.flags)
	case uint32(h.keyLen) > h.length:
		return h, fmt.Errorf("%w: key length %d exceeds frame length %d", errCorrupt, h.keyLen, h.length)
	case h.offset < 0:
		return h, fmt.Errorf("%w: negative offset", errCorrupt)
	}
	return h, nil
}

// fillFrameHeader writes the header of a frame whose body checksum is
// bodyCRC into hdr (frameHeaderSize+len(key) bytes) and returns it.
func fillFrameHeader(hdr []byte, offset int64, key string, bodyLen int, bodyCRC uint32) []byte {
	hdr = hdr[:frameHeaderSize+len(key)]
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(key)+bodyLen))
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(offset))
	binary.LittleEndian.PutUint16(hdr[16:18], uint16(len(key)))
	binary.LittleEndian.PutUint16(hdr[18:20], 0)
	copy(hdr[frameHeaderSize:], key)
	crc := crc32.Update(bodyCRC, castagnoli, hdr[8:])
	binary.LittleEndian.PutUint32(hdr[4:8], crc)
	return hdr
}

// checkFrame verifies a whole frame (header, key and body) read from disk
// against the offset it must carry, and returns its key and body.
func checkFrame(b []byte, want int64) (key, body []byte, err error) {
	if len(b) < frameHeaderSize {
		return nil, nil, fmt.Errorf("%w: short frame header", errCorrupt)
	}
	h, err := parseFrameHeader(b)
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) != h.size() {
		return nil, nil, fmt.Errorf("%w: frame length %d, have %d bytes", errCorrupt, h.length, len(b)-frameHeaderSize)
	}
	if h.offset != want {
		return nil, nil, fmt.Errorf("%w: frame carries offset %d, expected %d", errCorrupt, h.offset, want)
	}
	key = b[frameHeaderSize : frameHeaderSize+int(h.keyLen)]
	body = b[frameHeaderSize+int(h.keyLen):]
	crc := crc32.Update(crc32.Checksum(body, castagnoli), castagnoli, b[8:frameHeaderSize+int(h.keyLen)])
	if crc != h.crc {
		return nil, nil, fmt.Errorf("%w: checksum mismatch at offset %d", errCorrupt, want)
	}
	return key, body, nil
}
