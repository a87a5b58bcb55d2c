package kafkarole

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus"
)

// DefaultForwarderName is the journal consumer of the forwarder.
const DefaultForwarderName = "kafka-forwarder"

// CollectorOptions configure the collector role.
type CollectorOptions struct {
	// Journal is the local journal the sources' batches are accepted into.
	// The collector reads it; the caller owns (and closes) it.
	Journal *journal.Journal
	// Kafka is the samples topic.
	Kafka kafkabus.Options
	// Consumer names the forwarder's journal checkpoint (default
	// DefaultForwarderName).
	Consumer string
	// Origin is the journal's stable id (see LoadOrigin); forwarded
	// messages carry it so that the archivers drop a batch forwarded twice
	// across a crash. Empty: no origin headers.
	Origin string
	// ReportEvery is how often a collector that is behind logs its lag
	// (default 10 s).
	ReportEvery time.Duration
	Logger      *slog.Logger
}

// Collector is the collector role's link to Kafka: a forwarder draining the
// local journal into the samples topic in order. The sources keep writing
// to the journal while Kafka is away; the backlog is sent when it returns.
type Collector struct {
	opts  CollectorOptions
	log   *slog.Logger
	topic *kafkabus.Topic
	fwd   *kafkabus.Forwarder

	mu      sync.Mutex
	closers []io.Closer
}

// NewCollector opens the samples topic and the forwarder's journal
// consumer; Run forwards.
func NewCollector(opts CollectorOptions) (*Collector, error) {
	if opts.Journal == nil {
		return nil, errors.New("kafka collector: no journal")
	}
	if opts.Consumer == "" {
		opts.Consumer = DefaultForwarderName
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("role", "collector", "topic", opts.Kafka.Topic)
	opts.Kafka.Logger = log
	topic, err := kafkabus.Open(opts.Kafka)
	if err != nil {
		return nil, fmt.Errorf("kafka collector: %w", err)
	}
	src, err := opts.Journal.Consumer(opts.Consumer)
	if err != nil {
		_ = topic.Close()
		return nil, fmt.Errorf("kafka collector: journal consumer %s: %w", opts.Consumer, err)
	}
	fwd := kafkabus.NewForwarder(src, topic, log)
	fwd.Origin = opts.Origin
	return &Collector{opts: opts, log: log, topic: topic, fwd: fwd, closers: []io.Closer{src, topic}}, nil
}

// Run forwards until ctx ends, logging the lag while the collector is
// behind. It closes the topic and the journal consumer when it returns.
func (c *Collector) Run(ctx context.Context) error {
	defer c.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.report(rctx)
	}()
	err := c.fwd.Run(rctx)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("kafka collector: %w", err)
	}
	return nil
}

func (c *Collector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.closers {
		if err := cl.Close(); err != nil {
			c.log.Warn("close", "err", err)
		}
	}
	c.closers = nil
}

// report logs the lag every ReportEvery while there is one.
func (c *Collector) report(ctx context.Context) {
	t := time.NewTicker(c.opts.ReportEvery)
	defer t.Stop()
	behind := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := c.Stats()
		switch {
		case s.LagBatches > 0:
			c.log.Warn("collector behind Kafka", "lag_batches", s.LagBatches, "kafka_down", s.Down,
				"last_ok", s.LastOK, "journal_bytes", s.JournalBytes)
			behind = true
		case behind:
			c.log.Info("collector caught up with Kafka")
			behind = false
		}
	}
}

// CollectorStats say how far behind Kafka a collector is.
type CollectorStats struct {
	// LagBatches are accepted into the journal, not yet acknowledged by
	// Kafka.
	LagBatches int64
	// JournalBytes is the journal's size on disk (the backlog is part of it).
	JournalBytes int64
	// Down is true while the last publish to Kafka failed.
	Down      bool
	Forwarded uint64 // batches acknowledged by Kafka
	Failures  uint64 // failed publish attempts
	Rows      uint64 // rows acknowledged by Kafka
	Bytes     uint64 // message bytes acknowledged by Kafka
	LastOK    time.Time
}

// Stats returns a snapshot; safe for concurrent use.
func (c *Collector) Stats() CollectorStats {
	f := c.fwd.Stats()
	js := c.opts.Journal.Stats()
	s := CollectorStats{JournalBytes: js.Bytes, Down: f.Down, Forwarded: f.Forwarded, Failures: f.Failures, LastOK: f.LastOK,
		Rows: c.topic.Stats().PublishedRows.Load(), Bytes: c.topic.Stats().Bytes.Load()}
	for _, cs := range js.Consumers {
		if cs.Name == c.opts.Consumer {
			s.LagBatches = cs.Lag
		}
	}
	return s
}

// WriteMetrics writes the collector's figures in the Prometheus text
// format, for recond's /metrics.
func (c *Collector) WriteMetrics(w io.Writer) error {
	s := c.Stats()
	down := 0
	if s.Down {
		down = 1
	}
	lastOK := 0.0
	if !s.LastOK.IsZero() {
		lastOK = float64(s.LastOK.UnixNano()) / 1e9
	}
	_, err := fmt.Fprintf(w, `# HELP recon_kafka_forwarder_lag_batches Batches accepted into the local journal and not yet acknowledged by Kafka.
# TYPE recon_kafka_forwarder_lag_batches gauge
recon_kafka_forwarder_lag_batches %d
# HELP recon_kafka_forwarder_down 1 while the last publish to Kafka failed.
# TYPE recon_kafka_forwarder_down gauge
recon_kafka_forwarder_down %d
# HELP recon_kafka_forwarder_batches_total Batches acknowledged by Kafka.
# TYPE recon_kafka_forwarder_batches_total counter
recon_kafka_forwarder_batches_total %d
# HELP recon_kafka_forwarder_rows_total Sample rows acknowledged by Kafka.
# TYPE recon_kafka_forwarder_rows_total counter
recon_kafka_forwarder_rows_total %d
# HELP recon_kafka_forwarder_bytes_total Message bytes acknowledged by Kafka.
# TYPE recon_kafka_forwarder_bytes_total counter
recon_kafka_forwarder_bytes_total %d
# HELP recon_kafka_forwarder_failures_total Failed publish attempts.
# TYPE recon_kafka_forwarder_failures_total counter
recon_kafka_forwarder_failures_total %d
# HELP recon_kafka_forwarder_last_ok_seconds Unix time of the last acknowledged publish.
# TYPE recon_kafka_forwarder_last_ok_seconds gauge
recon_kafka_forwarder_last_ok_seconds %g
`, s.LagBatches, down, s.Forwarded, s.Rows, s.Bytes, s.Failures, lastOK)
	return err
}

// OriginFile is the file under recond's data dir holding the journal's
// origin id.
const OriginFile = "kafka-origin"

// LoadOrigin returns the origin id of the journal under dataDir, creating
// it on first use. It lives as long as the data dir (and so the journal):
// a collector with a new data dir is a new origin.
func LoadOrigin(dataDir string) (string, error) {
	path := filepath.Join(dataDir, OriginFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 32 {
			return "", fmt.Errorf("origin id in %s is damaged (%q): remove it to start a new origin", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read origin id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("new origin id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := writeFileDurable(path, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}
