package duckdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// sliceConsumer hands out prepared batches, so that the benchmark measures
// the archiver alone (the journal has its own benchmarks).
type sliceConsumer struct {
	recs []arrow.RecordBatch
	next int
}

func (c *sliceConsumer) Fetch(ctx context.Context) (bus.Message, error) {
	if c.next == len(c.recs) {
		<-ctx.Done()
		return bus.Message{}, ctx.Err()
	}
	rec := c.recs[c.next]
	rec.Retain()
	c.next++
	return bus.Message{Record: rec, Offset: int64(c.next - 1)}, nil
}

func (c *sliceConsumer) Commit(context.Context, bus.Message) error { return nil }
func (c *sliceConsumer) Close() error                              { return nil }

// refRow is a row of the reference workload as DuckDB exports it (ts in µs).
type refRow struct {
	Ts       int64             `parquet:"ts"`
	Pipeline string            `parquet:"pipeline"`
	Source   string            `parquet:"source"`
	Module   string            `parquet:"module"`
	Target   string            `parquet:"target"`
	Metric   string            `parquet:"metric"`
	Value    *float64          `parquet:"value,optional"`
	Text     *string           `parquet:"text,optional"`
	Unit     *string           `parquet:"unit,optional"`
	Labels   map[string]string `parquet:"labels"`
	Node     string            `parquet:"node"`
}

// loadReference reads the workload into sample batches of per rows, in file
// (time) order, as the batcher would have made them.
func loadReference(b *testing.B, path string, per int) ([]arrow.RecordBatch, int) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := pq.NewGenericReader[refRow](f)
	defer r.Close()
	buf := make([]refRow, per)
	var recs []arrow.RecordBatch
	total := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			recs = append(recs, refBatch(buf[:n]))
			total += n
		}
		if errors.Is(err, io.EOF) {
			return recs, total
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func refBatch(rows []refRow) arrow.RecordBatch {
	bld := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer bld.Release()
	str := func(i int) *array.StringBuilder { return bld.Field(i).(*array.StringBuilder) }
	opt := func(i int, v *string) {
		if v == nil {
			str(i).AppendNull()
		} else {
			str(i).Append(*v)
		}
	}
	for _, r := range rows {
		bld.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Ts * 1000))
		str(sample.IdxPipeline).Append(r.Pipeline)
		str(sample.IdxSource).Append(r.Source)
		str(sample.IdxModule).Append(r.Module)
		str(sample.IdxTarget).Append(r.Target)
		str(sample.IdxMetric).Append(r.Metric)
		if r.Value == nil {
			bld.Field(sample.IdxValue).(*array.Float64Builder).AppendNull()
		} else {
			bld.Field(sample.IdxValue).(*array.Float64Builder).Append(*r.Value)
		}
		opt(sample.IdxText, r.Text)
		opt(sample.IdxUnit, r.Unit)
		mb := bld.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		for k, v := range r.Labels {
			mb.KeyBuilder().(*array.StringBuilder).Append(k)
			mb.ItemBuilder().(*array.StringBuilder).Append(v)
		}
		str(sample.IdxNode).Append(r.Node)
	}
	return bld.NewRecordBatch()
}

