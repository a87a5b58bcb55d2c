package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/sample"
)

// memBus keeps the published batches. gate, when set, holds every Publish
// until a value is received from it; fail makes the next n Publish calls
// fail (a bus fault a real journal produces only with a broken disk).
type memBus struct {
	mu      sync.Mutex
	recs    []arrow.RecordBatch
	gate    chan struct{}
	fail    int
	entered chan struct{}
}

func (m *memBus) Publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	if m.entered != nil {
		select {
		case m.entered <- struct{}{}:
		default:
		}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("disk on fire")
	}
	rec.Retain()
	m.recs = append(m.recs, rec)
	return nil
}

func (m *memBus) rows() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, r := range m.recs {
		n += r.NumRows()
	}
	return n
}

func (m *memBus) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		r.Release()
	}
	m.recs = nil
}

func TestRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bus := &memBus{}
	defer bus.release()
	b := New(bus, Options{MaxRows: 3, Shards: 1, Allocator: mem})
	w := b.Writer(Identity{Pipeline: "p", Source: "web", Module: "http", Target: "10.0.0.5", Node: "n1"})
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	w.SetTime(start)
	r := sample.Row{Labels: make([]sample.Label, 0, 2)}
	r.Metric, r.Value, r.HasValue, r.Unit = "code", 200, true, ""
	w.Write(&r)
	r.Reset()
	r.Metric, r.Text, r.HasText, r.Target, r.Ts = "status", "ok", true, "other", 42
	r.Labels = append(r.Labels, sample.Label{Key: "message", Value: "fine"}, sample.Label{Key: "k", Value: "v"})
	w.Write(&r)
	r.Reset()
	r.Metric, r.Value, r.HasValue, r.Unit = "duration", 0.25, true, "s"
	w.Write(&r) // third row: the batch is full and published now
	if got := bus.rows(); got != 3 {
		t.Fatalf("after a full batch the bus holds %d rows, want 3", got)
	}
	sample.WriteValue(w, "x", 1, "")
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, acc := bus.rows(), b.Accepted(); got != 4 || acc != 4 || w.Accepted() != 4 || w.Written() != 4 {
		t.Fatalf("bus rows %d, accepted %d, writer accepted %d written %d; want 4 each", got, acc, w.Accepted(), w.Written())
	}
	rec := bus.recs[0]
	if !rec.Schema().Equal(sample.Schema) {
		t.Fatalf("schema %v, want %v", rec.Schema(), sample.Schema)
	}
	ts := rec.Column(sample.IdxTs).(*array.Timestamp)
	if ts.Value(0) != arrow.Timestamp(start.UnixNano()) || ts.Value(1) != 42 {
		t.Errorf("ts = %v, %v; want run start and the row's own 42", ts.Value(0), ts.Value(1))
	}
	str := func(col, i int) string { return rec.Column(col).(*array.String).Value(i) }
	for col, want := range map[int]string{sample.IdxPipeline: "p", sample.IdxSource: "web", sample.IdxModule: "http", sample.IdxNode: "n1"} {
		if got := str(col, 1); got != want {
			t.Errorf("column %s = %q, want %q", sample.Schema.Field(col).Name, got, want)
		}
	}
	if str(sample.IdxTarget, 0) != "10.0.0.5" || str(sample.IdxTarget, 1) != "other" {
		t.Errorf("targets %q %q: want the identity's, then the row's override", str(sample.IdxTarget, 0), str(sample.IdxTarget, 1))
	}
	val := rec.Column(sample.IdxValue).(*array.Float64)
	if val.Value(0) != 200 || !val.IsNull(1) || val.Value(2) != 0.25 {
		t.Errorf("values %v", val)
	}
	text := rec.Column(sample.IdxText).(*array.String)
	if !text.IsNull(0) || text.Value(1) != "ok" {
		t.Errorf("text %v", text)
	}
	unit := rec.Column(sample.IdxUnit).(*array.String)
	if !unit.IsNull(0) || unit.Value(2) != "s" {
		t.Errorf("unit %v: empty unit must be null", unit)
	}
	labels := rec.Column(sample.IdxLabels).(*array.Map)
	if labels.IsNull(0) {
		t.Errorf("labels of a row without labels must be an empty map, not null")
	}
	s, e := labels.ValueOffsets(1)
	keys := labels.Keys().(*array.String)
	items := labels.Items().(*array.String)
	if e-s != 2 || keys.Value(int(s)) != "message" || items.Value(int(s)) != "fine" || keys.Value(int(s)+1) != "k" {
		t.Errorf("labels of row 1: %v", labels)
	}
}

func TestFlushByTime(t *testing.T) {
	bus := &memBus{}
	defer bus.release()
	b := New(bus, Options{MaxDelay: 20 * time.Millisecond})
	b.Start()
	defer b.Close(context.Background())
	w := b.Writer(Identity{Source: "s"})
	sample.WriteValue(w, "m", 1, "")
	for bus.rows() != 1 {
		time.Sleep(5 * time.Millisecond) // the test's own timeout bounds this
	}
	if w.Accepted() != 1 {
		t.Fatalf("writer accepted %d, want 1", w.Accepted())
	}
}

