// Package kafkabus is the Kafka implementation of the bus (design §3.3):
// one Arrow IPC stream (schema + one record batch) per message, key = the
// source name, headers naming the content type and the schema version.
// Consumers are Kafka consumer groups; offsets are committed only when the
// consumer says its output is durable.
package kafkabus

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/ipcsafe"
	"github.com/reconmon/recon/runtime/sample"
)

// Header names and values of sample messages (design §3.3, a contract).
const (
	HeaderContentType = "content-type"
	HeaderSchema      = "recon-schema"
	ContentTypeArrow  = "application/vnd.apache.arrow.stream"
	ContentTypeJSON   = "application/json"
	// HeaderOrigin and HeaderOriginPos identify where a forwarded message
	// comes from: the collector's journal (a stable random id) and the
	// position within it, "<journal offset>:<piece>" (a batch split into
	// several messages has pieces 0, 1, …). A collector that restarts
	// after a crash may forward its last batch again; consumers drop a
	// message whose position is not after the last one they kept from the
	// same origin in that partition.
	HeaderOrigin    = "recon-origin"
	HeaderOriginPos = "recon-origin-pos"
)

// DefaultMaxMessageBytes keeps messages under Kafka's default
// message.max.bytes (1 MiB) with room for the record overhead.
const DefaultMaxMessageBytes = 960 << 10

// Options configures a Kafka topic.
type Options struct {
	Brokers  []string
	Topic    string
	ClientID string
	// Schema, when set, is the schema every message must carry; others are
	// skipped as foreign (counted and logged). Defaults to sample.Schema.
	Schema        *arrow.Schema
	SchemaVersion string // recon-schema header; default sample.SchemaVersion
	// RequireAll waits for every in-sync replica (default); false waits for
	// the leader only.
	LeaderAckOnly   bool
	Compression     string // none gzip snappy lz4 zstd
	BatchTimeout    time.Duration
	BatchBytes      int64
	WriteTimeout    time.Duration
	MaxMessageBytes int
	TLS             *tls.Config
	SASLMechanism   string // "", plain, scram-sha-256, scram-sha-512
	Username        string
	Password        string
	Logger          *slog.Logger
	// GroupBalancers decide how a consumer group's partitions are spread
	// over its members (default: kafka-go's range, then round robin).
	GroupBalancers []kafka.GroupBalancer
}

// Stats counts a topic's traffic.
type Stats struct {
	Published     atomic.Uint64 // messages acknowledged by the brokers
	PublishedRows atomic.Uint64
	Bytes         atomic.Uint64 // message value bytes acknowledged
	Splits        atomic.Uint64 // batches split to fit MaxMessageBytes
	Skipped       atomic.Uint64 // corrupt or foreign messages skipped by consumers
	Fetched       atomic.Uint64
}

// Topic is one Kafka topic used as a bus.Topic.
type Topic struct {
	opts   Options
	writer *kafka.Writer
	dialer *kafka.Dialer
	log    *slog.Logger
	stats  Stats
	split  sourceSplitter
	parts  []part
}

var _ bus.Topic = (*Topic)(nil)

