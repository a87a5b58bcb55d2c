package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// scanSealed indexes a sealed segment from its frame headers. Sealed
// segments were fsynced before the next one was created, so any damage is
// reported, never repaired.
func scanSealed(path string, base int64) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	var hdr [frameHeaderSize]byte
	if _, err := f.ReadAt(hdr[:segHeaderSize], 0); err != nil {
		return nil, fmt.Errorf("read segment header: %w", noEOF(err))
	}
	if err := checkSegmentHeader(hdr[:segHeaderSize], base); err != nil {
		return nil, err
	}
	seg := &segment{base: base, path: path, size: segHeaderSize}
	for pos := int64(segHeaderSize); pos < size; {
		off := base + int64(len(seg.pos))
		if size-pos < frameHeaderSize {
			return nil, fmt.Errorf("byte %d (offset %d): %w: %d trailing bytes", pos, off, errCorrupt, size-pos)
		}
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return nil, fmt.Errorf("byte %d: %w", pos, noEOF(err))
		}
		h, err := parseFrameHeader(hdr[:])
		if err == nil && h.offset != off {
			err = fmt.Errorf("%w: frame carries offset %d", errCorrupt, h.offset)
		}
		if err == nil && pos+h.size() > size {
			err = fmt.Errorf("%w: frame of %d bytes runs past the end of the file", errCorrupt, h.size())
		}
		if err != nil {
			return nil, fmt.Errorf("byte %d (offset %d): %w", pos, off, err)
		}
		seg.pos = append(seg.pos, pos)
		pos += h.size()
		seg.size = pos
	}
	return seg, nil
}

// recoverTail opens the last segment for appending, verifying every frame
// (length, CRC, offset) and cutting off a torn or corrupt tail.
func (j *Journal) recoverTail(path string, base int64) (*os.File, *segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	seg, err := j.verifyTail(f, path, base)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, seg, nil
}

func (j *Journal) verifyTail(f *os.File, path string, base int64) (*segment, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	seg := &segment{base: base, path: path, size: segHeaderSize}
	var hdr [segHeaderSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read segment header %s: %w", path, err)
	}
	if herr := checkSegmentHeader(hdr[:n], base); herr != nil {
		if size > segHeaderSize {
			return nil, fmt.Errorf("segment %s has a damaged header but holds data (restore or move the file away): %w", path, herr)
		}
		// A crash while the segment was being created: it holds no frame.
		j.log.Warn("journal: rewrote torn segment header", "segment", path, "bytes", size)
		putSegmentHeader(hdr[:], base)
		if _, err := f.WriteAt(hdr[:], 0); err != nil {
			return nil, fmt.Errorf("rewrite segment header %s: %w", path, err)
		}
		if err := j.sync(f); err != nil {
			return nil, fmt.Errorf("rewrite segment header %s: %w", path, err)
		}
		return seg, nil
	}
	var buf []byte
	pos := int64(segHeaderSize)
	var cause error
	for pos < size {
		off := base + int64(len(seg.pos))
		if cause = readFrame(f, pos, size, off, &buf); cause != nil {
			if !errors.Is(cause, errCorrupt) {
				return nil, fmt.Errorf("verify segment %s at byte %d: %w", path, pos, cause)
			}
			break
		}
		seg.pos = append(seg.pos, pos)
		pos += int64(len(buf))
	}
	seg.size = pos
	if cause == nil {
		return seg, nil
	}
	j.log.Warn("journal: cut torn tail",
		"segment", path, "offset", base+int64(len(seg.pos)), "byte", pos, "bytes", size-pos, "reason", cause)
	if err := f.Truncate(pos); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	if err := j.sync(f); err != nil {
		return nil, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	return seg, nil
}

// readFrame reads and verifies the frame at pos (which must carry offset
// off) of a file of the given size into *buf.
func readFrame(f *os.File, pos, size, off int64, buf *[]byte) error {
	if size-pos < frameHeaderSize {
		return fmt.Errorf("%w: %d bytes, too short for a frame header", errCorrupt, size-pos)
	}
	var hdr [frameHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], pos); err != nil {
		return noEOF(err)
	}
	h, err := parseFrameHeader(hdr[:])
	if err != nil {
		return err
	}
	if pos+h.size() > size {
		return fmt.Errorf("%w: frame of %d bytes runs past the end of the file", errCorrupt, h.size())
	}
	b := grow(*buf, int(h.size()))
	if _, err := f.ReadAt(b, pos); err != nil {
		return noEOF(err)
	}
	*buf = b
	_, _, err = checkFrame(b, off)
	return err
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
