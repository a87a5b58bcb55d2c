package parquet

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/journal"
)

// smallFiles archives rows of three hours as many small files (one range of
// two messages each) and returns the archive root and the rows.
func smallFiles(t *testing.T) (string, []testRow, *journal.Journal) {
	t.Helper()
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 1800, 3)
	publish(t, j, rows, 60) // 30 messages
	archive := filepath.Join(dir, "archive")
	r := start(t, j, Options{Config: Config{Dir: archive, FlushRows: 120, FlushInterval: time.Hour}})
	waitFor(t, "every range", func() bool { return r.a.Stats().Flushes == 15 })
	r.stop(t)
	return archive, rows, j
}

// fileSums maps each data file under root (relative path) to its SHA-256.
func fileSums(t *testing.T, root string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	for _, f := range archiveFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		sums[f] = sha256.Sum256(data)
	}
	return sums
}

func filesIn(t *testing.T, root, hour string) []string {
	t.Helper()
	var out []string
	for _, f := range archiveFiles(t, root) {
		if strings.HasPrefix(f, "date=2024-06-01/hour="+hour+"/") {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

func hourEnd(h int) time.Time { return time.Unix(0, base).UTC().Add(time.Duration(h+1) * time.Hour) }

func TestCompactLosslessIdempotentAndLeavesOpenHours(t *testing.T) {
	archive, rows, _ := smallFiles(t)
	root := filepath.Join(archive, "samples")
	if n := len(filesIn(t, root, "00")); n < 3 {
		t.Fatalf("setup: hour 00 has %d files, want several", n)
	}
	before := fileSums(t, root)

	// Hours 00 and 01 are closed, 02 is not.
	res, err := Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(1), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 2 || res.Rows != 1200 {
		t.Errorf("result %+v, want 2 partitions of 1200 rows", res)
	}
	for _, h := range []string{"00", "01"} {
		files := filesIn(t, root, h)
		if len(files) != 1 || !strings.HasPrefix(files[0], "c-") {
			t.Errorf("hour %s holds %v after compaction, want one c- file", h, files)
			continue
		}
		fr := readRows(t, filepath.Join(root, "date=2024-06-01", "hour="+h, files[0]))
		if !slices.IsSortedFunc(fr, compareSampleOrder) {
			t.Errorf("hour %s: compacted file is not sorted", h)
		}
		checkSampleSchema(t, filepath.Join(root, "date=2024-06-01", "hour="+h, files[0]))
	}
	after := fileSums(t, root)
	for f, sum := range before {
		if strings.Contains(f, "hour=02/") && after[f] != sum {
			t.Errorf("open hour file %s changed", f)
		}
	}
	assertExactlyOnce(t, readArchive(t, root), rows)

	// Again: nothing to do, nothing touched.
	res, err = Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(1), Logger: quietLogger()})
	if err != nil || res.Partitions != 0 {
		t.Errorf("second compaction: %+v, %v; want nothing done", res, err)
	}
	if again := fileSums(t, root); !mapsEqual(again, after) {
		t.Error("a second compaction changed files")
	}

	// Every hour closed: hour 02 is compacted, 00 and 01 stay byte for byte.
	if _, err := Compact(context.Background(), archive, CompactOptions{Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	final := fileSums(t, root)
	for f, sum := range after {
		if !strings.Contains(f, "hour=02/") && final[f] != sum {
			t.Errorf("compacted file %s changed by a later compaction", f)
		}
	}
	assertExactlyOnce(t, readArchive(t, root), rows)
}

func mapsEqual(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A crash at any step of a compaction is finished or rolled back by the
// next Compact (or archiver start): no row is lost or doubled, no stray
// file or intent remains.
func TestCompactCrashAtEachStepRecovers(t *testing.T) {
	for _, step := range []string{"intent", "outputs", "verified"} {
		for _, recoverBy := range []string{"compact", "archiver"} {
			t.Run(step+"/"+recoverBy, func(t *testing.T) {
				archive, rows, j := smallFiles(t)
				root := filepath.Join(archive, "samples")
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(0), Logger: quietLogger(), fault: crashAt(step)})
				}()
				<-done
				pdir := filepath.Join(root, "date=2024-06-01", "hour=00")
				if _, err := os.Stat(filepath.Join(pdir, compactIntentName)); err != nil {
					t.Fatalf("no compaction intent after a crash at %s: %v", step, err)
				}
				switch recoverBy {
				case "compact":
					if _, err := Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(0), Logger: quietLogger()}); err != nil {
						t.Fatal(err)
					}
					if files := filesIn(t, root, "00"); len(files) != 1 || !strings.HasPrefix(files[0], "c-") {
						t.Errorf("hour 00 holds %v, want one compacted file", files)
					}
				case "archiver":
					r := start(t, j, Options{Config: Config{Dir: archive, FlushInterval: time.Hour}})
					r.stop(t)
				}
				if _, err := os.Stat(filepath.Join(pdir, compactIntentName)); !os.IsNotExist(err) {
					t.Errorf("compaction intent still there: %v", err)
				}
				assertExactlyOnce(t, readArchive(t, root), rows)
			})
		}
	}
}

// Files of a bus range an archiver has not committed (its intent is on
// disk) are left out of compaction.
func TestCompactSkipsUncommittedRange(t *testing.T) {
	archive, rows, _ := smallFiles(t)
	root := filepath.Join(archive, "samples")
	files := filesIn(t, root, "00")
	var it rangeIntent
	if _, err := parseRange(files[0], &it); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(filepath.Join(root, intentName(0)), it); err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(root, "date=2024-06-01", "hour=00", files[0])
	sum := fileSums(t, root)["date=2024-06-01/hour=00/"+files[0]]
	if _, err := Compact(context.Background(), archive, CompactOptions{Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	if got := fileSums(t, root)["date=2024-06-01/hour=00/"+files[0]]; got != sum {
		t.Errorf("uncommitted file %s was compacted away or changed", pending)
	}
	if n := len(filesIn(t, root, "00")); n != 2 {
		t.Errorf("hour 00 holds %d files, want the uncommitted one and one compacted", n)
	}
	assertExactlyOnce(t, readArchive(t, root), rows)
}

// The archiver compacts hours that closed compact_after ago by itself.
func TestArchiverCompactsClosedHours(t *testing.T) {
	archive, rows, j := smallFiles(t)
	root := filepath.Join(archive, "samples")
	r := start(t, j, Options{
		Config:       Config{Dir: archive, FlushInterval: time.Hour, Compact: true, CompactAfter: time.Minute},
		CompactEvery: time.Millisecond,
	})
	waitFor(t, "compaction", func() bool { return r.a.Stats().CompactedPartitions == 3 })
	r.stop(t)
	for _, h := range []string{"00", "01", "02"} {
		if files := filesIn(t, root, h); len(files) != 1 {
			t.Errorf("hour %s holds %v, want one file", h, files)
		}
	}
	assertExactlyOnce(t, readArchive(t, root), rows)
}

// parseRange reads the bus range from a file name p<part>-<first>-<last>.parquet.
func parseRange(name string, it *rangeIntent) (int, error) {
	return fmt.Sscanf(name, "p%d-%d-%d.parquet", &it.Partition, &it.First, &it.Last)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
