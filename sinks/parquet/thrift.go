package parquet

import (
	"encoding/binary"
	"errors"
)

// errThrift reports footer bytes that are not well-formed Thrift.
var errThrift = errors.New("corrupt parquet footer")

// checkThrift walks a Thrift compact-protocol struct (the Parquet footer)
// without building it, checking that every length fits in the bytes that
// remain and that nesting stays shallow. The Parquet library allocates
// lists by their declared length before reading them, so a damaged footer
// could otherwise claim gigabytes.
func checkThrift(b []byte) error {
	c := thriftChecker{b: b}
	if err := c.structure(0); err != nil {
		return err
	}
	return nil
}

type thriftChecker struct {
	b []byte
	i int
}

const maxThriftDepth = 32

func (c *thriftChecker) byte() (byte, error) {
	if c.i >= len(c.b) {
		return 0, errThrift
	}
	v := c.b[c.i]
	c.i++
	return v, nil
}

func (c *thriftChecker) varint() (uint64, error) {
	v, n := binary.Uvarint(c.b[c.i:])
	if n <= 0 {
		return 0, errThrift
	}
	c.i += n
	return v, nil
}

func (c *thriftChecker) skip(n uint64) error {
	if n > uint64(len(c.b)-c.i) {
		return errThrift
	}
	c.i += int(n)
	return nil
}

func (c *thriftChecker) structure(depth int) error {
	if depth > maxThriftDepth {
		return errThrift
	}
	for {
		h, err := c.byte()
		if err != nil {
			return err
		}
		if h == 0 {
			return nil // stop
		}
		if h>>4 == 0 { // long form: the field id follows
			if _, err := c.varint(); err != nil {
				return err
			}
		}
		if err := c.value(h&0x0f, depth); err != nil {
			return err
		}
	}
}

// value skips one value of compact type t.
func (c *thriftChecker) value(t byte, depth int) error {
	switch t {
	case 1, 2: // bool in a field header
		return nil
	case 3: // byte
		return c.skip(1)
	case 4, 5, 6: // i16, i32, i64 as zigzag varints
		_, err := c.varint()
		return err
	case 7: // double
		return c.skip(8)
	case 8: // binary
		n, err := c.varint()
		if err != nil {
			return err
		}
		return c.skip(n)
	case 9, 10: // list, set
		h, err := c.byte()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = c.varint(); err != nil {
				return err
			}
		}
		if n > uint64(len(c.b)-c.i) { // every element takes a byte at least
			return errThrift
		}
		et := h & 0x0f
		for range n {
			if err := c.element(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 11: // map
		n, err := c.varint()
		if err != nil || n == 0 {
			return err
		}
		if n > uint64(len(c.b)-c.i) {
			return errThrift
		}
		kv, err := c.byte()
		if err != nil {
			return err
		}
		for range n {
			if err := c.element(kv>>4, depth+1); err != nil {
				return err
			}
			if err := c.element(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 12:
		return c.structure(depth + 1)
	}
	return errThrift
}

// element skips a list, set or map element; booleans there take a byte.
func (c *thriftChecker) element(t byte, depth int) error {
	if t == 1 || t == 2 {
		return c.skip(1)
	}
	return c.value(t, depth)
}
