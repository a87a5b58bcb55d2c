package kafkabus

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/reconmon/recon/runtime/bus"
)

// Forwarder drains a local bus (the collector's journal) into Kafka in
// order. The journal keeps accepting samples while Kafka is away; a batch
// leaves the journal (its checkpoint moves) only after Kafka acknowledged
// it. Only a full disk stops acceptance.
type Forwarder struct {
	src bus.Consumer
	dst bus.Producer
	log *slog.Logger

	// Backoff bounds between retries while Kafka is unreachable.
	MinBackoff, MaxBackoff time.Duration

	forwarded atomic.Uint64 // batches acknowledged by Kafka
	failures  atomic.Uint64 // publish attempts that failed
	down      atomic.Bool   // the last attempt failed
	lastOK    atomic.Int64  // unix ns of the last acknowledged publish
	offset    atomic.Int64  // last forwarded source offset
}

// NewForwarder forwards from src to dst.
func NewForwarder(src bus.Consumer, dst bus.Producer, log *slog.Logger) *Forwarder {
	if log == nil {
		log = slog.Default()
	}
	f := &Forwarder{src: src, dst: dst, log: log, MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}
	f.offset.Store(-1)
	return f
}

// Run forwards until ctx is cancelled or the source is closed.
func (f *Forwarder) Run(ctx context.Context) error {
	for {
		m, err := f.src.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
				return nil
			}
			return err
		}
		if !f.publish(ctx, m) {
			m.Record.Release()
			return nil
		}
		m.Record.Release()
		if err := f.src.Commit(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f.offset.Store(m.Offset)
	}
}

// publish retries until Kafka acknowledges m; false when ctx ended first.
func (f *Forwarder) publish(ctx context.Context, m bus.Message) bool {
	backoff := f.MinBackoff
	for {
		err := f.dst.Publish(ctx, m.Key, m.Record)
		if err == nil {
			if f.down.Swap(false) {
				f.log.Info("kafka reachable again, draining the local journal", "offset", m.Offset)
			}
			f.forwarded.Add(1)
			f.lastOK.Store(time.Now().UnixNano())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.failures.Add(1)
		if !f.down.Swap(true) {
			f.log.Error("kafka unreachable: samples stay in the local journal until it returns",
				"offset", m.Offset, "err", err)
		} else {
			f.log.Warn("kafka still unreachable", "offset", m.Offset, "retry_in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.MaxBackoff)
	}
}

// ForwarderStats is a snapshot for /metrics.
type ForwarderStats struct {
	Forwarded uint64
	Failures  uint64
	Down      bool
	Offset    int64 // last source offset acknowledged by Kafka; -1 before the first
	LastOK    time.Time
}

// Stats returns a snapshot.
func (f *Forwarder) Stats() ForwarderStats {
	s := ForwarderStats{Forwarded: f.forwarded.Load(), Failures: f.failures.Load(), Down: f.down.Load(), Offset: f.offset.Load()}
	if ns := f.lastOK.Load(); ns != 0 {
		s.LastOK = time.Unix(0, ns)
	}
	return s
}