// Open configures a topic; connections are made on first use.
func Open(opts Options) (*Topic, error) {
	if len(opts.Brokers) == 0 || opts.Topic == "" {
		return nil, errors.New("kafka: brokers and topic are required")
	}
	if opts.Schema == nil {
		opts.Schema = sample.Schema
	}
	if opts.SchemaVersion == "" {
		opts.SchemaVersion = sample.SchemaVersion
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 5 * time.Millisecond
	}
	if opts.BatchBytes <= 0 {
		// A produce batch is one record batch to the broker, bounded by its
		// message.max.bytes (1 MiB by default) like a single message.
		opts.BatchBytes = 1 << 20
	}
	if opts.BatchBytes < int64(opts.MaxMessageBytes)+1024 {
		opts.BatchBytes = int64(opts.MaxMessageBytes) + 1024
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.ClientID == "" {
		opts.ClientID = "recon"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	mech, err := saslMechanism(opts)
	if err != nil {
		return nil, err
	}
	codec, err := compression(opts.Compression)
	if err != nil {
		return nil, err
	}
	acks := kafka.RequireAll
	if opts.LeaderAckOnly {
		acks = kafka.RequireOne
	}
	t := &Topic{
		opts: opts,
		log:  log.With("topic", opts.Topic),
		dialer: &kafka.Dialer{ClientID: opts.ClientID, Timeout: 10 * time.Second, DualStack: true,
			TLS: opts.TLS, SASLMechanism: mech},
	}
	t.writer = &kafka.Writer{
		Addr:         kafka.TCP(opts.Brokers...),
		Topic:        opts.Topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: acks,
		Compression:  codec,
		BatchTimeout: opts.BatchTimeout,
		BatchBytes:   opts.BatchBytes,
		// kafka-go allocates room for BatchSize messages per batch; sample
		// messages are large, so BatchBytes is what bounds a batch.
		BatchSize:    256,
		WriteTimeout: opts.WriteTimeout,
		MaxAttempts:  3,
		Transport: &kafka.Transport{ClientID: opts.ClientID, TLS: opts.TLS, SASL: mech,
			DialTimeout: 10 * time.Second},
		AllowAutoTopicCreation: true,
	}
	return t, nil
}

// Dialer returns a dialer with the TLS and SASL settings of opts, for
// readers and consumer groups built outside this package.
func Dialer(opts Options) (*kafka.Dialer, error) {
	mech, err := saslMechanism(opts)
	if err != nil {
		return nil, err
	}
	id := opts.ClientID
	if id == "" {
		id = "recon"
	}
	return &kafka.Dialer{ClientID: id, Timeout: 10 * time.Second, DualStack: true, TLS: opts.TLS, SASLMechanism: mech}, nil
}

func saslMechanism(o Options) (sasl.Mechanism, error) {
	switch o.SASLMechanism {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: o.Username, Password: o.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, o.Username, o.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, o.Username, o.Password)
	}
	return nil, fmt.Errorf("kafka: unknown SASL mechanism %q", o.SASLMechanism)
}

func compression(name string) (kafka.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return kafka.Gzip, nil
	case "snappy":
		return kafka.Snappy, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	}
	return 0, fmt.Errorf("kafka: unknown compression %q", name)
}

// Stats returns the topic's counters.
func (t *Topic) Stats() *Stats { return &t.stats }

// Publish writes rec and returns once the brokers acknowledged it. A
// batch of samples (sample.Schema) becomes one message per source, keyed
// by the source name (design §3.3), whatever key says; another batch is
// one message under key. A message whose encoding would exceed
// MaxMessageBytes is split further. Publish is not safe for concurrent use
// (the runtime has one publisher per topic; the journal in front of it
// group-commits).
func (t *Topic) Publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	return t.PublishBatches(ctx, "", []bus.Message{{Key: key, Record: rec}})
}

// PublishBatches writes several batches in one round of produce requests,
// each as Publish would, and returns once the brokers acknowledged all of
// them. When origin is not empty the batches come from a local journal
// and their messages carry HeaderOrigin = origin and HeaderOriginPos =
// "<batch Offset>:<piece>", pieces numbered 0, 1, … over all the messages
// of one batch (so that within any partition they increase). Like
// Publish, not safe for concurrent use.
func (t *Topic) PublishBatches(ctx context.Context, origin string, batches []bus.Message) error {
	r, err := t.prepare(origin, batches)
	if err != nil {
		return err
	}
	return t.write(ctx, r)
}

// round is a round of batches encoded as messages, which can be written
// (and written again after a failure) without the batches.
type round struct {
	msgs     []kafka.Message
	rows     int64
	attempts int
}

