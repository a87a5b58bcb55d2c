// Package livekafka carries temporal streaming across machines over Kafka.
//
// A clone requested at any recond reaches the collectors over a control
// topic (default recon.control): every node reads every control message,
// and the nodes whose plan has the source run the clone. The clone's
// samples travel on the samples topic like any other; the requesting node
// follows that topic and hands the batches to its live Hub, so one viewer
// watches checks running on several collectors at once.
//
// Control messages are JSON (Message), keyed by clone id so that a clone's
// start and stop stay ordered. A collector that restarts re-reads the
// topic: clones whose ttl is over are skipped, stopped ones start and stop
// again at once, the others resume until their ttl.
package livekafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/sample"
)

// DefaultTopic is the control topic.
const DefaultTopic = "recon.control"

// SchemaVersion names control messages in the recon-schema header.
const SchemaVersion = "control/v1"

// Control operations.
const (
	OpStart = "start"
	OpStop  = "stop"
)

// Message is one control message.
type Message struct {
	Op string `json:"op"`
	// Origin is the node that asked; it does not act on its own messages.
	Origin string `json:"origin"`
	// Clone is the clone to run (start) or its id (stop).
	Clone live.Info `json:"clone"`
}

// maxMessage bounds a control message; real ones are a few hundred bytes.
const maxMessage = 64 << 10

// Decode reads one control message, refusing what a recond never sends.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > maxMessage {
		return m, fmt.Errorf("control message of %d bytes (at most %d)", len(b), maxMessage)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("control message: %w", err)
	}
	switch {
	case m.Op != OpStart && m.Op != OpStop:
		return m, fmt.Errorf("control message: unknown op %q", m.Op)
	case m.Clone.ID == "":
		return m, errors.New("control message: no clone id")
	case m.Op == OpStart && m.Clone.Source == "":
		return m, errors.New("control message: start without a source")
	case m.Op == OpStart && m.Clone.Name != live.AdHocName(m.Clone.Source, m.Clone.ID):
		// A clone writes under its own name only, never as another source.
		return m, fmt.Errorf("control message: clone name %q is not %q", m.Clone.Name, live.AdHocName(m.Clone.Source, m.Clone.ID))
	}
	return m, nil
}

// Options configure a Control.
type Options struct {
	// Kafka holds the brokers and security settings; its Topic is the
	// control topic (DefaultTopic when empty).
	Kafka kafkabus.Options
	// Node is this recond's name: its consumer group is
	// "recon-control-NODE", and it ignores its own messages.
	Node   string
	Logger *slog.Logger
}

// Control publishes and applies clone requests on the control topic. It
// is the live.Remote of a node's clones.
type Control struct {
	node  string
	log   *slog.Logger
	topic *kafkabus.Topic
	r     *kafka.Reader
}

var _ live.Remote = (*Control)(nil)

// New connects the control topic (lazily, on first use).
func New(opts Options) (*Control, error) {
	if opts.Node == "" {
		return nil, errors.New("livekafka: Node is required")
	}
	if opts.Kafka.Topic == "" {
		opts.Kafka.Topic = DefaultTopic
	}
	opts.Kafka.SchemaVersion = SchemaVersion
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	topic, err := kafkabus.Open(opts.Kafka)
	if err != nil {
		return nil, fmt.Errorf("control topic: %w", err)
	}
	dialer, err := kafkabus.Dialer(opts.Kafka)
	if err != nil {
		return nil, fmt.Errorf("control topic: %w", err)
	}
	log := opts.Logger.With("topic", opts.Kafka.Topic)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: opts.Kafka.Brokers, Topic: opts.Kafka.Topic, GroupID: "recon-control-" + opts.Node,
		Dialer: dialer, StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond,
		CommitInterval: time.Second, SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second,
		RebalanceTimeout: 10 * time.Second,
		ErrorLogger:      kafka.LoggerFunc(func(f string, a ...any) { log.Warn(fmt.Sprintf(f, a...)) }),
	})
	return &Control{node: opts.Node, log: log, topic: topic, r: r}, nil
}

