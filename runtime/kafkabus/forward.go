package kafkabus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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
// one round trip per batch. The next round is read from the journal and
// encoded while the brokers acknowledge the current one; rounds are sent
// and committed one after the other, in order.
func (f *Forwarder) Run(ctx context.Context) error {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	rounds := make(chan pending)
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() { sendErr = f.sendRounds(ctx, rounds, stop) })
	err := f.readRounds(fctx, rounds)
	close(rounds)
	wg.Wait()
	switch {
	case sendErr != nil:
		return sendErr
	case fctx.Err() != nil:
		return nil
	}
	return err
}

// pending is a round read from the source, ready to send.
type pending struct {
	send    func(context.Context) error
	release func()
	first   int64       // source offset of the first batch
	last    bus.Message // commit position
	batches int
}

// readRounds reads rounds from the source and hands them to the sender
// until ctx ends or the source is closed.
func (f *Forwarder) readRounds(ctx context.Context, rounds chan<- pending) error {
	// ready is a done context: a Fetch with it returns only what is
	// already there.
	ready, cancel := context.WithCancel(ctx)
	cancel()
	for {
		m, err := f.src.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
				return nil
			}
			return err
		}
		ms := []bus.Message{m}
		rows := m.Record.NumRows()
		for len(ms) < f.MaxBatches && rows < f.MaxRows {
			m, err := f.src.Fetch(ready)
			if err != nil {
				break // nothing ready; a real error shows on the next blocking Fetch
			}
			ms = append(ms, m)
			rows += m.Record.NumRows()
		}
		p := f.prepare(ms)
		select {
		case rounds <- p:
		case <-ctx.Done():
			p.release()
			return nil
		}
	}
}

// prepare turns ms into a round. For a *Topic the batches are encoded now
// and released (a round that cannot be encoded fails each attempt, like
// one Kafka refuses); another producer publishes them batch by batch.
func (f *Forwarder) prepare(ms []bus.Message) pending {
	p := pending{first: ms[0].Offset, last: ms[len(ms)-1], batches: len(ms)}
	p.last.Record = nil
	release := func() {
		for _, m := range ms {
			m.Record.Release()
		}
	}
	t, ok := f.dst.(*Topic)
	if !ok {
		p.release = release
		p.send = func(ctx context.Context) error {
			for _, m := range ms {
				if err := f.dst.Publish(ctx, m.Key, m.Record); err != nil {
					return err
				}
			}
			return nil
		}
		return p
	}
	r, err := t.prepare(f.Origin, ms)
	release()
	p.release = func() {}
	if err != nil {
		p.send = func(context.Context) error { return err }
		return p
	}
	p.send = func(ctx context.Context) error { return t.write(ctx, r) }
	return p
}

// sendRounds sends each round until Kafka acknowledges it, then commits
// it in the source. Once ctx ends, the round being sent gets its attempt
// and the rest are dropped (they stay in the source); after a failed
// commit it stops the reader and drops the rest too.
func (f *Forwarder) sendRounds(ctx context.Context, rounds <-chan pending, stopReader context.CancelFunc) error {
	var err error
	for p := range rounds {
		if err != nil || ctx.Err() != nil {
			p.release()
			continue
		}
		ok := f.publish(ctx, p)
		p.release()
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.AttemptTimeout)
		err = f.src.Commit(cctx, p.last)
		cancel()
		if err != nil {
			stopReader()
			continue
		}
		f.offset.Store(p.last.Offset)
	}
	return err
}

// publish retries until Kafka acknowledges p; false when ctx ended first.
func (f *Forwarder) publish(ctx context.Context, p pending) bool {
	backoff := f.MinBackoff
	for {
		// A round in flight when ctx ends still gets its attempt (the
		// journal was drained into it at shutdown); only retries stop.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.AttemptTimeout)
		err := p.send(actx)
		cancel()
		if err == nil {
			if f.down.Swap(false) {
				f.log.Info("kafka reachable again, draining the local journal", "offset", p.first)
			}
			f.forwarded.Add(uint64(p.batches))
			f.lastOK.Store(time.Now().UnixNano())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.failures.Add(1)
		if !f.down.Swap(true) {
			f.log.Error("kafka unreachable: samples stay in the local journal until it returns",
				"offset", p.first, "err", err)
		} else {
			f.log.Warn("kafka still unreachable", "offset", p.first, "retry_in", backoff, "err", err)
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