// prepare encodes batches as PublishBatches writes them. Not safe for
// concurrent use; it may run while another round is being written.
func (t *Topic) prepare(origin string, batches []bus.Message) (*round, error) {
	r := &round{}
	defer t.releaseParts()
	for _, b := range batches {
		first := len(r.msgs)
		var err error
		if t.parts, err = t.split.split(t.parts[:0], b.Record, b.Key); err != nil {
			return nil, err
		}
		for _, p := range t.parts {
			if r.msgs, err = t.encode(r.msgs, p.key, p.rec); err != nil {
				return nil, err
			}
		}
		t.releaseParts()
		if origin != "" {
			for i := first; i < len(r.msgs); i++ {
				r.msgs[i].Headers = append(r.msgs[i].Headers,
					kafka.Header{Key: HeaderOrigin, Value: []byte(origin)},
					kafka.Header{Key: HeaderOriginPos, Value: fmt.Appendf(nil, "%d:%d", b.Offset, i-first)})
			}
		}
		r.rows += b.Record.NumRows()
	}
	return r, nil
}

// write sends r and returns once the brokers acknowledged all of it.
func (t *Topic) write(ctx context.Context, r *round) error {
	r.attempts++
	if err := t.writer.WriteMessages(ctx, r.msgs...); err != nil {
		return fmt.Errorf("kafka %s: publish %d rows: %w", t.opts.Topic, r.rows, err)
	}
	for _, m := range r.msgs {
		t.stats.Bytes.Add(uint64(len(m.Value)))
		// A failed attempt's messages may still sit in the writer's queue:
		// only a round acknowledged at its first attempt is recycled.
		if r.attempts == 1 {
			putValue(m.Value)
		}
	}
	t.stats.Published.Add(uint64(len(r.msgs)))
	t.stats.PublishedRows.Add(uint64(r.rows))
	return nil
}

// values recycles the buffers Arrow message values are encoded into (a
// few hundred KiB each): once the brokers acknowledged a round, its
// buffers serve the next one instead of new zeroed allocations.
var values sync.Pool // of *[]byte

// getValue returns an empty buffer of at least n bytes of capacity.
func getValue(n int64) []byte {
	if p, ok := values.Get().(*[]byte); ok && int64(cap(*p)) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

func putValue(b []byte) {
	b = b[:0]
	values.Put(&b)
}

func (t *Topic) releaseParts() {
	for i, p := range t.parts {
		p.rec.Release()
		t.parts[i] = part{}
	}
	t.parts = t.parts[:0]
}

// KeyedValue is one message of PublishJSON.
type KeyedValue struct {
	Key   string
	Value []byte // one JSON document
}

// PublishJSON writes each value as one message (content-type
// application/json, the topic's schema version header) and returns once
// the brokers acknowledged all of them. The alerts topic carries alert
// events this way (design §3.3).
func (t *Topic) PublishJSON(ctx context.Context, vals []KeyedValue) error {
	msgs := make([]kafka.Message, len(vals))
	for i, v := range vals {
		msgs[i] = kafka.Message{Key: []byte(v.Key), Value: v.Value, Headers: []kafka.Header{
			{Key: HeaderContentType, Value: []byte(ContentTypeJSON)},
			{Key: HeaderSchema, Value: []byte(t.opts.SchemaVersion)},
		}}
	}
	if err := t.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("kafka %s: publish %d JSON messages: %w", t.opts.Topic, len(msgs), err)
	}
	for _, m := range msgs {
		t.stats.Bytes.Add(uint64(len(m.Value)))
	}
	t.stats.Published.Add(uint64(len(msgs)))
	return nil
}

// encode appends rec's messages to msgs, halving the batch until each
// message fits.
func (t *Topic) encode(msgs []kafka.Message, key string, rec arrow.RecordBatch) ([]kafka.Message, error) {
	// A batch whose buffers alone exceed the limit is cut into pieces of
	// about 7/8 of it up front: halving the encoded batch again and again
	// would encode its rows once per halving.
	n := rec.NumRows()
	if est := bufferBytes(rec); n > 1 && est > int64(t.opts.MaxMessageBytes) {
		t.stats.Splits.Add(1)
		k := min(n, est/(int64(t.opts.MaxMessageBytes)*7/8)+1)
		for i := range k {
			part := rec.NewSlice(n*i/k, n*(i+1)/k)
			var err error
			msgs, err = t.encodeFit(msgs, key, part)
			part.Release()
			if err != nil {
				return nil, err
			}
		}
		return msgs, nil
	}
	return t.encodeFit(msgs, key, rec)
}

