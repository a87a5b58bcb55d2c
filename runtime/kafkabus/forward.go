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
	// MaxBatches and MaxRows bound one round of batches sent together
	// (defaults 1024 and 1,048,576).
	MaxBatches int
	MaxRows    int64
	// AttemptTimeout bounds one attempt to have a round acknowledged
	// (default 15 s): a broker that stopped answering counts as down.
	AttemptTimeout time.Duration
	// Origin, when set and the destination is a *Topic, is the stable id
	// of the source journal: messages carry it with the journal offset
	// (HeaderOrigin, HeaderOriginPos), so that consumers can drop the
	// batch a restarted collector forwards a second time.
	Origin string

	forwarded atomic.Uint64 // journal batches acknowledged by Kafka
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
	f := &Forwarder{src: src, dst: dst, log: log, MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
		MaxBatches: 1024, MaxRows: 1 << 20, AttemptTimeout: 15 * time.Second}
	f.offset.Store(-1)
	return f
}

// Run forwards until ctx is cancelled or the source is closed; the round
// in flight when ctx ends is still sent (one attempt) and committed. Batches
// already in the journal are sent together (up to MaxBatches batches or
// MaxRows rows per round), so a backlog drains at Kafka's pace rather than
// one round trip per batch.
func (f *Forwarder) Run(ctx context.Context) error {
	// ready is a done context: a Fetch with it returns only what is
	// already there.
	ready, cancel := context.WithCancel(ctx)
	cancel()
	var ms []bus.Message
	release := func() {
		for _, m := range ms {
			m.Record.Release()
		}
		ms = ms[:0]
	}
	defer release()
	for {
		m, err := f.src.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
				return nil
			}
			return err
		}
		ms = append(ms, m)
		rows := m.Record.NumRows()
		for len(ms) < f.MaxBatches && rows < f.MaxRows {
			m, err := f.src.Fetch(ready)
			if err != nil {
				break // nothing ready; a real error shows on the next blocking Fetch
			}
			ms = append(ms, m)
			rows += m.Record.NumRows()
		}
		if !f.publish(ctx, ms) {
			return nil
		}
		last := ms[len(ms)-1]
		release()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.AttemptTimeout)
		err = f.src.Commit(cctx, last)
		cancel()
		if err != nil {
			return err
		}
		f.offset.Store(last.Offset)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// publish retries until Kafka acknowledges ms; false when ctx ended first.
func (f *Forwarder) publish(ctx context.Context, ms []bus.Message) bool {
	backoff := f.MinBackoff
	for {
		// A round in flight when ctx ends still gets its attempt (the
		// journal was drained into it at shutdown); only retries stop.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.AttemptTimeout)
		err := f.send(actx, ms)
		cancel()
		if err == nil {
			if f.down.Swap(false) {
				f.log.Info("kafka reachable again, draining the local journal", "offset", ms[0].Offset)
			}
			f.forwarded.Add(uint64(len(ms)))
			f.lastOK.Store(time.Now().UnixNano())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.failures.Add(1)
		if !f.down.Swap(true) {
			f.log.Error("kafka unreachable: samples stay in the local journal until it returns",
				"offset", ms[0].Offset, "err", err)
		} else {
			f.log.Warn("kafka still unreachable", "offset", ms[0].Offset, "retry_in", backoff, "err", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, f.MaxBackoff)
	}
}

func (f *Forwarder) send(ctx context.Context, ms []bus.Message) error {
	if t, ok := f.dst.(*Topic); ok {
		return t.PublishBatches(ctx, f.Origin, ms)
	}
	for _, m := range ms {
		if err := f.dst.Publish(ctx, m.Key, m.Record); err != nil {
			return err
		}
	}
	return nil
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