// cpuTime is the process's user+system CPU time so far: on a shared
// machine it is steadier than wall time.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func parquetBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && filepath.Ext(fi.Name()) == ".parquet" {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkReferenceWorkload archives the reference workload of
// shared/bench (14.4M rows, time-ordered) with Recon's archiver, compacts
// it, and writes the same rows with DuckDB's own COPY, in the same run:
//
//	RECON_BENCH_WORKLOAD=/tmp/reconbench/workload.parquet go test -run '^$' -bench Reference -benchtime 1x
//
// The archiver is fed 64k-row batches from memory, as the bus hands them
// over, with the default settings (parquet.DefaultFlushRows, zstd
// parquet.DefaultCompressionLevel), each range fsynced and committed;
// compaction then rewrites each hour at parquet.DefaultCompactLevel.
// DuckDB copies from an in-memory table of the same rows.
func BenchmarkReferenceWorkload(b *testing.B) {
	path := os.Getenv("RECON_BENCH_WORKLOAD")
	if path == "" {
		b.Skip("set RECON_BENCH_WORKLOAD to the reference workload.parquet (docs/benchmarks.md#archive)")
	}
	recs, n := loadReference(b, path, 65536)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	rows := float64(n)
	for b.Loop() {
		dir := b.TempDir()
		cons := &sliceConsumer{recs: recs}
		a, err := parquet.NewArchiver(parquet.Options{Config: parquet.DefaultConfig(dir), Consumer: cons, Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		t0, c0 := time.Now(), cpuTime(b)
		go func() { done <- a.Run(ctx) }()
		for a.Stats().RowsWritten+a.Stats().PendingRows < int64(n) {
			time.Sleep(time.Millisecond)
		}
		cancel() // Run writes out the last range, then returns
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		write, writeCPU := time.Since(t0), cpuTime(b)-c0
		if got := a.Stats().RowsWritten; got != int64(n) {
			b.Fatalf("archived %d rows, want %d", got, n)
		}
		written := parquetBytes(b, dir)

		t1, c1 := time.Now(), cpuTime(b)
		// Every hour of the workload is closed: nothing else writes here,
		// and its last hour may be the current one.
		res, err := parquet.Compact(context.Background(), dir, parquet.CompactOptions{Logger: quiet(), ClosedBefore: time.Now().Add(48 * time.Hour)})
		if err != nil || res.Rows != int64(n) {
			b.Fatalf("compaction: %+v, %v", res, err)
		}
		compact, compactCPU := time.Since(t1), cpuTime(b)-c1
		compacted := parquetBytes(b, dir)

		b.ReportMetric(rows/write.Seconds(), "rows/s")
		b.ReportMetric(float64(written)/rows, "B/sample-written")
		b.ReportMetric(rows/compact.Seconds(), "rows/s-compact")
		b.ReportMetric(float64(compacted)/rows, "B/sample")
		b.ReportMetric(float64(writeCPU.Nanoseconds())/rows, "cpu-ns/sample")
		b.Logf("recon archiver: %.2f M rows/s, %.0f CPU ns/sample, %.3f B/sample as written; compaction %.2f M rows/s, %.0f CPU ns/sample → %.3f B/sample",
			rows/write.Seconds()/1e6, float64(writeCPU.Nanoseconds())/rows, float64(written)/rows,
			rows/compact.Seconds()/1e6, float64(compactCPU.Nanoseconds())/rows, float64(compacted)/rows)

		duck := duckdbCopies(b, path, b.TempDir(), rows)
		for _, d := range duck {
			b.Logf("duckdb %-36s %.2f M rows/s, %.0f CPU ns/sample, %.3f B/sample (recon compacted / duckdb = %.2f)",
				d.name, d.rate/1e6, d.cpuNs, d.bps, float64(compacted)/rows/d.bps)
		}
	}
}

type duckResult struct {
	name             string
	rate, bps, cpuNs float64
}

// duckdbCopies writes the workload with DuckDB's COPY variants of
// shared/bench/README.md plus the hourly hive layout the archive uses.
func duckdbCopies(b *testing.B, workload, dir string, rows float64) []duckResult {
	b.Helper()
	db, err := openDB()
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(fmt.Sprintf("CREATE TABLE s AS SELECT ts, pipeline, source, module, target, metric, value, text, unit, labels, node FROM read_parquet('%s')", workload)); err != nil {
		b.Fatal(err)
	}
	sorted := "SELECT * FROM s ORDER BY source, metric, target, ts"
	hourly := "SELECT *, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour FROM s ORDER BY source, metric, target, ts"
	variants := []struct{ name, query, opts string }{
		{"sorted, zstd", sorted, "COMPRESSION zstd"},
		{"sorted, zstd-9, 1M-row groups", sorted, "COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 1000000"},
		{"hourly hive, sorted, zstd-9, 1M rg", hourly, "COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE 1000000, PARTITION_BY (date, hour)"},
	}
	var out []duckResult
	for i, v := range variants {
		// A partitioned COPY writes into a new directory, a plain one a file.
		target := filepath.Join(dir, fmt.Sprintf("v%d", i))
		dest := target
		if !strings.Contains(v.opts, "PARTITION_BY") {
			if err := os.Mkdir(target, 0o755); err != nil {
				b.Fatal(err)
			}
			dest = filepath.Join(target, "out.parquet")
		}
		q := fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, %s)", v.query, dest, v.opts)
		t0, c0 := time.Now(), cpuTime(b)
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
		el, cpu := time.Since(t0), cpuTime(b)-c0
		out = append(out, duckResult{name: v.name, rate: rows / el.Seconds(), bps: float64(parquetBytes(b, target)) / rows,
			cpuNs: float64(cpu.Nanoseconds()) / rows})
	}
	return out
}
