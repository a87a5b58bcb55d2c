package parquet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// BenchmarkCompact compacts one hour partition of 60 one-minute input files
// (600k synthetic samples, the sample schema) per iteration, at the default
// compaction settings, and reports its CPU time per row (user + system, from
// getrusage) and the peak live heap while it ran:
//
//	go test -run '^$' -bench BenchmarkCompact -benchtime 3x ./sinks/parquet/
func BenchmarkCompact(b *testing.B) {
	const files, perFile = 60, 10_000
	const n = files * perFile
	inputs := compactInputFiles(b, genRows(0, n, 1), perFile)
	var cpu time.Duration
	var peak uint64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		pdir := filepath.Join(dir, "samples", "date=2024-06-01", "hour=00")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			b.Fatal(err)
		}
		for j, data := range inputs {
			if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("p0-%06d-%06d.parquet", 2*j, 2*j+1)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		stop := watchHeap(&peak)
		c0 := cpuTime(b)
		res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, Logger: quietLogger()})
		cpu += cpuTime(b) - c0
		stop()
		if err != nil || res.Rows != n || res.FilesOut != 1 {
			b.Fatalf("compaction: %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/row")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// compactInputFiles encodes rows as archiver files of perFile rows each at
// the archiver's default level, and returns their bytes.
func compactInputFiles(b *testing.B, rows []testRow, perFile int) [][]byte {
	b.Helper()
	l, err := SamplesTable.compile()
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig(b.TempDir())
	enc := newEncoder(l, writerConfig{CompressionLevel: cfg.CompressionLevel, RowGroupRows: cfg.RowGroupRows, PageBytes: pageBytes})
	var out [][]byte
	for i := 0; i < len(rows); i += perFile {
		rec := record(rows[i:min(i+perFile, len(rows))])
		batches := []arrow.RecordBatch{rec}
		groups := enc.plan(batches)
		var buf bytes.Buffer
		for _, g := range groups {
			if err := enc.writeFile(&buf, batches, g.refs); err != nil {
				b.Fatal(err)
			}
		}
		rec.Release()
		out = append(out, buf.Bytes())
	}
	return out
}

func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watchHeap samples the live heap every 2 ms into *peak (the maximum seen)
// until the returned function is called.
func watchHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