func (c *Control) publish(ctx context.Context, m Message) error {
	m.Origin = c.node
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.topic.PublishJSON(ctx, []kafkabus.KeyedValue{{Key: m.Clone.ID, Value: b}})
}

// Start asks the collectors running info.Source to run the clone.
func (c *Control) Start(ctx context.Context, info live.Info) error {
	return c.publish(ctx, Message{Op: OpStart, Clone: info})
}

// Stop ends clone id on every collector.
func (c *Control) Stop(ctx context.Context, id string) error {
	return c.publish(ctx, Message{Op: OpStop, Clone: live.Info{ID: id}})
}

// Run applies the other nodes' control messages to clones until ctx ends.
func (c *Control) Run(ctx context.Context, clones *live.Clones) error {
	for {
		km, err := c.r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("control topic: %w", err)
		}
		m, err := Decode(km.Value)
		if err != nil {
			c.log.Warn("skipping a control message", "partition", km.Partition, "offset", km.Offset, "err", err)
			continue
		}
		if m.Origin == c.node {
			continue
		}
		c.apply(m, clones)
	}
}

func (c *Control) apply(m Message, clones *live.Clones) {
	if m.Op == OpStop {
		clones.Stop(m.Clone.ID)
		return
	}
	if !m.Clone.Expires.IsZero() && time.Now().After(m.Clone.Expires) {
		return // a request from the past
	}
	if !m.Clone.Expires.IsZero() {
		m.Clone.TTL = plan.Duration(time.Until(m.Clone.Expires))
	}
	here, err := clones.RunFor(m.Clone)
	switch {
	case err != nil:
		c.log.Error("a clone asked for by another node could not start", "clone", m.Clone.Name, "origin", m.Origin, "err", err)
	case here:
		c.log.Info("running a clone for another node", "clone", m.Clone.Name, "source", m.Clone.Source, "origin", m.Origin)
	}
}

// Close closes the reader and the writer.
func (c *Control) Close() error {
	return errors.Join(c.r.Close(), c.topic.Close())
}

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// Kafka holds the brokers, security settings and the samples topic.
	Kafka kafkabus.Options
	// Node is this recond's name: its consumer group is "recon-live-NODE",
	// and it skips the batches it collected itself (its Tap streams them).
	Node   string
	Hub    *live.Hub
	Logger *slog.Logger
}

// Follower hands the samples topic's new batches to a Hub.
type Follower struct {
	node string
	hub  *live.Hub
	log  *slog.Logger
	r    *kafka.Reader
}

// NewFollower returns a follower starting at the topic's end.
func NewFollower(opts FollowerOptions) (*Follower, error) {
	if opts.Node == "" || opts.Hub == nil || opts.Kafka.Topic == "" {
		return nil, errors.New("livekafka: Node, Hub and Kafka.Topic are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dialer, err := kafkabus.Dialer(opts.Kafka)
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("topic", opts.Kafka.Topic)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: opts.Kafka.Brokers, Topic: opts.Kafka.Topic, GroupID: "recon-live-" + opts.Node,
		Dialer: dialer, StartOffset: kafka.LastOffset, MinBytes: 1, MaxBytes: 64 << 20,
		MaxWait: 100 * time.Millisecond, CommitInterval: time.Second,
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 10 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { log.Warn(fmt.Sprintf(f, a...)) }),
	})
	return &Follower{node: opts.Node, hub: opts.Hub, log: log, r: r}, nil
}

// Run streams batches until ctx ends. While nobody watches, batches are
// read and skipped without decoding.
func (f *Follower) Run(ctx context.Context) error {
	for {
		km, err := f.r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("follow samples: %w", err)
		}
		if f.hub.Viewers() == 0 {
			continue
		}
		rec, err := kafkabus.Decode(km.Value, sample.Schema)
		if err != nil {
			f.log.Warn("skipping an undecodable sample message", "partition", km.Partition, "offset", km.Offset, "err", err)
			continue
		}
		node := rec.Column(sample.IdxNode).(*array.String)
		if rec.NumRows() > 0 && node.Value(0) != f.node {
			_ = f.hub.Publish(ctx, string(km.Key), rec)
		}
		rec.Release()
	}
}

// Close closes the reader.
func (f *Follower) Close() error { return f.r.Close() }
