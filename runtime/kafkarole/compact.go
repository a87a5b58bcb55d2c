package kafkarole

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/reconmon/recon/sinks/parquet"
)

// Compaction with a group of archivers (docs/kafka.md, "Compaction").
//
// All members share the archive. parquet.Compact merges the files of a
// closed hour under the table lock, which also keeps the members' range
// writes apart; what it cannot protect against is an archiver starting
// meanwhile: a starting parquet.Archiver finishes or rolls back every
// compaction it finds half done, assuming a crash left it. So:
//
//   - one member compacts: the one holding partition 0 in the current
//     generation, inside that generation (the group waits for it to stop
//     before anyone starts the next generation's archivers);
//   - compaction holds an exclusive flock on ARCHIVE/.kafka/compact.lock,
//     and every member holds it shared while its archiver starts, so that
//     a compaction that outlives its generation (a member fenced out of
//     the group mid-merge) never meets a starting archiver.
const compactLockName = "compact.lock"

func compactLockPath(archiveDir string) string {
	return filepath.Join(archiveDir, ".kafka", compactLockName)
}

// fileLock is a flock held on a file; unlock releases it (once).
type fileLock struct {
	f    *os.File
	once sync.Once
}

// lockFile takes a flock of kind (syscall.LOCK_SH or LOCK_EX) on path,
// creating it, polling until it is granted or ctx ends.
func lockFile(ctx context.Context, path string, kind int) (*fileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), kind|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unlock releases the lock (closing the file drops the flock).
func (l *fileLock) unlock() {
	l.once.Do(func() { _ = l.f.Close() })
}

// compactLoop compacts the archive's closed hours every CompactEvery until
// ctx (the generation's) ends.
func (a *Archiver) compactLoop(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(a.opts.CompactEvery)
	defer t.Stop()
	for {
		a.compactOnce(ctx, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Archiver) compactOnce(ctx context.Context, log *slog.Logger) {
	lock, err := lockFile(ctx, compactLockPath(a.opts.Archive.Dir), syscall.LOCK_EX)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("compaction skipped", "err", err)
			a.stats.CompactErrors.Add(1)
		}
		return
	}
	defer lock.unlock()
	cfg := a.opts.Archive
	res, err := parquet.Compact(ctx, cfg.Dir, parquet.CompactOptions{
		Tables:           []parquet.Table{parquet.SamplesTable},
		ClosedBefore:     time.Now().Add(-cfg.CompactAfter),
		TargetFileSize:   cfg.TargetFileSize,
		CompressionLevel: cfg.CompactLevel,
		RowGroupRows:     cfg.RowGroupRows,
		Logger:           log,
	})
	a.stats.Compacted.Add(uint64(res.Partitions))
	if err != nil && ctx.Err() == nil {
		a.stats.CompactErrors.Add(1)
		log.Error("compaction failed; the files stay as they are", "err", err)
	}
}
