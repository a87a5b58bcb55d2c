package kafkarole

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/rules"
	kafkasink "github.com/reconmon/recon/sinks/kafka"
)

// DefaultRulesGroup is the consumer group of the rule engines.
const DefaultRulesGroup = "recon-rules"

// RulesOptions configure the rules role.
type RulesOptions struct {
	Plan *plan.Plan
	// Kafka is the samples topic.
	Kafka kafkabus.Options
	// Group is the rule engines' consumer group (default DefaultRulesGroup).
	Group string
	// DataDir holds the engine's state snapshot (rules.StateFile).
	DataDir string
	// Out receives the stdout sinks' notifications.
	Out io.Writer
	// Lateness is the default allowed lateness of rules (default 5 s: the
	// collectors' batching and Kafka delay samples).
	Lateness time.Duration
	Logger   *slog.Logger
}

// Rules is the rules role: the rule engine reading the samples topic as a
// member of the rule engines' group. Alert events go to the plan's
// notification sinks; a kafka sink named in a rule's `notify` publishes
// them to its alerts topic as JSON, key = fingerprint.
//
// Partitions: one member of the group holds all of them (a rule's group
// may span sources, and so partitions); the others are standbys that take
// over when it is gone.
//
// State: persisted. The engine saves its windows and alert states under
// DataDir with the bus position they reflect, and resumes from there after
// a restart (messages it already applied are skipped). A standby that
// takes over resumes from the committed position with its own persisted
// state (docs/kafka.md).
type Rules struct {
	eng     *rules.Engine
	cons    bus.Consumer
	kcons   bus.Consumer // the Kafka consumer under cons
	topic   *kafkabus.Topic
	closers []io.Closer
	log     *slog.Logger
	group   string
	began   time.Time
	stats   Counters
	metrics *rules.Metrics
	// lastErr is the bus error that last interrupted the engine, until a
	// message arrives again.
	lastErr       atomic.Pointer[string]
	interruptions atomic.Uint64
}

// NewRules compiles the plan's rules, restores their state and opens the
// samples consumer and the notification sinks.
func NewRules(opts RulesOptions) (*Rules, error) {
	if opts.Plan == nil {
		return nil, errors.New("kafka rules: no plan")
	}
	if opts.Group == "" {
		opts.Group = DefaultRulesGroup
	}
	if opts.Lateness <= 0 {
		opts.Lateness = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	log := opts.Logger.With("role", "rules", "group", opts.Group)
	r := &Rules{log: log, group: opts.Group, began: time.Now(), metrics: rules.NewMetrics()}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	ns, err := rules.BuildNotifiers(opts.Plan, opts.Out, log)
	if err != nil {
		return nil, fmt.Errorf("kafka rules: %w", err)
	}
	for _, n := range ns {
		if c, ok := n.(io.Closer); ok { // e.g. alertmanager's re-send loop
			r.closers = append(r.closers, c)
		}
	}
	sinks, err := kafkasink.Configs(opts.Plan)
	if err != nil {
		return nil, fmt.Errorf("kafka rules: %w", err)
	}
	for _, c := range sinks {
		n, err := kafkasink.NewNotifier(c, log)
		if err != nil {
			return nil, fmt.Errorf("kafka rules: %w", err)
		}
		r.closers = append(r.closers, n)
		ns[c.Name] = n
	}
	bal := &oneOwner{}
	opts.Kafka.Logger = log
	opts.Kafka.GroupBalancers = []kafka.GroupBalancer{bal}
	topic, err := kafkabus.Open(opts.Kafka)
	if err != nil {
		return nil, fmt.Errorf("kafka rules: %w", err)
	}
	r.topic = topic
	r.closers = append(r.closers, topic)
	cons, err := topic.Consumer(opts.Group)
	if err != nil {
		return nil, fmt.Errorf("kafka rules: %w", err)
	}
	r.closers = append(r.closers, cons)
	r.kcons = cons
	r.cons = owningConsumer{Consumer: cons, b: bal, r: r}
	r.eng, err = rules.New(rules.Options{
		Plan:            opts.Plan,
		DataDir:         opts.DataDir,
		Logger:          log,
		DefaultLateness: opts.Lateness,
		Samples:         r.cons,
		Notifiers:       ns,
		Clock:           time.Now,
		Metrics:         r.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka rules: %w", err)
	}
	ok = true
	return r, nil
}

// Run evaluates until ctx ends, then saves the state, commits the
// position and closes the consumer and the sinks.
// A failure of the engine's bus (Kafka unreachable, a commit refused
// during a rebalance) is logged and the engine resumes after a pause:
// what it applied is skipped when read again.
func (r *Rules) Run(ctx context.Context) error {
	defer r.close()
	backoff := time.Second
	for {
		err := r.eng.Run(ctx)
		if ctx.Err() != nil {
			return err
		}
		if err == nil {
			return nil
		}
		r.interruptions.Add(1)
		msg := err.Error()
		r.lastErr.Store(&msg)
		r.log.Error("rule engine interrupted; resuming", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Engine returns the rule engine (for its statistics).
func (r *Rules) Engine() *rules.Engine { return r.eng }

func (r *Rules) close() {
	// Consumer first: it was opened last.
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i].Close(); err != nil {
			r.log.Warn("close", "err", err)
		}
	}
	r.closers = nil
}
