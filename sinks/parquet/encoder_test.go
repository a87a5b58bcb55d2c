package parquet

import (
	"bytes"
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
			if err := e.writeFile(&buf, batches, g.refs); err != nil {
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

// renamed gives rows' sources the prefix p: series a flush of rows
// without it lacks, ranked among theirs.
func renamed(rows []testRow, p string) []testRow {
	for i := range rows {
		rows[i].Source = p + rows[i].Source
	}
	return rows
}