// ipcOverhead bounds what an IPC stream of one batch adds to its buffers:
// the schema message, the batch metadata, padding and the end marker.
const ipcOverhead = 4 << 10

// bufferBytes estimates the body of rec's IPC encoding: the bytes of its
// buffers that its rows use (for a slice, its share of the parent's
// buffers, which is what the IPC writer writes), without padding.
func bufferBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data(), int64(c.Data().Offset()), int64(c.Len()))
	}
	return n
}

// dataBytes is the size of rows [off, off+length) of d. Types other than
// fixed width, 32-bit offset binary, lists, maps and structs count their
// whole buffers.
func dataBytes(d arrow.ArrayData, off, length int64) int64 {
	bufs := d.Buffers()
	n := int64(0)
	if len(bufs) > 0 && bufs[0] != nil && d.NullN() > 0 {
		n += (length + 7) / 8 // validity bitmap (not written without nulls)
	}
	switch t := d.DataType().(type) {
	case arrow.FixedWidthDataType:
		if len(bufs) > 1 && bufs[1] != nil {
			n += (length*int64(t.BitWidth()) + 7) / 8
		}
		return n
	case *arrow.StringType, *arrow.BinaryType:
		offs, ok := int32Range(bufs, off, length)
		if !ok {
			break
		}
		return n + (length+1)*4 + int64(offs[1]-offs[0])
	case *arrow.ListType, *arrow.MapType:
		offs, ok := int32Range(bufs, off, length)
		if !ok || len(d.Children()) != 1 {
			break
		}
		child := d.Children()[0]
		return n + (length+1)*4 + dataBytes(child, int64(child.Offset())+int64(offs[0]), int64(offs[1]-offs[0]))
	case *arrow.StructType:
		for _, c := range d.Children() {
			n += dataBytes(c, int64(c.Offset())+off, length)
		}
		return n
	}
	for _, b := range bufs {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c, int64(c.Offset()), int64(c.Len()))
	}
	return n
}

// int32Range returns the first and the end offset of rows [off,
// off+length) from an offsets buffer (bufs[1]); false when it is short.
func int32Range(bufs []*memory.Buffer, off, length int64) ([2]int32, bool) {
	if len(bufs) < 2 || bufs[1] == nil {
		return [2]int32{}, false
	}
	offs := arrow.Int32Traits.CastFromBytes(bufs[1].Bytes())
	if off < 0 || off+length >= int64(len(offs)) {
		return [2]int32{}, false
	}
	return [2]int32{offs[off], offs[off+length]}, true
}

// encodeFit appends rec as one message, halving it while its encoding
// exceeds MaxMessageBytes.
func (t *Topic) encodeFit(msgs []kafka.Message, key string, rec arrow.RecordBatch) ([]kafka.Message, error) {
	// The message value is written in place: a buffer sized for the
	// batch's buffers plus the schema and batch metadata.
	buf := bytes.NewBuffer(getValue(min(bufferBytes(rec)+ipcOverhead, int64(t.opts.MaxMessageBytes)+ipcOverhead)))
	w := ipc.NewWriter(buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("kafka: encode batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("kafka: encode batch: %w", err)
	}
	if buf.Len() > t.opts.MaxMessageBytes && rec.NumRows() > 1 {
		putValue(buf.Bytes())
		t.stats.Splits.Add(1)
		half := rec.NumRows() / 2
		first, second := rec.NewSlice(0, half), rec.NewSlice(half, rec.NumRows())
		defer first.Release()
		defer second.Release()
		var err error
		if msgs, err = t.encodeFit(msgs, key, first); err != nil {
			return nil, err
		}
		return t.encodeFit(msgs, key, second)
	}
	if buf.Len() > t.opts.MaxMessageBytes {
		return nil, fmt.Errorf("kafka: one row encodes to %d bytes, more than the %d-byte message limit", buf.Len(), t.opts.MaxMessageBytes)
	}
	return append(msgs, kafka.Message{
		Key:   []byte(key),
		Value: buf.Bytes(),
		Headers: []kafka.Header{
			{Key: HeaderContentType, Value: []byte(ContentTypeArrow)},
			{Key: HeaderSchema, Value: []byte(t.opts.SchemaVersion)},
		},
	}), nil
}

// Consumer joins the consumer group name. A group that never committed
// starts at the oldest message.
func (t *Topic) Consumer(name string) (bus.Consumer, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        t.opts.Brokers,
		GroupID:        name,
		Topic:          t.opts.Topic,
		Dialer:         t.dialer,
		MinBytes:       1,
		MaxBytes:       64 << 20,
		MaxWait:        250 * time.Millisecond,
		CommitInterval: 0, // synchronous: Commit returns once the broker has it
		StartOffset:    kafka.FirstOffset,
		GroupBalancers: t.opts.GroupBalancers,
		// A member that dies is replaced quickly; the rest take its partitions.
		SessionTimeout:    10 * time.Second,
		HeartbeatInterval: time.Second,
		RebalanceTimeout:  10 * time.Second,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { t.log.Warn(fmt.Sprintf(f, a...), "group", name) }),
	})
	return &consumer{t: t, r: r, group: name, lag: map[int32]int64{}}, nil
}

