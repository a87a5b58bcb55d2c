package kafkarole

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/server"
)

// Observed is a role that recond's listener serves: /metrics and /healthz
// (the archiver and rules roles; a collector is served by the engine).
type Observed interface {
	Runner
	prometheus.Collector
	Health() server.Health
}

var (
	_ Observed = (*Archiver)(nil)
	_ Observed = (*Rules)(nil)
)

// Consumer figures, labelled by consumer group.
var (
	consMessages   = prometheus.NewDesc("recond_kafka_consumer_messages_total", "Sample messages consumed from Kafka and handed to the role.", []string{"group"}, nil)
	consRows       = prometheus.NewDesc("recond_kafka_consumer_rows_total", "Sample rows of the messages consumed.", []string{"group"}, nil)
	consSkipped    = prometheus.NewDesc("recond_kafka_consumer_skipped_total", "Corrupt or foreign messages skipped (logged with partition and offset).", []string{"group"}, nil)
	consDuplicates = prometheus.NewDesc("recond_kafka_consumer_duplicates_total", "Batches a restarted collector forwarded twice, dropped.", []string{"group"}, nil)
	consLag        = prometheus.NewDesc("recond_kafka_consumer_lag_messages", "Messages behind the end of each partition held (as of the last fetch).", []string{"group", "partition"}, nil)
)

// Archiver figures: the archive's with the names of recond on one machine,
// and the group member's.
var (
	archRows       = prometheus.NewDesc("recond_samples_archived_total", "Samples written to durable Parquet files.", []string{"table"}, nil)
	archFiles      = prometheus.NewDesc("recond_archive_files_written_total", "Parquet files written.", []string{"table"}, nil)
	archBytes      = prometheus.NewDesc("recond_archive_bytes_written_total", "Bytes of Parquet files written.", []string{"table"}, nil)
	archErrors     = prometheus.NewDesc("recond_archive_write_errors_total", "Failed attempts to write and commit a range (retried).", []string{"table"}, nil)
	archPending    = prometheus.NewDesc("recond_archive_pending_rows", "Rows fetched from the bus but not archived yet.", []string{"table"}, nil)
	archCompacted  = prometheus.NewDesc("recond_archive_compacted_partitions_total", "Hour partitions this member compacted.", nil, nil)
	archCompactErr = prometheus.NewDesc("recond_archive_compaction_errors_total", "Compaction rounds that failed (the files stay as they are).", nil, nil)
	archParts      = prometheus.NewDesc("recond_kafka_archiver_partitions", "Partitions of the samples topic this member holds.", nil, nil)
	archGens       = prometheus.NewDesc("recond_kafka_archiver_generations_total", "Consumer group generations this member took part in.", nil, nil)
)

// Describe implements prometheus.Collector.
func (a *Archiver) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consMessages, consRows, consSkipped, consDuplicates, consLag,
		archRows, archFiles, archBytes, archErrors, archPending, archCompacted, archCompactErr, archParts, archGens} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a *Archiver) Collect(ch chan<- prometheus.Metric) {
	s := a.Stats()
	g := a.opts.Group
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(consMessages, s.Fetched, g)
	counter(consRows, a.stats.Rows.Load(), g)
	counter(consSkipped, s.Skipped, g)
	counter(consDuplicates, s.Duplicates, g)
	collectLag(ch, g, a.stats.Lag())
	t := s.Archive.Table
	if t == "" {
		t = "samples"
	}
	counter(archRows, uint64(s.Archive.RowsWritten), t)
	counter(archFiles, uint64(s.Archive.FilesWritten), t)
	counter(archBytes, uint64(s.Archive.BytesWritten), t)
	counter(archErrors, uint64(s.Archive.WriteErrors), t)
	ch <- prometheus.MustNewConstMetric(archPending, prometheus.GaugeValue, float64(s.Archive.PendingRows), t)
	counter(archCompacted, a.stats.Compacted.Load())
	counter(archCompactErr, a.stats.CompactErrors.Load())
	ch <- prometheus.MustNewConstMetric(archParts, prometheus.GaugeValue, float64(s.Partitions))
	counter(archGens, uint64(s.Generations))
}

func collectLag(ch chan<- prometheus.Metric, group string, lag map[int32]int64) {
	for p, l := range lag {
		ch <- prometheus.MustNewConstMetric(consLag, prometheus.GaugeValue, float64(l), group, strconv.Itoa(int(p)))
	}
}

// Health is the archiver's /healthz: degraded while the last attempt to
// write the archive failed.
func (a *Archiver) Health() server.Health {
	s := a.Stats()
	h := server.Health{Status: "ok", Uptime: time.Since(a.began).Seconds(), Archived: s.Archive.RowsWritten}
	if s.Archive.LastError != "" && s.Archive.LastErrorAt.After(s.Archive.LastFlushAt) {
		h.Status, h.Reason = "degraded", "archive: "+s.Archive.LastError
	}
	return h
}

// Rules figures besides the rule engine's own (rules.Metrics: per rule,
// per notification sink).
var rulesRestarts = prometheus.NewDesc("recond_rules_interruptions_total", "Times the rule engine stopped on a bus error and resumed.", nil, nil)

// Describe implements prometheus.Collector.
func (r *Rules) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{consMessages, consRows, consSkipped, consLag, rulesRestarts} {
		ch <- d
	}
	r.metrics.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Rules) Collect(ch chan<- prometheus.Metric) {
	g := r.group
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(consMessages, r.stats.Fetched.Load(), g)
	counter(consRows, r.stats.Rows.Load(), g)
	counter(consSkipped, r.topic.Stats().Skipped.Load(), g)
	if l, ok := r.kcons.(kafkabus.Lagger); ok {
		collectLag(ch, g, l.Lag())
	}
	counter(rulesRestarts, r.interruptions.Load())
	r.metrics.Collect(ch)
}

// Health is the rules process's /healthz: degraded from a bus error that
// interrupted the engine until the next message arrives.
func (r *Rules) Health() server.Health {
	h := server.Health{Status: "ok", Uptime: time.Since(r.began).Seconds()}
	if e := r.lastErr.Load(); e != nil {
		h.Status, h.Reason = "degraded", "rule engine interrupted: "+*e
	}
	return h
}
