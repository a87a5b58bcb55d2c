package kafkarole

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/sample"
)

// GroupOptions tune the consumer group of a role.
type GroupOptions struct {
	// SessionTimeout is how long a silent member keeps its partitions
	// before the others take them over (default 10 s).
	SessionTimeout time.Duration
	// RebalanceTimeout bounds how long the group waits for members to
	// finish their work and rejoin (default 30 s).
	RebalanceTimeout time.Duration
}

func (o *GroupOptions) setDefaults() {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.RebalanceTimeout <= 0 {
		o.RebalanceTimeout = 30 * time.Second
	}
}

func newGroup(conn kafkabus.Options, group string, g GroupOptions, log *slog.Logger) (*kafka.ConsumerGroup, error) {
	g.setDefaults()
	d, err := kafkabus.Dialer(conn)
	if err != nil {
		return nil, err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           conn.Brokers,
		Dialer:            d,
		Topics:            []string{conn.Topic},
		SessionTimeout:    g.SessionTimeout,
		HeartbeatInterval: g.SessionTimeout / 5,
		RebalanceTimeout:  g.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		Timeout:           10 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
			log.Warn(fmt.Sprintf(f, a...), "group", group)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("kafka group %s on %s: %w", group, conn.Topic, err)
	}
	return cg, nil
}

// genConsumer is the bus.Consumer of one consumer-group generation: it
// reads the partitions the generation assigned, one goroutine each (so
// each partition stays in order), drops the batches restarted collectors
// forwarded twice, and commits through the generation. Fetch fails with
// bus.ErrClosed once the generation ends.
type genConsumer struct {
	gen    *kafka.Generation
	topic  string
	ctx    context.Context
	cancel context.CancelFunc
	msgs   chan fetched
	wg     sync.WaitGroup
	log    *slog.Logger
	stats  *Counters
	// dedup is used by Fetch and Commit only (the consumer's goroutine).
	dedup map[int32]*dedup
	// started, when set, is called once, at the first Fetch.
	started func()
	once    sync.Once
}

// fetched is a decoded message with its origin headers.
type fetched struct {
	bus.Message
	origin string
	pos    originPos
}

// Counters are a consumer's figures across generations.
type Counters struct {
	Fetched       atomic.Uint64 // messages handed to the role
	Rows          atomic.Uint64 // rows of the messages handed to the role
	Skipped       atomic.Uint64 // undecodable messages skipped
	Duplicates    atomic.Uint64 // batches forwarded twice, dropped
	Compacted     atomic.Uint64 // hour partitions compacted by this member
	CompactErrors atomic.Uint64 // failed compaction rounds

	mu  sync.Mutex
	lag map[int32]int64 // partition → messages behind the high watermark
}

// setLag records how far behind its partition's end the last fetched
// message was.
func (c *Counters) setLag(part int32, lag int64) {
	c.mu.Lock()
	if c.lag == nil {
		c.lag = map[int32]int64{}
	}
	c.lag[part] = lag
	c.mu.Unlock()
}

// dropLag forgets the lag of partitions no longer held.
func (c *Counters) dropLag(parts []int32) {
	c.mu.Lock()
	for _, p := range parts {
		delete(c.lag, p)
	}
	c.mu.Unlock()
}

// Lag returns the lag of each partition held, in messages.
func (c *Counters) Lag() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.lag)
}

var _ bus.Consumer = (*genConsumer)(nil)

// archiverFetchMinBytes is the least a partition fetch of an archiver
// waits for (up to its MaxWait).
const archiverFetchMinBytes = 1 << 20

