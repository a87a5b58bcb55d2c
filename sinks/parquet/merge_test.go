package parquet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// encodeSorted writes rows as one archive file the way the archiver does
// (sorted by the table's order), in row groups of rowGroupRows, and returns
// its bytes.
func encodeSorted(t *testing.T, rows []testRow, rowGroupRows int, reverse bool) []byte {
	t.Helper()
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	enc := newEncoder(l, writerConfig{CompressionLevel: 1, RowGroupRows: rowGroupRows, PageBytes: pageBytes})
	rec := record(rows)
	defer rec.Release()
	batches := []arrow.RecordBatch{rec}
	groups := enc.plan(batches)
	if len(groups) != 1 {
		t.Fatalf("%d hours, want 1", len(groups))
	}
	refs := groups[0].refs
	if reverse {
		refs = slices.Clone(refs)
		slices.Reverse(refs)
	}
	var buf bytes.Buffer
	if err := enc.writeFile(&buf, batches, refs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Inputs larger than what the merge holds of each (several batches per
// input, several row groups per batch and per input) whose rows tie on
// (series, time) across inputs are merged into the table's order, ties in
// input order: the order a stable sort of the inputs' rows gives.
func TestCompactMergeOrderTiesInInputOrder(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "samples", "date=2024-06-01", "hour=00")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 40_000 // > maxInputRows: each input is read in several batches
	var want []testRow
	for i := range 3 {
		var rows []testRow
		for j, r := range genRows(0, n, 1) {
			if j%(i+2) == 0 {
				continue // the inputs differ
			}
			r.Labels["in"] = strconv.Itoa(i) // ties differ by input
			rows = append(rows, r)
		}
		path := filepath.Join(pdir, fmt.Sprintf("p0-%d-%d.parquet", i, i))
		if err := os.WriteFile(path, encodeSorted(t, rows, 7000, false), 0o644); err != nil {
			t.Fatal(err)
		}
		want = append(want, readRows(t, path)...)
	}
	slices.SortStableFunc(want, compareSampleOrder)

	res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, CompressionLevel: 1, Logger: quietLogger()})
	if err != nil || res.FilesIn != 3 || res.FilesOut != 1 || res.Rows != int64(len(want)) {
		t.Fatalf("compaction: %+v, %v; want 3 files of %d rows into one", res, err, len(want))
	}
	got := readArchive(t, filepath.Join(dir, "samples"))
	if len(got) != len(want) {
		t.Fatalf("%d rows after compaction, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d is %+v, want %+v", i, got[i], want[i])
		}
	}
}

// An input that is not in the table's sort order cannot be merged: the
// partition is left as it was, and the error says why.
func TestCompactRefusesUnsortedInput(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "samples", "date=2024-06-01", "hour=00")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"p0-0-0.parquet": encodeSorted(t, genRows(0, 2000, 1), 500, false),
		"p0-1-1.parquet": encodeSorted(t, genRows(2000, 2000, 1), 500, true),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(pdir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "p0-1-1.parquet") || !strings.Contains(err.Error(), "sort order") {
		t.Fatalf("Compact: %v, want a refusal naming the unsorted input", err)
	}
	entries, err := os.ReadDir(pdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		t.Errorf("partition holds %d entries after a refused compaction, want the %d inputs alone", len(entries), len(files))
	}
	for name, data := range files {
		if got, err := os.ReadFile(filepath.Join(pdir, name)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s changed or went away after a refused compaction (%v)", name, err)
		}
	}
}
