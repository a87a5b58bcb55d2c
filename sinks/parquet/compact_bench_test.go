package parquet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"
)

// BenchmarkCompact compacts one hour partition of 60 one-minute input files
// (600k synthetic samples, the sample schema, a unique label per sample)
// per iteration, at the default compaction settings, and reports its CPU
// time per row (user + system, from getrusage), the peak live heap while it
// ran (peak-heap-MiB: the largest heap a GC marked live) and how much of it
// compaction added to what the benchmark itself holds (compact-heap-MiB:
// the peak minus the live heap after a GC just before):
//
//	go test -run '^$' -bench 'BenchmarkCompact$' -benchtime 3x ./sinks/parquet/
func BenchmarkCompact(b *testing.B) {
	const perFile = 10_000
	benchCompact(b, [][][]byte{compactInputFiles(b, genRows(0, 60*perFile, 1), perFile)})
}

// BenchmarkCompactReference compacts the first three hours of the reference
// workload (docs/benchmarks.md#archive), each hour as the archiver writes it
// at the default settings (files of DefaultFlushRows rows):
//
//	RECON_BENCH_WORKLOAD=/tmp/reconbench/workload.parquet go test -run '^$' -bench CompactReference -benchtime 2x ./sinks/parquet/
func BenchmarkCompactReference(b *testing.B) {
	path := os.Getenv("RECON_BENCH_WORKLOAD")
	if path == "" {
		b.Skip("set RECON_BENCH_WORKLOAD to the reference workload.parquet (docs/benchmarks.md#archive)")
	}
	var hours [][][]byte
	for _, rows := range referenceHours(b, path, 3) {
		hours = append(hours, compactInputFiles(b, rows, DefaultFlushRows))
	}
	benchCompact(b, hours)
}

// referenceHours reads the rows of the n hours of the workload at path that
// start with the hour of its first row, by hour. (The reader converts its µs
// timestamps to testRow's ns.)
func referenceHours(b *testing.B, path string, n int) [][]testRow {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := pq.NewGenericReader[testRow](f)
	defer r.Close()
	var hours [][]testRow
	first := int64(-1)
	for {
		buf := make([]testRow, 4096) // the rows are kept: a new buffer for each read
		k, err := r.Read(buf)
		for _, row := range buf[:k] {
			h := row.Ts / nsPerHour
			if first < 0 {
				first = h
			}
			if h-first >= int64(n) {
				return hours // the workload is in time order
			}
			for int64(len(hours)) <= h-first {
				hours = append(hours, nil)
			}
			hours[h-first] = append(hours[h-first], row)
		}
		if errors.Is(err, io.EOF) {
			return hours
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchCompact compacts hour partitions of the given input files per
// iteration.
func benchCompact(b *testing.B, hours [][][]byte) {
	var n int64
	for _, files := range hours {
		for _, data := range files {
			f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				b.Fatal(err)
			}
			n += f.NumRows()
		}
	}
	var cpu time.Duration
	var maxPeak, maxGrowth uint64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		for h, files := range hours {
			pdir := filepath.Join(dir, "samples", "date=2024-06-01", fmt.Sprintf("hour=%02d", h))
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				b.Fatal(err)
			}
			for j, data := range files {
				if err := os.WriteFile(filepath.Join(pdir, fmt.Sprintf("p0-%06d-%06d.parquet", 2*j, 2*j+1)), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC() // the live heap before: what the benchmark itself holds
		base := liveHeap()
		var peak uint64
		b.StartTimer()
		stop := watchHeap(&peak)
		c0 := cpuTime(b)
		res, err := Compact(context.Background(), dir, CompactOptions{Tables: []Table{SamplesTable}, Logger: quietLogger()})
		cpu += cpuTime(b) - c0
		stop()
		maxPeak, maxGrowth = max(maxPeak, peak), max(maxGrowth, peak-min(base, peak))
		if err != nil || res.Rows != n || res.FilesOut != len(hours) {
			b.Fatalf("compaction: %+v, %v; want %d rows in %d files", res, err, n, len(hours))
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*int64(b.N)), "cpu-ns/row")
	b.ReportMetric(float64(maxPeak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(maxGrowth)/(1<<20), "compact-heap-MiB")
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
			if err := enc.writeFile(&buf, batches, g.refs, g.keys); err != nil {
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

// liveHeap is the heap the last GC marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// watchHeap samples the live heap (as the last GC marked it) every 2 ms
// into *peak (the maximum seen)
// until the returned function is called.
func watchHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, liveHeap())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
