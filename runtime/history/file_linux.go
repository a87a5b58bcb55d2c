package history

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The files a query reads (a day's index file; the ts and value chunks of
// an archive file) are read with plain system calls: open, pread, close.
// os.File adds a poller registration attempt, flag changes and a cleanup
// to each open, which for a year's query of 365 index files and a few
// thousand chunk reads were a tenth of its time.

// openRead opens path for reading.
func openRead(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// preadFull fills buf from fd at off.
func preadFull(fd int, path string, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := syscall.Pread(fd, buf, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return &os.PathError{Op: "read", Path: path, Err: io.ErrUnexpectedEOF}
		}
		buf, off = buf[n:], off+int64(n)
	}
	return nil
}

// readAt fills buf with the bytes of the file at path from off.
func readAt(path string, buf []byte, off int64) error {
	fd, err := openRead(path)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return preadFull(fd, path, buf, off)
}

// readWhole reads the file at path into buf (grown when too small) and
// returns the bytes read; a file larger than max is an error.
func readWhole(path string, buf []byte, max int64) ([]byte, error) {
	fd, err := openRead(path)
	if err != nil {
		return buf[:0], err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return buf[:0], &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Size > max {
		return buf[:0], fmt.Errorf("%s: %d bytes, more than the %d expected at most", path, st.Size, max)
	}
	if int64(cap(buf)) < st.Size {
		buf = make([]byte, st.Size)
	}
	buf = buf[:st.Size]
	return buf, preadFull(fd, path, buf, 0)
}

// dayDir is an open day directory (date=…): its hour directories are
// stat'ed relative to it, sparing the kernel the walk of the whole path
// for each hour.
type dayDir struct{ fd int }

// openDayDir opens the directory at path.
func openDayDir(path string) (dayDir, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dayDir{}, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return dayDir{fd}, nil
	}
}

// statDir returns the modification time of the directory name in d; a
// name that is not a directory is syscall.ENOTDIR.
func (d dayDir) statDir(name string) (time.Time, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return time.Time{}, &os.PathError{Op: "stat", Path: name, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return time.Time{}, &os.PathError{Op: "stat", Path: name, Err: syscall.ENOTDIR}
		}
		return time.Unix(st.Mtim.Unix()), nil
	}
}

func (d dayDir) close() { _ = unix.Close(d.fd) }
