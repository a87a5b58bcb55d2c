// Package batch turns the rows sources write into Arrow record batches of
// the sample schema (design §3.1) and publishes them to the bus.
//
// A Batcher owns a fixed number of shards; each shard holds one set of
// reused Arrow builders behind a mutex. Every source gets its own Writer,
// bound to one shard by a hash of its name, which fills the pipeline,
// source, module, target and node columns from the source's identity. A
// shard is flushed when it holds MaxRows rows or when its oldest row is
// MaxDelay old.
//
// Backpressure: a shard publishes one batch at a time. While a batch is
// being published the next one fills; when that one is full too, the
// writers of the shard block until the bus has accepted the first. Memory
// is bounded by two batches per shard, and no row is ever dropped.
package batch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
)

// Defaults of Options.
const (
	DefaultMaxRows  = 65536
	DefaultMaxDelay = 250 * time.Millisecond
)

// Options configure a Batcher. Zero values take the defaults.
type Options struct {
	// MaxRows flushes a shard when it holds this many rows (default 65,536).
	MaxRows int
	// MaxDelay flushes a shard whose oldest row is this old (default 250 ms).
	MaxDelay time.Duration
	// Shards is the number of independent builder sets (default GOMAXPROCS).
	Shards int
	// Allocator for the Arrow builders (default memory.DefaultAllocator).
	Allocator memory.Allocator
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// OnPublish, when set, is called after every accepted batch with its row
	// count and how long Publish took (for metrics).
	OnPublish func(rows int, took time.Duration)
}

func (o *Options) setDefaults() {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.Shards <= 0 {
		o.Shards = runtime.GOMAXPROCS(0)
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Identity is what every row of a source carries besides its own values.
type Identity struct {
	Pipeline, Source, Module, Target, Node string
}

// ErrClosed is reported by a Batcher that was closed while a batch could
// not be published.
var ErrClosed = errors.New("batch: batcher closed")

// Batcher builds sample batches for many sources and publishes them to one
// bus producer.
type Batcher struct {
	prod   bus.Producer
	opts   Options
	shards []*shard

	// ctx bounds Publish retries; cancelled by Close when its own context
	// expires (the bus is gone for good).
	ctx    context.Context
	cancel context.CancelFunc

	accepted atomic.Int64
	batches  atomic.Int64
	failures atomic.Int64

	stopTicker chan struct{}
	tickerDone chan struct{}
	startOnce  sync.Once
	started    bool
	closeOnce  sync.Once
}

// New returns a Batcher publishing to prod. Start its time-based flushing
// with Start; Close flushes what is left.
func New(prod bus.Producer, opts Options) *Batcher {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		prod:       prod,
		opts:       opts,
		ctx:        ctx,
		cancel:     cancel,
		stopTicker: make(chan struct{}),
		tickerDone: make(chan struct{}),
	}
	b.shards = make([]*shard, opts.Shards)
	for i := range b.shards {
		b.shards[i] = newShard(b, i)
	}
	return b
}

// Start runs the time-based flushing until Close.
func (b *Batcher) Start() {
	b.startOnce.Do(func() {
		b.started = true
		go b.tick()
	})
}

func (b *Batcher) tick() {
	defer close(b.tickerDone)
	period := b.opts.MaxDelay / 4
	if period < time.Millisecond {
		period = time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-b.stopTicker:
			return
		case now := <-t.C:
			for _, s := range b.shards {
				s.flushIfOlder(now.Add(-b.opts.MaxDelay).UnixNano())
			}
		}
	}
}

// Writer returns the writer of one source. Writers of different sources may
// be used concurrently; one Writer is used by one goroutine at a time (a
// source never runs concurrently with itself).
func (b *Batcher) Writer(id Identity) *Writer {
	h := fnv.New32a()
	h.Write([]byte(id.Source))
	return &Writer{id: id, shard: b.shards[int(h.Sum32()%uint32(len(b.shards)))]}
}

