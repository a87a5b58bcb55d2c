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
	if err := enc.writeFile(&buf, batches, refs, groups[0].keys); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Inputs whose rows tie on (series, time) across inputs are merged into
// the table's order, ties in input order: the order a stable sort of the
// inputs' rows gives. Inputs larger than what the merge holds of each
// (several batches per input, several row groups per batch), and more
// inputs than one merge reads at once (merged in rounds through temp files,
// none left after), give the same.
func TestCompactMergeOrderTiesInInputOrder(t *testing.T) {
	for _, c := range []struct {
		inputs, rows int
		readBytes    int64
	}{
		{3, 40_000, 0},         // > maxInputRows: each input is read in several batches
		{11, 1500, 1},          // merged two by two, round after round
		{maxFanIn + 3, 200, 0}, // merged in two rounds
	} {
		t.Run(fmt.Sprint(c.inputs), func(t *testing.T) {
			dir := t.TempDir()
			pdir := filepath.Join(dir, "samples", "date=2024-06-01", "hour=00")
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				t.Fatal(err)
			}
			var want []testRow
			for i := range c.inputs {
				var rows []testRow
				for j, r := range genRows(0, c.rows, 1) {
					if j%(i%3+2) == 0 {
						continue // the inputs differ
					}
					r.Labels["in"] = strconv.Itoa(i) // ties differ by input
					rows = append(rows, r)
				}
				path := filepath.Join(pdir, fmt.Sprintf("p0-%03d-%03d.parquet", i, i))
				if err := os.WriteFile(path, encodeSorted(t, rows, 7000, false), 0o644); err != nil {
					t.Fatal(err)
				}
				want = append(want, readRows(t, path)...)
			}
			slices.SortStableFunc(want, compareSampleOrder)

			res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, CompressionLevel: 1, Logger: quietLogger(), readBytes: c.readBytes})
			if err != nil || res.FilesIn != c.inputs || res.FilesOut != 1 || res.Rows != int64(len(want)) {
				t.Fatalf("compaction: %+v, %v; want %d files of %d rows into one", res, err, c.inputs, len(want))
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
			if entries, err := os.ReadDir(pdir); err != nil || len(entries) != 1 {
				t.Errorf("partition holds %v after compaction (%v), want the compacted file alone", entries, err)
			}
		})
	}
}

// An input that is not in the table's sort order cannot be merged, in one
// merge or in rounds (here two by two): the partition is left as it was, and the error names
// the input.
func TestCompactRefusesUnsortedInput(t *testing.T) {
	for _, inputs := range []int{2, 7} {
		t.Run(fmt.Sprint(inputs), func(t *testing.T) {
			dir := t.TempDir()
			pdir := filepath.Join(dir, "samples", "date=2024-06-01", "hour=00")
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{}
			bad := fmt.Sprintf("p0-%03d-%03d.parquet", inputs-1, inputs-1)
			for i := range inputs {
				name := fmt.Sprintf("p0-%03d-%03d.parquet", i, i)
				files[name] = encodeSorted(t, genRows(i*500, 500, 1), 200, name == bad)
				if err := os.WriteFile(filepath.Join(pdir, name), files[name], 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, Logger: quietLogger(), readBytes: 1})
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "sort order") {
				t.Fatalf("Compact: %v, want a refusal naming %s", err, bad)
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
		})
	}
}

// A round merges the fewest rows it can into intermediate files: none when
// the files fit, the pairs that hold most when a few do not, runs within
// the budget and the fan-in when there are too many files.
func TestSpillRuns(t *testing.T) {
	const mb = 1 << 20
	tiny := make([]int64, maxFanIn+6)
	for i := range tiny {
		tiny[i] = 1
	}
	for _, c := range []struct {
		name   string
		mem    []int64
		budget int64
		want   []int
	}{
		{"fits", []int64{17 * mb, 17 * mb, 5 * mb}, 64 * mb, nil},
		{"one file over the budget", []int64{100 * mb}, 64 * mb, nil},
		{"the largest pair", []int64{17 * mb, 17 * mb, 5 * mb, 17 * mb, 17 * mb, 5 * mb}, 64 * mb, []int{2, 1, 1, 1, 1}},
		{"pairs until it fits", []int64{5 * mb, 5 * mb, 30 * mb, 30 * mb, 20 * mb, 20 * mb, 9 * mb}, 50 * mb, []int{1, 1, 2, 2, 1}},
		{"every pair", []int64{1, 1, 1, 1, 1}, 1, []int{2, 2, 1}},
		{"too many files", tiny, 64 * mb, []int{maxFanIn, 6}},
		{"too many files over the budget", tiny, 10, []int{10, 10, 10, 10, 10, 10, 10}},
	} {
		if got := spillRuns(c.mem, c.budget); !slices.Equal(got, c.want) {
			t.Errorf("%s: runs %v, want %v", c.name, got, c.want)
		}
	}
}
