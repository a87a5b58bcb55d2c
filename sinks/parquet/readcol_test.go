package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// kindsTable has a column of every supported kind, most of them nullable.
var kindsTable = Table{
	Name: "kinds",
	Schema: arrow.NewSchema([]arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Second}},
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "large", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "tags", Type: arrow.MapOfFields(arrow.Field{Name: "key", Type: arrow.BinaryTypes.String}, arrow.Field{Name: "value", Type: arrow.BinaryTypes.String})},
	}, nil),
	TimeColumn:  "ts",
	SortColumns: []string{"key", "ts"},
}

// kindsRecord makes n rows of kindsTable in its sort order, starting at
// hour 0 of base, with nulls, empty maps and null map values.
func kindsRecord(n int, seq0 int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, kindsTable.Schema)
	defer b.Release()
	t0 := base / int64(time.Second)
	for i := range n {
		s := seq0 + i
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + int64(i)))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("k%02d", seq0/n))
		if s%4 == 0 {
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
			b.Field(4).AppendNull()
			b.Field(5).AppendNull()
			b.Field(7).AppendNull()
		} else {
			b.Field(2).(*array.LargeStringBuilder).Append(fmt.Sprint("large", s))
			b.Field(3).(*array.Float64Builder).Append(float64(s) / 3)
			b.Field(4).(*array.Float32Builder).Append(float32(s) / 7)
			b.Field(5).(*array.Int64Builder).Append(-int64(s) << 40)
			b.Field(7).(*array.BooleanBuilder).Append(s%3 == 0)
		}
		b.Field(6).(*array.Int32Builder).Append(int32(s) * -3)
		attrs := b.Field(8).(*array.MapBuilder)
		switch s % 3 {
		case 0:
			attrs.AppendNull()
		case 1:
			attrs.Append(true) // empty
		default:
			attrs.Append(true)
			attrs.KeyBuilder().(*array.StringBuilder).Append("a")
			attrs.ItemBuilder().AppendNull()
			attrs.KeyBuilder().(*array.StringBuilder).Append("b")
			attrs.ItemBuilder().(*array.StringBuilder).Append(fmt.Sprint(s))
		}
		tags := b.Field(9).(*array.MapBuilder)
		tags.Append(true)
		for j := range s % 3 {
			tags.KeyBuilder().(*array.StringBuilder).Append(fmt.Sprint("t", j))
			tags.ItemBuilder().(*array.StringBuilder).Append(fmt.Sprint(s * j))
		}
	}
	return b.NewRecordBatch()
}

