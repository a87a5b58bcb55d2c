// Package historytest writes real sample archives for tests and benchmarks
// of the history query: batches of the sample schema go through the
// archiver of sinks/parquet, fed by an in-memory bus consumer, so the files
// are exactly what recond writes.
package historytest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// Point is one sample row; a point with Null set has a null value.
type Point struct {
	Source, Metric, Target string
	Ts                     int64 // Unix nanoseconds
	Value                  float64
	Null                   bool
}

// Batch builds one sample-schema record batch of points.
func Batch(points []Point) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	ts := b.Field(sample.IdxTs).(*array.TimestampBuilder)
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	val := b.Field(sample.IdxValue).(*array.Float64Builder)
	labels := b.Field(sample.IdxLabels).(*array.MapBuilder)
	for _, p := range points {
		ts.Append(arrow.Timestamp(p.Ts))
		str(sample.IdxPipeline).Append("test")
		str(sample.IdxSource).Append(p.Source)
		str(sample.IdxModule).Append("selfcheck")
		str(sample.IdxTarget).Append(p.Target)
		str(sample.IdxMetric).Append(p.Metric)
		if p.Null {
			val.AppendNull()
		} else {
			val.Append(p.Value)
		}
		str(sample.IdxText).AppendNull()
		str(sample.IdxUnit).AppendNull()
		labels.Append(true)
		str(sample.IdxNode).Append("node1")
	}
	return b.NewRecordBatch()
}

// Write archives batches into a new archive at dir; see Writer.
func Write(dir string, batches []arrow.RecordBatch) error {
	return NewWriter(dir).Write(batches)
}

// Writer archives batches into the archive at one directory, in several
// calls when the whole archive would not fit in memory at once.
type Writer struct {
	dir string
	// next is the bus offset of the next batch: offsets go on across calls,
	// as they do on a real bus, so file names never repeat.
	next int64
}

// NewWriter returns a Writer into the archive at dir.
func NewWriter(dir string) *Writer { return &Writer{dir: dir} }

// NewWriterAt returns a Writer into the archive at dir whose first batch
// has bus offset next, so that its files are named apart from those an
// earlier Writer wrote.
func NewWriterAt(dir string, next int64) *Writer { return &Writer{dir: dir, next: next} }

// Write archives batches with the real archiver and returns once every
// batch is committed (durable). It takes ownership of the batches.
func (w *Writer) Write(batches []arrow.RecordBatch) error {
	if len(batches) == 0 {
		return nil
	}
	cons := &sliceConsumer{recs: batches, base: w.next, done: make(chan struct{})}
	w.next += int64(len(batches))
	dir := w.dir
	cfg := parquet.DefaultConfig(dir)
	cfg.Compact = false
	cfg.FlushInterval = time.Hour
	a, err := parquet.NewArchiver(parquet.Options{
		Config:   cfg,
		Consumer: cons,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("historytest: %w", err)
	}
	return run(a, cons, w.next-1)
}

// run runs the archiver until it added every batch of cons, stops it (which
// writes them out) and checks that it committed up to last.
func run(a *parquet.Archiver, cons *sliceConsumer, last int64) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// Every batch added: cancelling makes Run write the rest and return.
	select {
	case <-cons.done:
	case err := <-done:
		return fmt.Errorf("historytest: archiver stopped early: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		return fmt.Errorf("historytest: archiver: %w", err)
	}
	if got := cons.committed(); got != last {
		return fmt.Errorf("historytest: archiver committed offset %d, want %d", got, last)
	}
	return nil
}

// sliceConsumer is a bus.Consumer over prepared batches.
type sliceConsumer struct {
	recs []arrow.RecordBatch
	base int64 // offset of recs[0]
	done chan struct{}

	mu      sync.Mutex
	next    int
	drained bool
	last    int64 // one past the last committed offset; 0 before any commit
}

func (c *sliceConsumer) Fetch(ctx context.Context) (bus.Message, error) {
	c.mu.Lock()
	if c.next == len(c.recs) {
		// Asked for more after the last batch: the archiver holds them all.
		if !c.drained {
			c.drained = true
			close(c.done)
		}
		c.mu.Unlock()
		<-ctx.Done()
		return bus.Message{}, ctx.Err()
	}
	i := c.next
	c.next++
	c.mu.Unlock()
	return bus.Message{Record: c.recs[i], Offset: c.base + int64(i), Key: "k"}, nil
}

func (c *sliceConsumer) Commit(_ context.Context, m bus.Message) error {
	c.mu.Lock()
	c.last = m.Offset + 1
	c.mu.Unlock()
	return nil
}

func (c *sliceConsumer) committed() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last - 1
}

func (c *sliceConsumer) Close() error { return nil }

// WriteAlerts archives alert events into the alerts table of the archive
// at dir with the real archiver.
func WriteAlerts(dir string, events []alert.Event) error {
	rec := alert.Record(memory.DefaultAllocator, events)
	cons := &sliceConsumer{recs: []arrow.RecordBatch{rec}, done: make(chan struct{})}
	cfg := parquet.DefaultConfig(dir)
	cfg.Compact = false
	cfg.FlushInterval = time.Hour
	a, err := parquet.NewArchiver(parquet.Options{
		Config:   cfg,
		Table:    parquet.AlertsTable,
		Consumer: cons,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return fmt.Errorf("historytest: %w", err)
	}
	return run(a, cons, 0)
}
