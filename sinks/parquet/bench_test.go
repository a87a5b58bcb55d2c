package parquet

import (
	"context"
	"fmt"
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