// Close flushes and closes the writer, then the connections its transport
// pools (they would outlive the Topic otherwise).
func (t *Topic) Close() error {
	err := t.writer.Close()
	if tr, ok := t.writer.Transport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
	return err
}

type consumer struct {
	t     *Topic
	r     *kafka.Reader
	group string

	mu  sync.Mutex
	lag map[int32]int64
}

// Lagger is implemented by the consumers of Consumer: how far behind the
// end of each partition it read the last message was, in messages.
type Lagger interface {
	Lag() map[int32]int64
}

var _ Lagger = (*consumer)(nil)

// Lag implements Lagger.
func (c *consumer) Lag() map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.lag)
}

// Fetch returns the next decodable message; corrupt or foreign messages
// are skipped, counted and logged, and never stop the partition.
func (c *consumer) Fetch(ctx context.Context) (bus.Message, error) {
	for {
		m, err := c.r.FetchMessage(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return bus.Message{}, bus.ErrClosed
			}
			return bus.Message{}, err
		}
		c.mu.Lock()
		c.lag[int32(m.Partition)] = max(m.HighWaterMark-m.Offset-1, 0)
		c.mu.Unlock()
		rec, err := Decode(m.Value, c.t.opts.Schema)
		if err != nil {
			c.t.stats.Skipped.Add(1)
			c.t.log.Error("skipping undecodable message", "group", c.group, "partition", m.Partition,
				"offset", m.Offset, "bytes", len(m.Value), "err", err)
			continue
		}
		c.t.stats.Fetched.Add(1)
		return bus.Message{Record: rec, Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key)}, nil
	}
}

// Commit commits m's offset for its partition.
func (c *consumer) Commit(ctx context.Context, m bus.Message) error {
	err := c.r.CommitMessages(ctx, kafka.Message{Topic: c.t.opts.Topic, Partition: int(m.Partition), Offset: m.Offset})
	if err != nil {
		return fmt.Errorf("kafka %s: commit partition %d offset %d: %w", c.t.opts.Topic, m.Partition, m.Offset, err)
	}
	return nil
}

func (c *consumer) Close() error { return c.r.Close() }

// Decode reads one message value: an Arrow IPC stream holding one record
// batch whose schema must equal want (when want is not nil). The batch
// reads its uncompressed buffers in place, from value, which the caller
// must not modify while the batch lives (kafka-go hands every fetched
// message a value of its own).
func Decode(value []byte, want *arrow.Schema) (arrow.RecordBatch, error) {
	rec, err := ipcsafe.DecodeShared(value, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("not an Arrow IPC stream of one batch: %w", err)
	}
	if want != nil && !rec.Schema().Equal(want) {
		rec.Release()
		return nil, fmt.Errorf("foreign schema %s", rec.Schema())
	}
	if err := ipcsafe.Validate(rec); err != nil {
		rec.Release()
		return nil, err
	}
	return rec, nil
}
