package parquet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/bus"
)

// sliceConsumer is a bus.Consumer over prepared batches, so that benchmarks
// measure the archiver alone. Commit only records the position.
type sliceConsumer struct {
	recs      []arrow.RecordBatch
	next      int
	committed int64
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

func (c *sliceConsumer) Commit(_ context.Context, m bus.Message) error {
	c.committed = m.Offset
	return nil
}

func (c *sliceConsumer) Close() error { return nil }

// archiveBatches runs an archiver over recs into dir until every batch is
// committed, and returns the elapsed time.
func archiveBatches(b *testing.B, dir string, recs []arrow.RecordBatch, cfg Config) time.Duration {
	b.Helper()
	cons := &sliceConsumer{recs: recs, committed: -1}
	cfg.Dir = dir
	cfg.Compact = false
	cfg.FlushInterval = time.Hour
	a, err := NewArchiver(Options{Config: cfg, Consumer: cons, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t0 := time.Now()
	go func() { done <- a.Run(ctx) }()
	// All rows are fetched once the consumer is drained; cancelling then
	// makes Run write out the rest and return.
	for cons.next < len(recs) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	if cons.committed != int64(len(recs)-1) {
		b.Fatalf("committed offset %d, want %d", cons.committed, len(recs)-1)
	}
	return elapsed
}

// BenchmarkArchiveSynthetic archives 200k synthetic samples (the sample
// schema, 12 sources × 4 metrics × 3 targets) per iteration.
func BenchmarkArchiveSynthetic(b *testing.B) {
	const n, per = 200_000, 10_000
	rows := genRows(0, n, 2)
	var recs []arrow.RecordBatch
	for i := 0; i < n; i += per {
		recs = append(recs, record(rows[i:i+per]))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	b.ReportAllocs()
	var total time.Duration
	var bytes int64
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		total += archiveBatches(b, dir, recs, DefaultConfig(dir))
		bytes = dirBytes(b, dir)
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/n, "B/sample")
}

func dirBytes(b *testing.B, dir string) int64 {
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

// BenchmarkEncodeRange encodes one archiver range per iteration, as a
// writer goroutine does (plan, then a file per hour), with the encoder
// reused across ranges: 262,144 rows in four 65,536-row batches, one
// source each, of the http-like shape of the Kafka end-to-end benchmark
// (32,128 series, no labels). It reports CPU ns per row (user + system:
// the columns are encoded in parallel) and the file bytes per row.
//
//	go test -run '^$' -bench BenchmarkEncodeRange -benchtime 20x -count 3 ./sinks/parquet/
func BenchmarkEncodeRange(b *testing.B) {
	const batchRows, nBatches = 65536, 4
	var batches []arrow.RecordBatch
	t0 := base + int64(30*time.Minute)
	for s := range nBatches {
		rows := make([]testRow, batchRows)
		for i := range rows {
			unit := "s"
			v := float64(i%1000) / 1000
			rows[i] = testRow{Ts: t0 + int64(i)*int64(time.Millisecond), Pipeline: "bench", Source: fmt.Sprintf("web-%02d", s),
				Module: "http", Target: fmt.Sprintf("10.0.%d.%d", i%16, i%251), Metric: []string{"duration", "code", "status", "available"}[i%4],
				Value: &v, Unit: &unit, Node: "collector-1"}
		}
		batches = append(batches, record(rows))
	}
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	l, err := SamplesTable.compile()
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Config: DefaultConfig(b.TempDir())}
	enc := newEncoder(l, opts.writerConfig())
	out := &countingWriter{w: io.Discard}
	encode := func() {
		for _, g := range enc.plan(batches) {
			if err := enc.writeFile(out, batches, g.refs, g.keys); err != nil {
				b.Fatal(err)
			}
		}
	}
	encode() // the writer goroutine's first range
	out.n = 0
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		encode()
	}
	rows := float64(b.N * batchRows * nBatches)
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/rows, "cpu-ns/row")
	b.ReportMetric(float64(out.n)/rows, "B/row")
}
