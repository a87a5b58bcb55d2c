//go:build !linux

package history

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// readAt fills buf with the bytes of the file at path from off.
func readAt(path string, buf []byte, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.ReadAt(buf, off)
	return err
}

// readWhole reads the file at path into buf (grown when too small) and
// returns the bytes read; a file larger than max is an error.
func readWhole(path string, buf []byte, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	if fi.Size() > max {
		return buf[:0], fmt.Errorf("%s: %d bytes, more than the %d expected at most", path, fi.Size(), max)
	}
	if int64(cap(buf)) < fi.Size() {
		buf = make([]byte, fi.Size())
	}
	buf = buf[:fi.Size()]
	_, err = io.ReadFull(f, buf)
	return buf, err
}

// dayDir is a day directory (date=…) whose hour directories are stat'ed.
type dayDir struct{ path string }

// openDayDir checks that the directory at path exists.
func openDayDir(path string) (dayDir, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return dayDir{}, err
	}
	if !fi.IsDir() {
		return dayDir{}, &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	return dayDir{path}, nil
}

// statDir returns the modification time of the directory name in d; a
// name that is not a directory is syscall.ENOTDIR.
func (d dayDir) statDir(name string) (time.Time, error) {
	fi, err := os.Stat(filepath.Join(d.path, name))
	if err != nil {
		return time.Time{}, err
	}
	if !fi.IsDir() {
		return time.Time{}, &os.PathError{Op: "stat", Path: name, Err: syscall.ENOTDIR}
	}
	return fi.ModTime(), nil
}

func (d dayDir) close() {}
