package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"

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

// BenchmarkArchiveReference archives the reference workload of
// shared/bench (14.4M rows, time-ordered), read from the Parquet file that
// RECON_BENCH_WORKLOAD names, in 64k-row batches as the batcher makes them.
// It reports rows/s and bytes per sample, and the bytes of each column.
func BenchmarkArchiveReference(b *testing.B) {
	path := os.Getenv("RECON_BENCH_WORKLOAD")
	if path == "" {
		b.Skip("set RECON_BENCH_WORKLOAD to the reference workload.parquet (see docs/benchmarks-archive.md)")
	}
	recs, n := loadReference(b, path, 65536)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var total time.Duration
	var bytes int64
	var dir string
	for i := 0; b.Loop(); i++ {
		dir = filepath.Join(b.TempDir(), fmt.Sprint(i))
		total += archiveBatches(b, dir, recs, DefaultConfig(dir))
		bytes = dirBytes(b, dir)
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(n), "B/sample")
	reportColumns(b, dir, n)
}

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
	tbuf := make([]testRow, per)
	var recs []arrow.RecordBatch
	total := 0
	for {
		n, err := r.Read(buf)
		for i, x := range buf[:n] {
			tbuf[i] = testRow{Ts: x.Ts * 1000, Pipeline: x.Pipeline, Source: x.Source, Module: x.Module,
				Target: x.Target, Metric: x.Metric, Value: x.Value, Text: x.Text, Unit: x.Unit, Labels: x.Labels, Node: x.Node}
		}
		if n > 0 {
			recs = append(recs, record(tbuf[:n]))
			total += n
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return recs, total
}

// reportColumns logs the compressed bytes per sample of each column.
func reportColumns(b *testing.B, dir string, rows int) {
	b.Helper()
	sizes := map[string]int64{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Ext(path) != ".parquet" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := pq.OpenFile(bytesReaderAt(data), int64(len(data)))
		if err != nil {
			return err
		}
		for _, rg := range f.Metadata().RowGroups {
			for _, c := range rg.Columns {
				sizes[fmt.Sprint(c.MetaData.PathInSchema)] += c.MetaData.TotalCompressedSize
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, 0, len(sizes))
	for k := range sizes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.Logf("%-28s %.3f B/sample", k, float64(sizes[k])/float64(rows))
	}
}
