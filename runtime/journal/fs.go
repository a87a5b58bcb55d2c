package journal

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const tmpSuffix = ".tmp"

// syncDir makes the entries of dir (creations, renames, removals) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync
// of the directory. A crash leaves either the old or the new content (and
// possibly a temp file, removed by the next Open).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// lockDir takes an exclusive advisory lock on dir/LOCK so that two
// processes never append to the same journal. The kernel drops the lock when
// the process dies, so a crash never leaves the journal locked.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("journal %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("lock journal %s: %w", dir, err)
	}
	return f, nil
}

// pwritev writes all of bufs at off, looping over short writes.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	fd := int(f.Fd())
	const iovMax = 1024
	for len(bufs) > 0 {
		n := min(len(bufs), iovMax)
		w, err := unix.Pwritev(fd, bufs[:n], off)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if w == 0 {
			return fmt.Errorf("pwritev: wrote 0 bytes")
		}
		off += int64(w)
		for w > 0 && len(bufs) > 0 {
			if w >= len(bufs[0]) {
				w -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			bufs[0] = bufs[0][w:]
			w = 0
		}
	}
	return nil
}
