package parquet

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Several writers encode ranges at once; the ranges are still committed
// in the order they were cut: every row once, every range under its own
// name, nothing left for a restarted archiver.
func TestWritersCommitRangesInOrder(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 4000, 2)
	publish(t, j, rows, 100) // offsets 0..39
	archive := filepath.Join(dir, "archive")
	root := filepath.Join(archive, "samples")
	r := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 300, FlushInterval: time.Hour}, Writers: 4})
	waitFor(t, "13 ranges and offset 39 fetched", func() bool {
		st := r.a.Stats()
		return st.Flushes == 13 && st.PendingRows == 100
	})
	r.stop(t) // writes out offset 39
	assertExactlyOnce(t, readArchive(t, root), rows)

	var names []string
	for _, f := range archiveFiles(t, root) {
		names = append(names, filepath.Base(f))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var want []string
	for first := 0; first < 40; first += 3 {
		want = append(want, rangeFileName(0, int64(first), int64(min(first+2, 39))))
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("file names %v, want %v", names, want)
	}
	again := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 1, FlushInterval: time.Hour}})
	again.stop(t)
	if st := again.a.Stats(); st.Flushes != 0 {
		t.Errorf("restart flushed %d ranges: a commit was lost or out of order", st.Flushes)
	}
	leftovers, err := filepath.Glob(filepath.Join(root, "date=*", "hour=*", ".*"+tempSuffix))
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

// A range's temp files are encoded outside the table lock: recovery (an
// archiver starting, a compaction round) leaves those a live writer holds
// and removes them once they are a crash's leftovers.
func TestRecoveryKeepsTempFilesBeingWritten(t *testing.T) {
	root := t.TempDir()
	pdir := filepath.Join(root, "date=2026-11-24", "hour=10")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	tf, _, err := writeTemp(pdir, "p0-1-2.parquet", bufio.NewWriter(nil), func(w io.Writer) error {
		_, err := fmt.Fprint(w, "being written")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := recoverTable(root, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tf.path); err != nil {
		t.Fatalf("a live writer's temp file was removed: %v", err)
	}
	_ = tf.f.Close() // the writer is gone: its file is a leftover now
	if err := recoverTable(root, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tf.path); !os.IsNotExist(err) {
		t.Fatalf("a leftover temp file survived recovery: %v", err)
	}
}

// With WaitForWriters, Run fetches nothing while a range is being written:
// when a range is committed, no row beyond it is held. Without it, Run
// fetches (and cuts) the next range meanwhile, the rows being in the
// journal already: the overlap the option trades away for memory.
func TestWaitForWritersHoldsOneRange(t *testing.T) {
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			dir := t.TempDir()
			j := openJournal(t, filepath.Join(dir, "journal"))
			// Ranges large enough that encoding one takes longer than
			// fetching the next batch from the journal.
			rows := genRows(0, 160_000, 1)
			publish(t, j, rows, 10_000) // 16 batches, ranges of 4
			archive := filepath.Join(dir, "archive")
			var held []int // rows held beyond the range at each commit; on Run's goroutine
			var a *Archiver
			ready := make(chan struct{})
			opts := Options{Config: Config{Dir: archive, FlushRows: 40_000, FlushInterval: time.Hour}, Writers: 1, WaitForWriters: wait,
				fault: func(step string) {
					if step == "committed" {
						<-ready
						// The range being committed is still in flight.
						held = append(held, a.rows+a.inflight-40_000)
					}
				}}
			r := start(t, j, opts)
			a = r.a
			close(ready)
			waitFor(t, "4 ranges written", func() bool { return r.a.Stats().Flushes >= 4 })
			r.stop(t)
			assertExactlyOnce(t, readArchive(t, filepath.Join(archive, "samples")), rows)
			fetchedMeanwhile := slices.ContainsFunc(held[:3], func(n int) bool { return n > 0 })
			if wait && fetchedMeanwhile {
				t.Errorf("rows held at each commit %v: Run fetched while a range was written", held[:3])
			}
			if !wait && !fetchedMeanwhile {
				t.Errorf("rows held at each commit %v: without WaitForWriters Run should fetch while a range is written", held[:3])
			}
		})
	}
}
