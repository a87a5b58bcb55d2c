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
}
