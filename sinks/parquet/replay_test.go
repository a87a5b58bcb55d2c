package parquet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A crash after the files of a range are renamed into place but before the
// bus offset is committed must not double any row: the restarted archiver
// is handed the same messages again and rewrites the same range under the
// same names, even with a different flush size.
func TestReplayAfterCrashBeforeCommit(t *testing.T) {
	for _, step := range []string{"intent", "renamed", "committed"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			j := openJournal(t, filepath.Join(dir, "journal"))
			rows := genRows(0, 1000, 2)
			publish(t, j, rows, 100) // offsets 0..9
			archive := filepath.Join(dir, "archive")
			root := filepath.Join(archive, "samples")

			first := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 600, FlushInterval: time.Hour}, fault: crashAt(step)})
			waitFor(t, "the crash", first.crashed)
			first.stop(t)
			if step != "committed" {
				if _, err := os.Stat(filepath.Join(root, intentName(0))); err != nil {
					t.Fatalf("no intent after a crash at %s: %v", step, err)
				}
			}

			second := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 1000, FlushInterval: time.Hour}})
			waitFor(t, "the replayed range and the rest fetched", func() bool {
				st := second.a.Stats()
				return (step == "committed" || st.Flushes == 1) && st.PendingRows == 400
			})
			second.stop(t) // writes out offsets 6..9

			assertExactlyOnce(t, readArchive(t, root), rows)
			var names []string
			for _, f := range archiveFiles(t, root) {
				names = append(names, filepath.Base(f))
			}
			slices.Sort(names)
			names = slices.Compact(names)
			if want := []string{"p0-0-5.parquet", "p0-6-9.parquet"}; !slices.Equal(names, want) {
				t.Errorf("file names %v, want %v", names, want)
			}
			if _, err := os.Stat(filepath.Join(root, intentName(0))); !os.IsNotExist(err) {
				t.Errorf("intent left after the replay: %v", err)
			}
		})
	}
}

// Temp files a crash leaves behind are never read and are removed on start;
// the glob readers use never matches them.
func TestTempFilesIgnoredAndRemoved(t *testing.T) {
	if ok, _ := filepath.Match("*.parquet", tempName("p0-1-2.parquet")); ok {
		t.Fatalf("temp name %q matches *.parquet", tempName("p0-1-2.parquet"))
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	hour := filepath.Join(archive, "samples", "date=2024-06-01", "hour=00")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	temps := []string{
		filepath.Join(hour, tempName("p0-0-3.parquet")),
		filepath.Join(archive, "samples", tempName(intentName(0))),
	}
	for _, p := range temps {
		if err := os.WriteFile(p, []byte("PAR1 torn garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 400, 1)
	publish(t, j, rows, 100)
	r := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 400, FlushInterval: time.Hour}})
	waitFor(t, "the flush", func() bool { return r.a.Stats().Flushes == 1 })
	r.stop(t)
	for _, p := range temps {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("temp file %s still there (%v)", p, err)
		}
	}
	assertExactlyOnce(t, readArchive(t, filepath.Join(archive, "samples")), rows)
}

// An archive that cannot be written (here a regular file where the day's
// directory must go, which stops root too) is reported with its path and
// retried; nothing is committed meanwhile, and once the path is usable the
// archiver catches up without losing a row.
func TestUnwritableArchiveRetriesThenResumes(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	blocker := filepath.Join(archive, "samples", "date=2024-06-01")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 500, 1)
	publish(t, j, rows, 100)
	r := start(t, j, Options{
		Config:   Config{Dir: archive, FlushRows: 500, FlushInterval: time.Hour},
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
	})
	waitFor(t, "retried write errors", func() bool { return r.a.Stats().WriteErrors >= 3 })
	st := r.a.Stats()
	if !strings.Contains(st.LastError, blocker) {
		t.Errorf("last error %q does not name %s", st.LastError, blocker)
	}
	if st.Flushes != 0 || st.PendingRows != int64(len(rows)) {
		t.Errorf("while failing: %d flushes, %d pending rows; want 0 and %d", st.Flushes, st.PendingRows, len(rows))
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the write to succeed", func() bool { return r.a.Stats().Flushes == 1 })
	r.stop(t)
	assertExactlyOnce(t, readArchive(t, filepath.Join(archive, "samples")), rows)

	// Nothing was left uncommitted: a restarted archiver has nothing to do.
	again := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 1, FlushInterval: time.Hour}})
	again.stop(t)
	if st := again.a.Stats(); st.Flushes != 0 {
		t.Errorf("restart flushed %d ranges: the first run's commit was lost", st.Flushes)
	}
}

// When the bus hands over messages from before the range a previous run
// was writing (its checkpoint went back), the files of that range are
// removed before the range is written again: no row appears twice.
func TestReplayFromBeforeTheRange(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 1000, 2)
	publish(t, j, rows, 100) // offsets 0..9
	archive := filepath.Join(dir, "archive")
	root := filepath.Join(archive, "samples")

	// A run wrote offsets 0..5 and crashed before committing them; then the
	// intent is rewritten as if it had been writing 2..5 only: the bus
	// resumes at 0, before the recorded range.
	first := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 600, FlushInterval: time.Hour}, fault: crashAt("renamed")})
	waitFor(t, "the crash", first.crashed)
	first.stop(t)
	renameRange(t, root, "p0-0-5.parquet", "p0-2-5.parquet")
	if err := writeJSON(filepath.Join(root, intentName(0)), rangeIntent{Partition: 0, First: 2, Last: 5}); err != nil {
		t.Fatal(err)
	}

	second := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 1000, FlushInterval: time.Hour}})
	waitFor(t, "every row", func() bool { st := second.a.Stats(); return st.RowsWritten+st.PendingRows == 1000 })
	second.stop(t)
	assertExactlyOnce(t, readArchive(t, root), rows)
}

func renameRange(t *testing.T, root, from, to string) {
	t.Helper()
	for _, f := range archiveFiles(t, root) {
		if filepath.Base(f) == from {
			p := filepath.Join(root, f)
			if err := os.Rename(p, filepath.Join(filepath.Dir(p), to)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