// A slow bus makes writers wait: nothing is dropped and a writer does not
// run ahead of the bus.
func TestBackpressure(t *testing.T) {
	gate := make(chan struct{})
	bus := &memBus{gate: gate, entered: make(chan struct{}, 1)}
	defer bus.release()
	b := New(bus, Options{MaxRows: 10, Shards: 1})
	w := b.Writer(Identity{Source: "s"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 35 {
			sample.WriteValue(w, "m", float64(i), "")
		}
	}()
	<-bus.entered // the first batch is being published by the writer itself
	select {
	case <-done:
		t.Fatal("writer finished although the bus accepted nothing")
	case <-time.After(50 * time.Millisecond):
	}
	if w.Written() != 10 {
		t.Fatalf("writer wrote %d rows while the bus was stuck, want 10 (one batch)", w.Written())
	}
	go func() {
		for range 4 {
			gate <- struct{}{}
		}
	}()
	<-done
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bus.rows() != 35 || b.Accepted() != 35 {
		t.Fatalf("bus %d rows, accepted %d: want 35", bus.rows(), b.Accepted())
	}
	col := bus.recs[3].Column(sample.IdxValue).(*array.Float64)
	if col.Value(4) != 34 {
		t.Fatalf("last value %v, want 34 (order kept)", col.Value(4))
	}
}

func TestPublishRetried(t *testing.T) {
	bus := &memBus{fail: 2}
	defer bus.release()
	b := New(bus, Options{MaxRows: 5})
	w := b.Writer(Identity{Source: "s"})
	for i := range 5 {
		sample.WriteValue(w, "m", float64(i), "")
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bus.rows() != 5 || b.Accepted() != 5 || b.PublishFailures() != 2 {
		t.Fatalf("rows %d accepted %d failures %d; want 5, 5, 2", bus.rows(), b.Accepted(), b.PublishFailures())
	}
}

func TestCloseGivesUp(t *testing.T) {
	bus := &memBus{gate: make(chan struct{})}
	b := New(bus, Options{})
	sample.WriteValue(b.Writer(Identity{Source: "s"}), "m", 1, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := b.Close(ctx)
	if err == nil || b.Accepted() != 0 {
		t.Fatalf("Close on a stuck bus: err %v, accepted %d; want an error and 0", err, b.Accepted())
	}
}

func TestConcurrentWriters(t *testing.T) {
	bus := &memBus{}
	defer bus.release()
	b := New(bus, Options{MaxRows: 1000, Shards: 4})
	b.Start()
	var wg sync.WaitGroup
	writers := make([]*Writer, 16)
	for i := range writers {
		writers[i] = b.Writer(Identity{Source: fmt.Sprintf("src%d", i)})
		wg.Go(func() {
			r := sample.Row{Metric: "m", HasValue: true}
			for j := range 5000 {
				r.Value = float64(j)
				writers[i].Write(&r)
			}
		})
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bus.rows() != 16*5000 || b.Accepted() != 16*5000 {
		t.Fatalf("rows %d accepted %d, want %d", bus.rows(), b.Accepted(), 16*5000)
	}
	for _, w := range writers {
		if w.Accepted() != 5000 {
			t.Fatalf("writer %s accepted %d, want 5000", w.Identity().Source, w.Accepted())
		}
	}
}

type discardBus struct{}

func (discardBus) Publish(context.Context, string, arrow.RecordBatch) error { return nil }

// BenchmarkWrite measures the per-sample append path: one op is one row
// with two labels. allocs/op must stay 0.
func BenchmarkWrite(b *testing.B) {
	bt := New(discardBus{}, Options{Shards: 1})
	defer bt.Close(context.Background())
	w := bt.Writer(Identity{Pipeline: "bench", Source: "gen", Module: "generator", Target: "127.0.0.1", Node: "n1"})
	r := sample.Row{Metric: "seq", HasValue: true, Unit: "c", Labels: []sample.Label{{Key: "series", Value: "s1"}, {Key: "pattern", Value: "sine"}}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Value = float64(i)
		w.Write(&r)
	}
}

// BenchmarkWriteParallel measures many sources writing concurrently into the
// sharded builders.
func BenchmarkWriteParallel(b *testing.B) {
	bt := New(discardBus{}, Options{})
	defer bt.Close(context.Background())
	var mu sync.Mutex
	n := 0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		n++
		w := bt.Writer(Identity{Pipeline: "bench", Source: fmt.Sprintf("gen%d", n), Module: "generator", Node: "n1"})
		mu.Unlock()
		r := sample.Row{Metric: "seq", HasValue: true}
		for pb.Next() {
			r.Value++
			w.Write(&r)
		}
	})
}
