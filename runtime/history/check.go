package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// checkFooter checks a Parquet file's trailer (footer length, magic)
// against its size: the reader allocates the length the trailer claims.
func checkFooter(ra io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes: too short for a Parquet file", size)
	}
	var tail [8]byte
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		return errors.New("no Parquet magic at the end")
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-12 {
		return fmt.Errorf("footer of %d bytes in a file of %d", n, size)
	}
	return nil
}

// leaves returns the leaf columns a query reads.
func (c columns) leaves() []int { return []int{c.ts, c.source, c.metric, c.target, c.value} }

// flatLeaves tells the page checker that every column the history reads
// is flat (neither repeated nor nested): a page holds a value per row.
func flatLeaves(int) bool { return true }
