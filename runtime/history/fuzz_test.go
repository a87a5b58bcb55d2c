package history

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/history/historytest"
)

// FuzzReadFile feeds damaged archive files to the query and catalog
// readers: they must return errors, never panic or hang.
func FuzzReadFile(f *testing.F) {
	dir := f.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var pts []historytest.Point
	for i := range 50 {
		ts := t0.Add(time.Duration(i) * time.Minute).UnixNano()
		pts = append(pts,
			historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts, Value: float64(i), Null: i%9 == 0},
			historytest.Point{Source: "web", Metric: "code", Target: "b", Ts: ts, Value: 200},
		)
	}
	if err := historytest.Write(dir, []arrow.RecordBatch{historytest.Batch(pts)}); err != nil {
		f.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "samples", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no archive file written: %v", err)
	}
	good, err := os.ReadFile(files[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte{})
	flipped := bytes.Clone(good)
	flipped[len(flipped)/3] ^= 0xff
	f.Add(flipped)

	sc := &scan{
		q:    Query{Source: "web", Metric: "duration", From: t0, To: t0.Add(time.Hour), Points: 10},
		from: t0.UnixNano(), to: t0.Add(time.Hour).UnixNano(), n: 10,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(newIndexCache(1000))
		path := filepath.Join(t.TempDir(), "f.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		key := fileKey{path: path, size: int64(len(data))}
		_ = r.readFile(key, sc, sc.newAccumulator())
		_, _ = r.fileIndex(key)
	})
}
