package parquet

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A full disk (a real 1 MiB tmpfs, filled up) makes the write fail with a
// logged error naming the path and no partial file; nothing is committed,
// and once there is room again the archiver writes everything, once.
func TestDiskFullRetriesThenResumes(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("disk-full test mounts a 1 MiB tmpfs and needs root (CAP_SYS_ADMIN): %v", err)
		}
		t.Skipf("disk-full test mounts a 1 MiB tmpfs and needs root (CAP_SYS_ADMIN): %v (CI=true makes this a failure)", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	archive := filepath.Join(mnt, "archive")
	if err := os.MkdirAll(filepath.Join(archive, "samples", "date=2024-06-01", "hour=00"), 0o755); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC: the disk is full
		}
	}
	_ = f.Close()

	j := openJournal(t, filepath.Join(t.TempDir(), "journal"))
	rows := genRows(0, 2000, 1)
	publish(t, j, rows, 200)
	r := start(t, j, Options{
		Config:   Config{Dir: archive, FlushRows: len(rows), FlushInterval: time.Hour},
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
	})
	waitFor(t, "failed writes", func() bool { return r.a.Stats().WriteErrors >= 3 })
	st := r.a.Stats()
	if !strings.Contains(st.LastError, "no space left") || !strings.Contains(st.LastError, archive) {
		t.Errorf("last error %q: want ENOSPC naming a path under %s", st.LastError, archive)
	}
	if st.Flushes != 0 {
		t.Errorf("%d ranges committed while the disk was full", st.Flushes)
	}
	err = filepath.WalkDir(archive, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".parquet") || strings.HasSuffix(path, tempSuffix)) {
			t.Errorf("file %s left by a failed write", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the write once there is room", func() bool { return r.a.Stats().Flushes == 1 })
	r.stop(t)
	assertExactlyOnce(t, readArchive(t, filepath.Join(archive, "samples")), rows)
}
