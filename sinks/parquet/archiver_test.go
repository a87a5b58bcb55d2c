package parquet

import (
	"cmp"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func TestArchiveLayoutSchemaAndOrder(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, filepath.Join(dir, "journal"))
	rows := genRows(0, 3000, 3)
	publish(t, j, rows, 250) // 12 messages, offsets 0..11
	archive := filepath.Join(dir, "archive")
	r := start(t, j, Options{Config: Config{Dir: archive, FlushRows: len(rows), FlushInterval: time.Hour}})
	waitFor(t, "the flush", func() bool { return r.a.Stats().Flushes == 1 })
	r.stop(t)

	root := filepath.Join(archive, "samples")
	files := archiveFiles(t, root)
	want := []string{
		"date=2024-06-01/hour=00/p0-0-11.parquet",
		"date=2024-06-01/hour=01/p0-0-11.parquet",
		"date=2024-06-01/hour=02/p0-0-11.parquet",
	}
	if !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	var got []testRow
	for i, f := range files {
		path := filepath.Join(root, f)
		checkSampleSchema(t, path)
		fr := readRows(t, path)
		for _, row := range fr {
			if h := time.Unix(0, row.Ts).UTC().Hour(); h != i {
				t.Errorf("%s holds a row of hour %d", f, h)
			}
		}
		if !slices.IsSortedFunc(fr, compareSampleOrder) {
			t.Errorf("%s is not sorted by (source, metric, target, ts)", f)
		}
		got = append(got, fr...)
	}
	assertExactlyOnce(t, got, rows)
	bySeq := map[string]testRow{}
	for _, row := range got {
		bySeq[row.seq()] = row
	}
	for _, w := range rows {
		if g := bySeq[w.seq()]; !reflect.DeepEqual(g, w) {
			t.Fatalf("row seq %s read back as %+v, want %+v", w.seq(), g, w)
		}
	}
	st := r.a.Stats()
	if st.RowsWritten != int64(len(rows)) || st.FilesWritten != 3 || st.BytesWritten == 0 || st.PendingRows != 0 {
		t.Errorf("stats %+v", st)
	}
}

func compareSampleOrder(a, b testRow) int {
	return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Metric, b.Metric),
		strings.Compare(a.Target, b.Target), cmp.Compare(a.Ts, b.Ts))
}

// checkSampleSchema checks a file against the §3.1 contract, column for
// column, and that every column chunk is zstd-compressed.
func checkSampleSchema(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pq.OpenFile(bytesReaderAt(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	var got []string
	for _, c := range f.Schema().Fields() {
		got = append(got, c.Name())
	}
	wantNames := []string{"ts", "pipeline", "source", "module", "target", "metric", "value", "text", "unit", "labels", "node"}
	if !slices.Equal(got, wantNames) {
		t.Fatalf("columns %v, want %v", got, wantNames)
	}
	md := f.Metadata()
	type leaf struct {
		physical format.Type
		logical  string
		rep      format.FieldRepetitionType
	}
	leaves := map[string]leaf{}
	for _, e := range md.Schema[1:] {
		if _, seen := leaves[e.Name]; seen || !e.Type.Valid {
			continue // the map's key/value leaves come after the top-level ones
		}
		l := leaf{physical: e.Type.V, logical: e.LogicalType.String(), rep: e.RepetitionType.V}
		leaves[e.Name] = l
	}
	ts := leaves["ts"]
	if ts.physical != format.Int64 || !strings.Contains(ts.logical, "TIMESTAMP") || !strings.Contains(ts.logical, "isAdjustedToUTC=true") || !strings.Contains(ts.logical, "NANOS") || ts.rep != format.Required {
		t.Errorf("ts is %+v, want required INT64 TIMESTAMP(NANOS, UTC)", ts)
	}
	for _, name := range []string{"pipeline", "source", "module", "target", "metric", "node"} {
		if l := leaves[name]; l.physical != format.ByteArray || !strings.Contains(l.logical, "STRING") || l.rep != format.Required {
			t.Errorf("%s is %+v, want required UTF8 string", name, l)
		}
	}
	for _, name := range []string{"text", "unit"} {
		if l := leaves[name]; l.physical != format.ByteArray || !strings.Contains(l.logical, "STRING") || l.rep != format.Optional {
			t.Errorf("%s is %+v, want optional UTF8 string", name, l)
		}
	}
	if l := leaves["value"]; l.physical != format.Double || l.rep != format.Optional {
		t.Errorf("value is %+v, want optional DOUBLE", l)
	}
	labels := md.Schema[10]
	if _, isMap := labels.LogicalType.Value.(*format.MapType); labels.Name != "labels" || !isMap {
		t.Errorf("labels is %+v, want a MAP", labels)
	}
	for _, rg := range md.RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Zstd {
				t.Errorf("column %v compressed with %v, want ZSTD", c.MetaData.PathInSchema, c.MetaData.Codec)
			}
			path := strings.Join(c.MetaData.PathInSchema, ".")
			if (path == "source" || path == "metric") && !slices.Contains(c.MetaData.Encoding, format.RLEDictionary) {
				t.Errorf("column %s encodings %v, want dictionary", path, c.MetaData.Encoding)
			}
		}
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, os.ErrClosed
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, os.ErrClosed
	}
	return n, nil
}
