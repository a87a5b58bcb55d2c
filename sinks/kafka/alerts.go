package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/kafkabus"
)

// Notifier publishes alert events to the sink's alerts topic, one JSON
// object per message (design §3.2), key = the event's fingerprint, so that
// every event of one rule and group stays in order within a partition.
type Notifier struct {
	name  string
	topic *kafkabus.Topic
}

var _ alert.Notifier = (*Notifier)(nil)

// NewNotifier opens the alerts topic of c; connections are made on first
// use. Close it when done.
func NewNotifier(c Config, log *slog.Logger) (*Notifier, error) {
	t, err := kafkabus.Open(c.AlertsOptions(log))
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", c.Name, err)
	}
	return &Notifier{name: c.Name, topic: t}, nil
}

// Notify returns once the brokers acknowledged the event.
func (n *Notifier) Notify(ctx context.Context, ev *alert.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("sink %s: encode alert %s: %w", n.name, ev.Fingerprint, err)
	}
	if err := n.topic.PublishJSON(ctx, []kafkabus.KeyedValue{{Key: ev.Fingerprint, Value: b}}); err != nil {
		return fmt.Errorf("sink %s: %w", n.name, err)
	}
	return nil
}

// Close flushes and closes the topic's writer.
func (n *Notifier) Close() error { return n.topic.Close() }