// writeKinds encodes rec, already in kindsTable's order, as one file.
func writeKinds(t *testing.T, l *layout, rec arrow.RecordBatch, rowGroupRows int) []byte {
	t.Helper()
	enc := newEncoder(l, writerConfig{CompressionLevel: 3, RowGroupRows: rowGroupRows, PageBytes: 1 << 10})
	groups := enc.plan([]arrow.RecordBatch{rec})
	if len(groups) != 1 {
		t.Fatalf("%d hour groups, want 1", len(groups))
	}
	var buf bytes.Buffer
	if err := enc.writeFile(&buf, []arrow.RecordBatch{rec}, groups[0].refs, groups[0].keys); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The column reader gives back the batches the encoder wrote, for every
// column kind, and its digest of them equals the row reader's digest of the
// file: the check compaction relies on.
func TestBatchReaderRoundTripsEveryKind(t *testing.T) {
	l, err := kindsTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	rec := kindsRecord(100, 0)
	defer rec.Release()
	data := writeKinds(t, l, rec, 30)
	rd := newBatchReader(l, memory.DefaultAllocator)
	defer rd.release()
	batches, err := readAll(rd, bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 4 {
		t.Fatalf("%d batches, want one per row group (4)", len(batches))
	}
	var cols digest
	off := int64(0)
	for i, b := range batches {
		if want := rec.NewSlice(off, off+b.NumRows()); !array.RecordEqual(b, want) {
			t.Errorf("row group %d read back as\n%v\nwant\n%v", i, b, want)
		}
		off += b.NumRows()
		cols.addBatch(l, b)
		b.Release()
	}
	if off != rec.NumRows() {
		t.Errorf("read %d rows, want %d", off, rec.NumRows())
	}
	rows, err := digestFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !cols.equal(&rows) {
		t.Errorf("column digest %s, row digest %s", &cols, &rows)
	}
}

// Compaction of files with every column kind is lossless and gives the
// same bytes for the same input.
func TestCompactEveryKindSameInputSameOutput(t *testing.T) {
	l, err := kindsTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	var inputs [][]byte
	for i := range 3 {
		rec := kindsRecord(90, i*90)
		inputs = append(inputs, writeKinds(t, l, rec, 1000))
		rec.Release()
	}
	var outs [][]byte
	for range 2 {
		dir := t.TempDir()
		pdir := filepath.Join(dir, "kinds", "date=2024-06-01", "hour=00")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, data := range inputs {
			if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("p0-%d-%d.parquet", i, i)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{kindsTable}, RowGroupRows: 100, Logger: quietLogger()})
		if err != nil || res.Rows != 270 || res.FilesOut != 1 {
			t.Fatalf("compaction: %+v, %v", res, err)
		}
		files := archiveFiles(t, filepath.Join(dir, "kinds"))
		if len(files) != 1 {
			t.Fatalf("files after compaction: %v", files)
		}
		data, err := os.ReadFile(filepath.Join(dir, "kinds", files[0]))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, data)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("the same inputs compacted to different bytes")
	}
	rd := newBatchReader(l, memory.DefaultAllocator)
	defer rd.release()
	batches, err := readAll(rd, bytes.NewReader(outs[0]), int64(len(outs[0])), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The inputs are in key order (k00 < k01 < k02): the output is them,
	// one after the other.
	var want []arrow.RecordBatch
	for i := range 3 {
		want = append(want, kindsRecord(90, i*90))
	}
	if !recordsEqual(batches, want) {
		t.Errorf("compacted rows differ from the inputs': got\n%v\nwant\n%v", batches, want)
	}
	for _, b := range append(batches, want...) {
		b.Release()
	}
}

// recordsEqual reports whether a and b hold the same rows in the same
// order, however they are split into batches.
func recordsEqual(a, b []arrow.RecordBatch) bool {
	ta := array.NewTableFromRecords(kindsTable.Schema, a)
	defer ta.Release()
	tb := array.NewTableFromRecords(kindsTable.Schema, b)
	defer tb.Release()
	return array.TableEqual(ta, tb)
}

// A file damaged anywhere gives an error, never a panic, and leaves the
// reader fit to read the next file.
func TestBatchReaderDamagedFileThenGoodFile(t *testing.T) {
	l, err := SamplesTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	valid := seedFileT(t)
	want, err := digestFile(bytes.NewReader(valid), int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	rd := newBatchReader(l, memory.DefaultAllocator)
	defer rd.release()
	failed := 0
	for off := 4; off < len(valid)-8; off += 7 {
		bad := bytes.Clone(valid)
		bad[off] ^= 0xa5
		if batches, err := readAll(rd, bytes.NewReader(bad), int64(len(bad)), nil); err != nil {
			failed++
			if len(batches) != 0 {
				t.Fatalf("damage at %d: error %v but %d batches", off, err, len(batches))
			}
		} else {
			for _, b := range batches {
				b.Release()
			}
		}
		batches, err := readAll(rd, bytes.NewReader(valid), int64(len(valid)), nil)
		if err != nil {
			t.Fatalf("after damage at %d: %v", off, err)
		}
		var got digest
		for _, b := range batches {
			got.addBatch(l, b)
			b.Release()
		}
		if !got.equal(&want) {
			t.Fatalf("after damage at %d: read %s, want %s", off, &got, &want)
		}
	}
	if failed == 0 {
		t.Error("no damage was detected")
	}
}

// A partition bigger than TargetFileSize is compacted into several files
// which, in order, hold the rows sorted.
func TestCompactSplitsAtTargetFileSize(t *testing.T) {
	l, err := kindsTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pdir := filepath.Join(dir, "kinds", "date=2024-06-01", "hour=00")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var want []arrow.RecordBatch
	for i := range 3 {
		rec := kindsRecord(90, i*90)
		want = append(want, rec)
		// Written in reverse name order, so that compaction must sort.
		if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("p0-%d-%d.parquet", 9-i, 9-i)), writeKinds(t, l, rec, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{kindsTable}, RowGroupRows: 100, TargetFileSize: 1, Logger: quietLogger()})
	if err != nil || res.Rows != 270 || res.FilesOut != 3 {
		t.Fatalf("compaction: %+v, %v; want 270 rows in 3 files", res, err)
	}
	files := archiveFiles(t, filepath.Join(dir, "kinds")) // c-<id>-0, -1, -2
	rd := newBatchReader(l, memory.DefaultAllocator)
	defer rd.release()
	var got []arrow.RecordBatch
	for i, f := range files {
		if !bytes.HasSuffix([]byte(f), fmt.Appendf(nil, "-%d.parquet", i)) {
			t.Fatalf("files %v are not c-<id>-0..2", files)
		}
		got, err = readAllPath(rd, filepath.Join(dir, "kinds", f), got)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !recordsEqual(got, want) {
		t.Errorf("compacted rows differ from the inputs': got\n%v\nwant\n%v", got, want)
	}
	for _, b := range append(got, want...) {
		b.Release()
	}
}

// readAll reads the whole Parquet file in src with rd and appends its row
// groups to batches, one batch each. On error, the batches it appended are
// released and batches is returned as it was given.
func readAll(rd *batchReader, src io.ReaderAt, size int64, batches []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	n0 := len(batches)
	err := rd.open(src, size)
	for err == nil {
		var rec arrow.RecordBatch
		if rec, err = rd.next(math.MaxInt); err == nil {
			batches = append(batches, rec)
		}
	}
	if errors.Is(err, io.EOF) {
		return batches, nil
	}
	for _, b := range batches[n0:] {
		b.Release()
	}
	return batches[:n0], err
}

// readAllPath is readAll of the file at path.
func readAllPath(rd *batchReader, path string, batches []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return batches, err
	}
	return readAll(rd, bytes.NewReader(data), int64(len(data)), batches)
}

// Batches cut anywhere in a row group, across pages and across the
// reader's buffer of decoded values, read back every kind of column as it
// was written: null and empty maps, null map values, nulls.
func TestBatchReaderCutsBatchesAnywhere(t *testing.T) {
	l, err := kindsTable.compile()
	if err != nil {
		t.Fatal(err)
	}
	rec := kindsRecord(3000, 0)
	defer rec.Release()
	enc := newEncoder(l, writerConfig{CompressionLevel: 1, RowGroupRows: 1100, PageBytes: 2 << 10}) // many pages per chunk
	var buf bytes.Buffer
	g := enc.plan([]arrow.RecordBatch{rec})[0]
	if err := enc.writeFile(&buf, []arrow.RecordBatch{rec}, g.refs, g.keys); err != nil {
		t.Fatal(err)
	}
	rd := newBatchReader(l, memory.DefaultAllocator)
	defer rd.release()
	for _, size := range []int{1, 7, 333, leafValues + 1, 5000} {
		if err := rd.open(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
		var got []arrow.RecordBatch
		for {
			b, err := rd.next(size)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("batches of %d: %v", size, err)
			}
			if b.NumRows() > int64(size) {
				t.Errorf("batches of %d: a batch of %d rows", size, b.NumRows())
			}
			got = append(got, b)
		}
		if !recordsEqual(got, []arrow.RecordBatch{rec}) {
			t.Errorf("batches of %d: the rows read back differ from those written", size)
		}
		for _, b := range got {
			b.Release()
		}
	}
}
