// Package live is Recon's temporal streaming: clones of checks running at
// their own period while someone watches, and live streams of samples and
// alert transitions to any number of viewers (design §1, promise 3).
//
// Samples reach viewers through a Hub. A Tap in front of the samples bus
// hands every accepted batch to the Hub, which queues a reference to the
// batch (no copy) for every viewer whose filter it matches; each viewer
// encodes the rows it wants on its own goroutine. Queues are bounded: a
// viewer that falls behind is dropped with a final message and never slows
// the pipeline.
package live

import (
	"context"
	"log/slog"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/bus"
)

// DefaultQueue is the number of batches a viewer may have waiting before
// it is dropped as too slow.
const DefaultQueue = 256

// HubOptions configure a Hub.
type HubOptions struct {
	// Queue bounds each viewer's backlog in batches (default DefaultQueue).
	Queue  int
	Logger *slog.Logger
}

// Hub fans sample batches out to viewers. It is a bus.Producer that never
// blocks and never fails: batches published to it go only to viewers (a
// clone with archive = false publishes here directly; Tap publishes
// accepted batches of the bus here).
type Hub struct {
	log *slog.Logger
	f   *fanout[arrow.RecordBatch, *sampleFilter]
}

var _ bus.Producer = (*Hub)(nil)

// NewHub returns an empty hub.
func NewHub(opts HubOptions) *Hub {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Hub{
		log: opts.Logger,
		f:   newFanout[arrow.RecordBatch, *sampleFilter](opts.Queue, func(r arrow.RecordBatch) { r.Release() }),
	}
}

// Filter selects the samples a viewer receives: rows whose source is one
// of Sources and whose metric is one of Metrics (empty: any).
type Filter struct {
	Sources []string
	Metrics []string
}

// ParseList splits a comma-separated query value, dropping empty items.
func ParseList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func set(items []string) map[string]struct{} {
	if len(items) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(items))
	for _, it := range items {
		m[it] = struct{}{}
	}
	return m
}

// sampleFilter is a Filter as sets (nil: any).
type sampleFilter struct {
	sources, metrics map[string]struct{}
}

// Viewer is one subscriber of a Hub.
type Viewer struct {
	s *sub[arrow.RecordBatch, *sampleFilter]
	*sampleFilter
}

// Subscribe adds a viewer. The caller must Close it.
func (h *Hub) Subscribe(f Filter) *Viewer {
	sf := &sampleFilter{sources: set(f.Sources), metrics: set(f.Metrics)}
	return &Viewer{s: h.f.subscribe(sf), sampleFilter: sf}
}

// Viewers returns the number of subscribed viewers.
func (h *Hub) Viewers() int { return h.f.count() }

// Stats returns how many batches were queued for viewers and how many
// viewers were dropped for being too slow.
func (h *Hub) Stats() (delivered, dropped int64) {
	return h.f.delivered.Load(), h.f.dropped.Load()
}

// Publish queues rec for every viewer that wants one of its rows. It
// retains rec once per viewer; the caller keeps its own reference.
func (h *Hub) Publish(_ context.Context, _ string, rec arrow.RecordBatch) error {
	if h.f.count() == 0 || rec.NumRows() == 0 {
		return nil
	}
	c, ok := bind(rec)
	if !ok {
		h.log.Error("live: a batch without the sample schema was not streamed", "schema", rec.Schema().String())
		return nil
	}
	// The sources present in the batch, computed once for all viewers.
	// Rows of a source come in runs (a batch holds whole check runs), so
	// only a change of source costs a map insert.
	present := make(map[string]struct{}, 4)
	last := ""
	for i := 0; i < int(rec.NumRows()); i++ {
		if src := c.source.Value(i); i == 0 || src != last {
			present[src] = struct{}{}
			last = src
		}
	}
	h.f.offer(rec, func(v *sampleFilter) bool {
		if v.sources == nil {
			return true
		}
		// Look the smaller set up in the larger.
		small, large := present, v.sources
		if len(small) > len(large) {
			small, large = large, small
		}
		for src := range small {
			if _, ok := large[src]; ok {
				return true
			}
		}
		return false
	}, func(r arrow.RecordBatch) { r.Retain() })
	return nil
}

// Batches delivers the batches queued for the viewer; the receiver must
// Release each.
func (v *Viewer) Batches() <-chan arrow.RecordBatch { return v.s.q }

// Dropped is closed when the hub dropped the viewer for falling behind.
func (v *Viewer) Dropped() <-chan struct{} { return v.s.gone }

// Close unsubscribes the viewer and releases what is still queued.
func (v *Viewer) Close() { v.s.close() }

// Append appends, as one JSON object per row, the rows of rec the viewer
// selected, each preceded by prefix and followed by suffix (NDJSON: "" and
// "\n"; SSE: "data: " and "\n\n"). It returns the extended buffer and the
// number of rows appended.
func (v *Viewer) Append(dst []byte, rec arrow.RecordBatch, prefix, suffix string) ([]byte, int) {
	c, ok := bind(rec)
	if !ok {
		return dst, 0
	}
	n := 0
	for i := 0; i < int(rec.NumRows()); i++ {
		if v.sources != nil {
			if _, ok := v.sources[c.source.Value(i)]; !ok {
				continue
			}
		}
		if v.metrics != nil {
			if _, ok := v.metrics[c.metric.Value(i)]; !ok {
				continue
			}
		}
		dst = append(dst, prefix...)
		dst = c.appendRow(dst, i)
		dst = append(dst, suffix...)
		n++
	}
	return dst, n
}

// Tap is a bus.Producer that publishes to Next and, once Next accepted a
// batch, hands it to Hub: viewers see exactly the accepted samples.
type Tap struct {
	Next bus.Producer
	Hub  *Hub
}

// Publish publishes to Next, then streams the accepted batch.
func (t Tap) Publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	if err := t.Next.Publish(ctx, key, rec); err != nil {
		return err
	}
	return t.Hub.Publish(ctx, key, rec)
}
