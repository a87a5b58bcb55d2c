package kafkarole

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconmon/recon/runtime/bus"
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
	fwd   atomic.Pointer[kafkabus.Forwarder]
}

// NewCollector opens the samples topic; Run (or Forward) forwards.
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
	return &Collector{opts: opts, log: log, topic: topic}, nil
}

// Name is the journal consumer the collector forwards from.
func (c *Collector) Name() string { return c.opts.Consumer }

// Run opens the journal consumer and forwards until ctx ends; it closes
// the consumer and the topic when it returns.
func (c *Collector) Run(ctx context.Context) error {
	src, err := c.opts.Journal.Consumer(c.opts.Consumer)
	if err != nil {
		_ = c.topic.Close()
		return fmt.Errorf("kafka collector: journal consumer %s: %w", c.opts.Consumer, err)
	}
	defer src.Close()
	return c.Forward(ctx, src)
}

// Forward forwards from src (the journal consumer named Name, opened by
// the caller, who closes it) until ctx ends, logging the lag while the
// collector is behind; it closes the topic when it returns.
func (c *Collector) Forward(ctx context.Context, src bus.Consumer) error {
	defer func() {
		if err := c.topic.Close(); err != nil {
			c.log.Warn("close the samples topic", "err", err)
		}
	}()
	fwd := kafkabus.NewForwarder(src, c.topic, c.log)
	fwd.Origin = c.opts.Origin
	c.fwd.Store(fwd)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.report(rctx) })
	err := fwd.Run(rctx)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("kafka collector: %w", err)
	}
	return nil
}

// behindBatches is a backlog worth reporting: more than one forwarder
// round (kafkabus.Forwarder.MaxBatches).
const behindBatches = 1024

// report logs the lag every ReportEvery while the collector is behind.
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
		// A few batches in flight are normal; behind is a broker that
		// does not acknowledge, or a backlog of more than one round.
		stalled := s.LagBatches > 0 && (s.Down || time.Since(s.LastOK) > c.opts.ReportEvery)
		switch {
		case stalled || s.LagBatches > behindBatches:
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
	js := c.opts.Journal.Stats()
	s := CollectorStats{JournalBytes: js.Bytes, Rows: c.topic.Stats().PublishedRows.Load(), Bytes: c.topic.Stats().Bytes.Load()}
	if fwd := c.fwd.Load(); fwd != nil {
		f := fwd.Stats()
		s.Down, s.Forwarded, s.Failures, s.LastOK = f.Down, f.Forwarded, f.Failures, f.LastOK
	}
	for _, cs := range js.Consumers {
		if cs.Name == c.opts.Consumer {
			s.LagBatches = cs.Lag
		}
	}
	return s
}

var (
	fwdLag      = prometheus.NewDesc("recond_kafka_forwarder_lag_batches", "Batches accepted into the local journal and not yet acknowledged by Kafka.", nil, nil)
	fwdDown     = prometheus.NewDesc("recond_kafka_forwarder_down", "1 while the last attempt to publish to Kafka failed.", nil, nil)
	fwdLastOK   = prometheus.NewDesc("recond_kafka_forwarder_last_ok_seconds", "Unix time of the last round Kafka acknowledged (0 before the first).", nil, nil)
	fwdBatches  = prometheus.NewDesc("recond_kafka_forwarder_batches_total", "Journal batches acknowledged by Kafka.", nil, nil)
	fwdRows     = prometheus.NewDesc("recond_kafka_forwarder_rows_total", "Sample rows acknowledged by Kafka.", nil, nil)
	fwdBytes    = prometheus.NewDesc("recond_kafka_forwarder_bytes_total", "Message bytes acknowledged by Kafka.", nil, nil)
	fwdFailures = prometheus.NewDesc("recond_kafka_forwarder_failures_total", "Failed attempts to publish to Kafka (retried).", nil, nil)
)

var _ prometheus.Collector = (*Collector)(nil)

// Describe implements prometheus.Collector: register the collector with
// recond's registry for /metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fwdLag, fwdDown, fwdLastOK, fwdBatches, fwdRows, fwdBytes, fwdFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.Stats()
	down, lastOK := 0.0, 0.0
	if s.Down {
		down = 1
	}
	if !s.LastOK.IsZero() {
		lastOK = float64(s.LastOK.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(fwdLag, prometheus.GaugeValue, float64(s.LagBatches))
	ch <- prometheus.MustNewConstMetric(fwdDown, prometheus.GaugeValue, down)
	ch <- prometheus.MustNewConstMetric(fwdLastOK, prometheus.GaugeValue, lastOK)
	ch <- prometheus.MustNewConstMetric(fwdBatches, prometheus.CounterValue, float64(s.Forwarded))
	ch <- prometheus.MustNewConstMetric(fwdRows, prometheus.CounterValue, float64(s.Rows))
	ch <- prometheus.MustNewConstMetric(fwdBytes, prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(fwdFailures, prometheus.CounterValue, float64(s.Failures))
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