// startGeneration starts reading gen's partitions of conn.Topic; ctx (the
// generation's, joined with the role's) stops the readers. The dedup state
// of each partition lives under dedupDir.
func startGeneration(ctx context.Context, gen *kafka.Generation, conn kafkabus.Options, dedupDir string, stats *Counters, log *slog.Logger) (*genConsumer, error) {
	d, err := kafkabus.Dialer(conn)
	if err != nil {
		return nil, err
	}
	c := &genConsumer{gen: gen, topic: conn.Topic, msgs: make(chan fetched, 64), log: log, stats: stats,
		dedup: map[int32]*dedup{}}
	c.ctx, c.cancel = context.WithCancel(ctx)
	for _, pa := range gen.Assignments[conn.Topic] {
		part := int32(pa.ID)
		dd, matched, err := loadDedup(dedupPath(dedupDir, conn.Topic, part), pa.Offset)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("kafka %s partition %d: %w", conn.Topic, part, err)
		}
		if !matched {
			log.Warn("the dedup state of the partition does not match its committed offset: a batch a restarted collector forwarded twice may be archived twice",
				"partition", part, "offset", pa.Offset)
		}
		c.dedup[part] = dd
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   conn.Brokers,
			Topic:     conn.Topic,
			Partition: pa.ID,
			Dialer:    d,
			// An archiver writes rows out by the flush interval at the
			// soonest, so its fetches wait for a MiB (or MaxWait) rather
			// than return each message as it lands: fewer, larger fetches
			// cost the broker and this process 40 % and 10 % less CPU
			// per sample (docs/benchmarks.md#kafka).
			MinBytes: archiverFetchMinBytes,
			MaxBytes: 64 << 20,
			MaxWait:  250 * time.Millisecond,
			ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) {
				log.Warn(fmt.Sprintf(f, a...), "partition", part)
			}),
		})
		if err := r.SetOffset(pa.Offset); err != nil {
			_ = r.Close()
			c.Close()
			return nil, fmt.Errorf("kafka %s partition %d: seek to %d: %w", conn.Topic, part, pa.Offset, err)
		}
		c.wg.Add(1)
		go c.read(r, part)
	}
	return c, nil
}

// read feeds one partition's decodable messages to c.msgs.
func (c *genConsumer) read(r *kafka.Reader, part int32) {
	defer c.wg.Done()
	defer r.Close()
	for {
		m, err := r.FetchMessage(c.ctx)
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Error("kafka fetch failed; the partition is read again by the next generation", "partition", part, "err", err)
				c.cancel()
			}
			return
		}
		c.stats.setLag(part, max(m.HighWaterMark-m.Offset-1, 0))
		f := fetched{Message: bus.Message{Partition: part, Offset: m.Offset, Key: string(m.Key)}}
		for _, h := range m.Headers {
			switch h.Key {
			case kafkabus.HeaderOrigin:
				f.origin = string(h.Value)
			case kafkabus.HeaderOriginPos:
				f.pos, err = parseOriginPos(string(h.Value))
			}
		}
		if err == nil {
			f.Record, err = kafkabus.Decode(m.Value, sample.Schema)
		}
		if err != nil {
			c.stats.Skipped.Add(1)
			c.log.Error("skipping undecodable message", "partition", part, "offset", m.Offset, "bytes", len(m.Value), "err", err)
			continue
		}
		select {
		case c.msgs <- f:
		case <-c.ctx.Done():
			f.Record.Release()
			return
		}
	}
}

// Fetch returns the next message of any assigned partition.
func (c *genConsumer) Fetch(ctx context.Context) (bus.Message, error) {
	if c.started != nil {
		c.once.Do(c.started)
	}
	for {
		select {
		case f := <-c.msgs:
			if !c.dedup[f.Partition].keep(f.Offset, f.origin, f.pos) {
				c.stats.Duplicates.Add(1)
				c.log.Info("dropping a batch forwarded twice by a restarted collector", "partition", f.Partition,
					"offset", f.Offset, "origin", f.origin, "origin_offset", f.pos.Offset)
				f.Record.Release()
				continue
			}
			c.stats.Fetched.Add(1)
			c.stats.Rows.Add(uint64(f.Record.NumRows()))
			return f.Message, nil
		case <-c.ctx.Done():
			return bus.Message{}, bus.ErrClosed
		case <-ctx.Done():
			return bus.Message{}, ctx.Err()
		}
	}
}

// Commit makes the partition's dedup state durable, then commits the
// offset after m within the generation; it fails once the generation has
// ended (the partition may belong to another member by then).
func (c *genConsumer) Commit(_ context.Context, m bus.Message) error {
	if err := c.dedup[m.Partition].commit(m.Offset); err != nil {
		return fmt.Errorf("kafka %s partition %d: %w", c.topic, m.Partition, err)
	}
	err := c.gen.CommitOffsets(map[string]map[int]int64{c.topic: {int(m.Partition): m.Offset + 1}})
	if err != nil {
		return fmt.Errorf("kafka %s: commit partition %d offset %d (generation %d): %w", c.topic, m.Partition, m.Offset, c.gen.ID, err)
	}
	return nil
}

// Close stops the readers and releases what they fetched.
func (c *genConsumer) Close() error {
	c.cancel()
	c.wg.Wait()
	c.stats.dropLag(slices.Collect(maps.Keys(c.dedup)))
	for {
		select {
		case f := <-c.msgs:
			f.Record.Release()
		default:
			return nil
		}
	}
}
