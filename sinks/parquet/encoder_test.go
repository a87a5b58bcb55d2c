package parquet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// The archiver's encoder reuses one Parquet writer for every file; a range
// must still encode to the same bytes as in a fresh process (a replay
// rewrites the file under the same name), whatever the encoder wrote before.
func TestEncoderSameInputSameBytes(t *testing.T) {
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(t.TempDir())
	opts := Options{Config: cfg}
	encode := func(e *encoder, rows []testRow) []byte {
		t.Helper()
		batches := []arrow.RecordBatch{record(rows[:len(rows)/2]), record(rows[len(rows)/2:])}
		defer func() {
			for _, b := range batches {
				b.Release()
			}
		}()
		var buf bytes.Buffer
		for _, g := range e.plan(batches) {
			if err := e.writeFile(&buf, batches, g.refs, g.keys); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	rows := genRows(0, 3000, 2)

	used := newEncoder(l, opts.writerConfig())
	encode(used, genRows(10_000, 5000, 3)) // other series, hours and strings first
	got := encode(used, rows)
	want := encode(newEncoder(l, opts.writerConfig()), rows)
	if !bytes.Equal(got, want) {
		t.Fatalf("the same rows encoded to %d bytes after other files, %d fresh: they differ", len(got), len(want))
	}
	if again := encode(used, rows); !bytes.Equal(again, want) {
		t.Fatal("encoding the same rows twice gave different bytes")
	}

	// The encoder remembers series between flushes: series it knows that
	// the flush lacks, and new ones ranked among them, leave the bytes as
	// a fresh encoder writes them; so does forgetting them at the bound.
	for _, maxSeries := range []int{maxKnownSeries, 5} {
		e := newEncoder(l, opts.writerConfig())
		e.maxSeries = maxSeries
		encode(e, renamed(genRows(20_000, 2000, 1), "src3-"))
		if got := encode(e, rows); !bytes.Equal(got, want) {
			t.Fatalf("maxSeries %d: after other series the rows encoded to %d bytes, %d fresh", maxSeries, len(got), len(want))
		}
		encode(e, renamed(genRows(30_000, 2000, 1), "src0-"))
		mixed := append(renamed(genRows(40_000, 500, 2), "src5-"), rows...)
		wantMixed := encode(newEncoder(l, opts.writerConfig()), mixed)
		if got := encode(e, mixed); !bytes.Equal(got, wantMixed) {
			t.Fatalf("maxSeries %d: known and new series together encoded to %d bytes, %d fresh", maxSeries, len(got), len(wantMixed))
		}
		if len(e.series) > maxSeries+len(mixed) {
			t.Fatalf("maxSeries %d: the encoder remembers %d series", maxSeries, len(e.series))
		}
	}
}

// Key columns are read by series (one copy of each series' keys) when
// the plan gives them: the file is the one the rows' own bytes give.
func TestEncoderKeysBySeriesSameBytes(t *testing.T) {
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: DefaultConfig(t.TempDir())}
	cfg := opts.writerConfig()
	cfg.RowGroupRows = 1500 // several row groups per file
	rows := append(genRows(0, 4000, 2), renamed(genRows(9000, 3000, 2), "x-")...)
	batches := []arrow.RecordBatch{record(rows[:2500]), record(rows[2500:])}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	e := newEncoder(l, cfg)
	groups := e.plan(batches)
	if len(groups) != 2 {
		t.Fatalf("%d hour groups, want 2", len(groups))
	}
	for _, g := range groups {
		var bySeries, byRow bytes.Buffer
		if err := e.writeFile(&bySeries, batches, g.refs, g.keys); err != nil {
			t.Fatal(err)
		}
		if err := e.writeFile(&byRow, batches, g.refs, seriesKeys{}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bySeries.Bytes(), byRow.Bytes()) {
			t.Fatalf("hour %d: %d bytes with keys by series, %d with the rows' own: they differ", g.hour, bySeries.Len(), byRow.Len())
		}
	}
}

// renamed gives rows' sources the prefix p: series a flush of rows
// without it lacks, ranked among theirs.
func renamed(rows []testRow, p string) []testRow {
	for i := range rows {
		rows[i].Source = p + rows[i].Source
	}
	return rows
}

// A batch whose string column holds one value in every row (or null in
// every row) is written without reading its rows; the file must hold each
// row's own value all the same, for batches that only look constant too.
func TestEncoderConstantColumns(t *testing.T) {
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: DefaultConfig(t.TempDir())}
	str := func(s string) *string { return &s }
	shapes := map[string]func(i int) *string{
		"constant":        func(int) *string { return str("ms") },
		"all null":        func(int) *string { return nil },
		"last differs":    func(i int) *string { return str(map[bool]string{true: "mt", false: "ms"}[i == 299]) },
		"lengths differ":  func(i int) *string { return str(map[bool]string{true: "msms", false: "ms"}[i == 150]) },
		"one null":        func(i int) *string { return map[bool]*string{true: nil, false: str("ms")}[i == 7] },
		"periodic bytes":  func(i int) *string { return str(map[bool]string{true: "ab", false: "abab"}[i%2 == 0]) },
		"empty strings":   func(int) *string { return str("") },
		"constant slices": func(int) *string { return str("s") },
	}
	var want []testRow
	var batches []arrow.RecordBatch
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	seq := 0
	for name, unit := range shapes {
		rows := genRows(seq, 300, 1)
		for i := range rows {
			rows[i].Unit = unit(i)
			rows[i].Node = "n-" + name
		}
		rec := record(rows)
		if name == "constant slices" { // a batch sliced out of a longer one: offsets start past 0
			full := record(append(genRows(seq+300, 50, 1), rows...))
			rec.Release()
			rec = full.NewSlice(50, 350)
			full.Release()
		}
		batches = append(batches, rec)
		want = append(want, rows...)
		seq += 1000
	}
	e := newEncoder(l, opts.writerConfig())
	dir := t.TempDir()
	var got []testRow
	for i, g := range e.plan(batches) {
		path := filepath.Join(dir, fmt.Sprintf("%d.parquet", i))
		var buf bytes.Buffer
		if err := e.writeFile(&buf, batches, g.refs, g.keys); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got = append(got, readRows(t, path)...)
	}
	bySeq := map[string]testRow{}
	for _, r := range got {
		bySeq[r.seq()] = r
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows read back, want %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := bySeq[w.seq()]
		switch {
		case !ok:
			t.Fatalf("seq %s missing", w.seq())
		case (g.Unit == nil) != (w.Unit == nil) || (g.Unit != nil && *g.Unit != *w.Unit):
			t.Fatalf("seq %s (%s): unit %v, want %v", w.seq(), w.Node, deref(g.Unit), deref(w.Unit))
		case g.Node != w.Node:
			t.Fatalf("seq %s: node %q, want %q", w.seq(), g.Node, w.Node)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *s)
}