// Flush publishes every non-empty shard and waits until the bus accepted
// them.
func (b *Batcher) Flush(ctx context.Context) error {
	var errs []error
	for _, s := range b.shards {
		if err := s.flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the time-based flushing, publishes what is left and releases
// the builders. Writers must not be used after Close. If ctx expires while
// the bus still refuses batches, Close gives up and reports how many rows
// were not accepted.
func (b *Batcher) Close(ctx context.Context) error {
	var err error
	b.closeOnce.Do(func() {
		b.startOnce.Do(func() {}) // no ticker may start from now on
		close(b.stopTicker)
		if b.started {
			<-b.tickerDone
		}
		stop := context.AfterFunc(ctx, b.cancel)
		defer stop()
		err = b.Flush(ctx)
		b.cancel()
		for _, s := range b.shards {
			s.release()
		}
	})
	return err
}

// Accepted returns the number of rows whose batch the bus accepted.
func (b *Batcher) Accepted() int64 { return b.accepted.Load() }

// Batches returns the number of batches the bus accepted.
func (b *Batcher) Batches() int64 { return b.batches.Load() }

// PublishFailures returns how many Publish calls failed (and were retried).
func (b *Batcher) PublishFailures() int64 { return b.failures.Load() }

// publish hands rec to the bus, retrying with backoff until it is accepted
// or the batcher gives up (Close's context expired). It never drops rows
// silently: giving up is an error naming the row count.
func (b *Batcher) publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	backoff := 10 * time.Millisecond
	for {
		start := time.Now()
		err := b.prod.Publish(ctx, key, rec)
		if err == nil {
			rows := int(rec.NumRows())
			b.accepted.Add(int64(rows))
			b.batches.Add(1)
			if b.opts.OnPublish != nil {
				b.opts.OnPublish(rows, time.Since(start))
			}
			return nil
		}
		b.failures.Add(1)
		if ctx.Err() != nil || b.ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
			return fmt.Errorf("batch: %d rows not accepted: %w", rec.NumRows(), err)
		}
		b.opts.Logger.Error("publishing a sample batch failed; retrying", "rows", rec.NumRows(), "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		case <-b.ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Writer is the sample.Writer of one source.
type Writer struct {
	id    Identity
	shard *shard
	// ts is the default timestamp (Unix ns) for rows with Ts 0; 0 means
	// the time of the write.
	ts int64

	// pending counts this writer's rows in the shard's open batch; guarded
	// by the shard's mutex.
	pending int64
	written atomic.Int64
	acked   atomic.Int64
}

var _ sample.Writer = (*Writer)(nil)

// Identity returns the source identity the writer stamps on its rows.
func (w *Writer) Identity() Identity { return w.id }

// SetTime sets the timestamp of rows written with Ts 0 (the start of the
// current run); t.IsZero() makes such rows take the time of the write.
func (w *Writer) SetTime(t time.Time) {
	if t.IsZero() {
		w.ts = 0
		return
	}
	w.ts = t.UnixNano()
}

// Write copies r into the open batch of the writer's shard. It blocks while
// the bus is behind (backpressure).
func (w *Writer) Write(r *sample.Row) {
	ts := r.Ts
	if ts == 0 {
		ts = w.ts
		if ts == 0 {
			ts = time.Now().UnixNano()
		}
	}
	w.written.Add(1)
	w.shard.append(w, ts, r)
}

// Written returns the number of rows written so far.
func (w *Writer) Written() int64 { return w.written.Load() }

// Accepted returns the number of this writer's rows the bus accepted. Rows
// are accepted in the order they were written.
func (w *Writer) Accepted() int64 { return w.acked.Load() }

// ack is one writer's share of a batch.
type ack struct {
	w *Writer
	n int64
}

// shard is one set of builders.
type shard struct {
	b   *Batcher
	key string

	mu     sync.Mutex
	rb     *array.RecordBuilder
	ts     *array.TimestampBuilder
	cols   [5]*array.StringBuilder // pipeline, source, module, target, node by colIdx
	metric *array.StringBuilder
	value  *array.Float64Builder
	text   *array.StringBuilder
	unit   *array.StringBuilder
	labels *array.MapBuilder
	lkeys  *array.StringBuilder
	lvals  *array.StringBuilder
	rows   int
	// dataLen is, per builder of strings(), the string bytes of the last
	// batch cut: what reserve sets aside for the next one.
	dataLen [10]int
	oldest  int64 // wall time (Unix ns) of the first row of the open batch
	members []ack // writers with rows in the open batch

	// inflight holds a token while a batch of this shard is being
	// published: batches of a shard are published one at a time, in order.
	inflight chan struct{}
}

const (
	colPipeline = iota
	colSource
	colModule
	colTarget
	colNode
)

func newShard(b *Batcher, i int) *shard {
	rb := array.NewRecordBuilder(b.opts.Allocator, sample.Schema)
	s := &shard{
		b:        b,
		key:      fmt.Sprintf("shard-%d", i),
		rb:       rb,
		ts:       rb.Field(sample.IdxTs).(*array.TimestampBuilder),
		metric:   rb.Field(sample.IdxMetric).(*array.StringBuilder),
		value:    rb.Field(sample.IdxValue).(*array.Float64Builder),
		text:     rb.Field(sample.IdxText).(*array.StringBuilder),
		unit:     rb.Field(sample.IdxUnit).(*array.StringBuilder),
		labels:   rb.Field(sample.IdxLabels).(*array.MapBuilder),
		inflight: make(chan struct{}, 1),
	}
	s.cols[colPipeline] = rb.Field(sample.IdxPipeline).(*array.StringBuilder)
	s.cols[colSource] = rb.Field(sample.IdxSource).(*array.StringBuilder)
	s.cols[colModule] = rb.Field(sample.IdxModule).(*array.StringBuilder)
	s.cols[colTarget] = rb.Field(sample.IdxTarget).(*array.StringBuilder)
	s.cols[colNode] = rb.Field(sample.IdxNode).(*array.StringBuilder)
	s.lkeys = s.labels.KeyBuilder().(*array.StringBuilder)
	s.lvals = s.labels.ItemBuilder().(*array.StringBuilder)
	s.reserve()
	return s
}

// reserve sizes the builders for a full batch, so appending does not
// reallocate them: the fixed-width ones for MaxRows, the string data for
// as many bytes as the previous batch held (dataLen).
func (s *shard) reserve() {
	s.rb.Reserve(s.b.opts.MaxRows)
	for i, b := range s.strings() {
		b.ReserveData(s.dataLen[i])
	}
}

// strings are the shard's string builders, in a fixed order.
func (s *shard) strings() [10]*array.StringBuilder {
	return [10]*array.StringBuilder{s.cols[0], s.cols[1], s.cols[2], s.cols[3], s.cols[4], s.metric, s.text, s.unit, s.lkeys, s.lvals}
}

func (s *shard) append(w *Writer, ts int64, r *sample.Row) {
	s.mu.Lock()
	if s.rows == 0 {
		s.oldest = time.Now().UnixNano()
	}
	s.ts.Append(arrow.Timestamp(ts))
	s.cols[colPipeline].Append(w.id.Pipeline)
	s.cols[colSource].Append(w.id.Source)
	s.cols[colModule].Append(w.id.Module)
	if r.Target != "" {
		s.cols[colTarget].Append(r.Target)
	} else {
		s.cols[colTarget].Append(w.id.Target)
	}
	s.cols[colNode].Append(w.id.Node)
	s.metric.Append(r.Metric)
	if r.HasValue {
		s.value.Append(r.Value)
	} else {
		s.value.AppendNull()
	}
	if r.HasText {
		s.text.Append(r.Text)
	} else {
		s.text.AppendNull()
	}
	if r.Unit != "" {
		s.unit.Append(r.Unit)
	} else {
		s.unit.AppendNull()
	}
	s.labels.Append(true)
	for _, l := range r.Labels {
		s.lkeys.Append(l.Key)
		s.lvals.Append(l.Value)
	}
	if w.pending == 0 {
		s.members = append(s.members, ack{w: w})
	}
	w.pending++
	s.rows++
	if s.rows >= s.b.opts.MaxRows {
		// Publishing errors are logged by publish and surface again at
		// Close; the writer itself cannot act on them.
		_ = s.cutLocked(s.b.ctx)
		return
	}
	s.mu.Unlock()
}

// cutLocked builds the open batch and publishes it. It is called with s.mu
// held and returns with it released. It waits for the previous batch of the
// shard to be accepted before letting writers go on (backpressure).
func (s *shard) cutLocked(ctx context.Context) error {
	if s.rows == 0 {
		s.mu.Unlock()
		return nil
	}
	for i, b := range s.strings() {
		s.dataLen[i] = b.DataLen()
	}
	rec := s.rb.NewRecordBatch()
	s.reserve()
	acks := s.members
	for i := range acks {
		acks[i].n = acks[i].w.pending
		acks[i].w.pending = 0
	}
	s.members = make([]ack, 0, cap(acks))
	s.rows = 0
	select {
	case s.inflight <- struct{}{}:
	case <-ctx.Done():
		s.mu.Unlock()
		n := rec.NumRows()
		rec.Release()
		return fmt.Errorf("batch: %d rows not accepted: waiting to publish: %w", n, ctx.Err())
	}
	s.mu.Unlock()
	defer rec.Release()
	err := s.b.publish(ctx, s.key, rec)
	if err == nil {
		for _, a := range acks {
			a.w.acked.Add(a.n)
		}
	} else {
		s.b.opts.Logger.Error("sample batch dropped: the bus refused it until shutdown", "rows", rec.NumRows(), "err", err)
	}
	<-s.inflight
	return err
}

// flush publishes the open batch (if any) and waits until every batch of
// the shard published so far is accepted.
func (s *shard) flush(ctx context.Context) error {
	s.mu.Lock()
	err := s.cutLocked(ctx)
	select {
	case s.inflight <- struct{}{}:
		<-s.inflight
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("batch: waiting for a publish: %w", ctx.Err())
		}
	}
	return err
}

func (s *shard) flushIfOlder(limit int64) {
	s.mu.Lock()
	if s.rows == 0 || s.oldest > limit {
		s.mu.Unlock()
		return
	}
	_ = s.cutLocked(s.b.ctx)
}

func (s *shard) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rb.Release()
}
