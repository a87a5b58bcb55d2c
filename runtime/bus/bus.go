// Package bus defines the durable bus between producers (collectors) and
// consumers (archiver, rule engine, live stream). A batch is accepted once
// Publish returns nil: from then on it must reach every consumer, across
// crashes and restarts.
//
// The embedded journal (runtime/journal) is the default implementation; the
// Kafka bus is the second.
package bus

import (
	"context"
	"errors"

	"github.com/apache/arrow-go/v18/arrow"
)

// Topics carried by the bus.
const (
	TopicSamples = "samples"
	TopicAlerts  = "alerts"
)

// ErrClosed is returned by operations on a closed bus or consumer.
var ErrClosed = errors.New("bus: closed")

// Message is one record batch read from the bus.
type Message struct {
	// Record is owned by the consumer, which must Release it when done.
	Record arrow.RecordBatch
	// Partition and Offset locate the message; offsets grow by one per
	// message within a partition (the journal has a single partition 0).
	Partition int32
	Offset    int64
	// Key is the producer's key (the source name for samples).
	Key string
}

// Producer appends batches.
type Producer interface {
	// Publish appends rec (which the caller still owns). When it returns nil
	// the batch is durable: accepted. Implementations may group-commit
	// concurrent callers.
	Publish(ctx context.Context, key string, rec arrow.RecordBatch) error
}

// Consumer reads a topic for one named consumer (group) from its last
// committed position.
type Consumer interface {
	// Fetch blocks until a message is available, ctx is done or the consumer
	// is closed.
	Fetch(ctx context.Context) (Message, error)
	// Commit records durably that m and every earlier message of its
	// partition were processed. A restarted consumer resumes after the last
	// commit.
	Commit(ctx context.Context, m Message) error
	Close() error
}

// Topic is one topic of a bus.
type Topic interface {
	Producer
	// Consumer opens the named consumer; the name keys its checkpoint.
	Consumer(name string) (Consumer, error)
	Close() error
}
