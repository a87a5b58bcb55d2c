package parquet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzReadFile feeds arbitrary bytes to the two Parquet readers compaction
// uses on archive files, the column reader that moves the data and the row
// reader that verifies it: damaged files must give an error, never a panic
// or a hang. Damaged pages without checksums may decode to different values
// in the two readers; compaction compares their digests and refuses such a
// partition (TestCompactRefusesWhenReadersDisagree), so that is not a
// failure here.
func FuzzReadFile(f *testing.F) {
	valid := seedFile(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[len(valid)/3:])
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1PAR1"))
	f.Add(append([]byte("PAR1"), append(bytes.Repeat([]byte{0xff}, 64), []byte("\x10\x00\x00\x00PAR1")...)...))
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x5a
	f.Add(flipped)
	l, err := SamplesTable.compile()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, rowErr := digestFile(bytes.NewReader(data), int64(len(data)))
		rd := newBatchReader(l, memory.NewGoAllocator())
		defer rd.release()
		batches, err := readAll(rd, bytes.NewReader(data), int64(len(data)), nil)
		var cols digest
		for _, b := range batches {
			cols.addBatch(l, b)
			b.Release()
		}
		if err == nil && rowErr == nil && !cols.equal(&rows) {
			t.Logf("the readers disagree on a damaged file: column reader %s, row reader %s", &cols, &rows)
		}
	})
}

// seedFile writes a small archive file and returns its bytes.
func seedFile(f *testing.F) []byte { return seedFileT(f) }

func seedFileT(f testing.TB) []byte {
	f.Helper()
	l, err := SamplesTable.compile()
	if err != nil {
		f.Fatal(err)
	}
	rec := record(genRows(0, 50, 1))
	defer rec.Release()
	dir := f.TempDir()
	cfg := DefaultConfig(dir)
	enc := newEncoder(l, writerConfig{CompressionLevel: cfg.CompressionLevel, RowGroupRows: 20, PageBytes: 1 << 10})
	groups := enc.plan([]arrow.RecordBatch{rec})
	if len(groups) != 1 {
		f.Fatalf("%d hour groups, want 1", len(groups))
	}
	var buf bytes.Buffer
	if err := enc.writeFile(&buf, []arrow.RecordBatch{rec}, groups[0].refs, groups[0].keys); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// A file that cannot be read is reported with its path, and compaction
// leaves its partition as it is.
func TestCompactReportsDamagedFile(t *testing.T) {
	archive, rows, _ := smallFiles(t)
	root := filepath.Join(archive, "samples")
	files := filesIn(t, root, "00")
	bad := filepath.Join(root, "date=2024-06-01", "hour=00", files[0])
	good, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(0), Logger: quietLogger()})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(bad)) {
		t.Fatalf("compaction error %v does not name %s", err, bad)
	}
	if got := filesIn(t, root, "00"); len(got) != len(files) {
		t.Errorf("partition changed from %v to %v", files, got)
	}
	if err := os.WriteFile(bad, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Compact(context.Background(), archive, CompactOptions{ClosedBefore: hourEnd(0), Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, readArchive(t, root), rows)
}

// A file the two readers read differently (a damaged page found by
// FuzzReadFile) makes compaction refuse the partition: the inputs stay as
// they are.
func TestCompactRefusesWhenReadersDisagree(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzReadFile", "f470daaa3f966d32"))
	if err != nil {
		t.Fatal(err)
	}
	// The corpus file holds one []byte literal: go test fuzz v1 / []byte("...").
	lines := bytes.SplitN(raw, []byte("\n"), 2)
	lit := bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(lines[1]), []byte("[]byte(")), []byte(")"))
	data, err := strconv.Unquote(string(lit))
	if err != nil {
		t.Fatal(err)
	}
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	rows, rowErr := digestFile(bytes.NewReader([]byte(data)), int64(len(data)))
	rd := newBatchReader(l, memory.NewGoAllocator())
	defer rd.release()
	batches, colErr := readAll(rd, bytes.NewReader([]byte(data)), int64(len(data)), nil)
	var cols digest
	for _, b := range batches {
		cols.addBatch(l, b)
		b.Release()
	}
	if rowErr != nil || colErr != nil || cols.equal(&rows) {
		t.Fatalf("the corpus file no longer makes the readers disagree (%v, %v): pick another", rowErr, colErr)
	}

	dir := t.TempDir()
	pdir := filepath.Join(dir, "samples", "date=2020-01-01", "hour=00")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"a.parquet": []byte(data), "b.parquet": seedFileT(t)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(pdir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "not compacted") {
		t.Fatalf("Compact: %v, want a refusal", err)
	}
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(pdir, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s changed or went away after a refused compaction (%v)", name, err)
		}
	}
}
