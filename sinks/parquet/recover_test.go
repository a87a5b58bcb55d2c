package parquet

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A starting archiver (or compaction) cleans temp files only under the
// table lock: another archiver sharing the directory holds that lock while
// its temp files exist, so they are never taken for a crash's leftovers.
func TestRecoveryWaitsForTheTableLock(t *testing.T) {
	root := t.TempDir()
	pdir := filepath.Join(root, "date=2026-11-24", "hour=10")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	temp := filepath.Join(pdir, ".p0-1-2.parquet"+tempSuffix)
	if err := os.WriteFile(temp, []byte("being written"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := lockDir(root) // another archiver in the middle of a write
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- recoverTable(root, slog.New(slog.DiscardHandler)) }()
	select {
	case err := <-done:
		t.Fatalf("recovery ran while another writer held the lock (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := os.Stat(temp); err != nil {
		t.Fatalf("the other writer's temp file was removed under it: %v", err)
	}
	if err := held.unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(temp); !os.IsNotExist(err) {
		t.Fatalf("a leftover temp file survived recovery: %v", err)
	}
}
