// Package metrics holds recond's figures about itself, exposed in the
// Prometheus text format on /metrics: runs, lateness and skips from the
// scheduler, samples accepted by the bus, the journal and the archive, and
// the Go process (goroutines, RSS).
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

const namespace = "recond"

// Runtime is recond's metric set. It implements scheduler.Observer.
type Runtime struct {
	Registry *prometheus.Registry

	lateAfter     time.Duration
	runs          *prometheus.CounterVec
	runDuration   *prometheus.HistogramVec
	lateness      *prometheus.HistogramVec
	late          *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	panics        *prometheus.CounterVec
	listenerFails *prometheus.CounterVec
	publish       prometheus.Histogram
}

// New returns the metric set with the Go and process collectors
// registered. A run starting more than lateAfter behind its slot counts as
// late.
func New(lateAfter time.Duration) *Runtime {
	reg := prometheus.NewRegistry()
	m := &Runtime{
		Registry:  reg,
		lateAfter: lateAfter,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_total", Help: "Check runs finished, by module and status.",
		}, []string{"module", "status"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "run_duration_seconds", Help: "Duration of check runs, by module.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"module"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "run_start_lateness_seconds", Help: "How long after its slot a check run started, by module.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
		}, []string{"module"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_late_total", Help: "Check runs that started more than the lateness threshold after their slot.",
		}, []string{"module"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runs_skipped_total", Help: "Slots skipped because the previous run of the source was still going.",
		}, []string{"module"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "module_panics_total", Help: "Checks and listeners that panicked (reported as unknown status).",
		}, []string{"module"}),
		listenerFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "listener_failures_total", Help: "Listeners that failed and were restarted.",
		}, []string{"module"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_publish_seconds", Help: "Time for the bus to accept a sample batch (durable).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 9),
		}),
	}
	reg.MustRegister(m.runs, m.runDuration, m.lateness, m.late, m.skipped, m.panics, m.listenerFails, m.publish,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RunStarted implements scheduler.Observer.
func (m *Runtime) RunStarted(module string, late time.Duration) {
	m.lateness.WithLabelValues(module).Observe(max(late, 0).Seconds())
	if late > m.lateAfter {
		m.late.WithLabelValues(module).Inc()
	}
}

// RunDone implements scheduler.Observer.
func (m *Runtime) RunDone(module string, status sample.Status, took time.Duration) {
	m.runs.WithLabelValues(module, status.String()).Inc()
	m.runDuration.WithLabelValues(module).Observe(took.Seconds())
}

// RunSkipped implements scheduler.Observer.
func (m *Runtime) RunSkipped(module string) { m.skipped.WithLabelValues(module).Inc() }

// Panicked implements scheduler.Observer.
func (m *Runtime) Panicked(module string) { m.panics.WithLabelValues(module).Inc() }

// ListenerFailed implements scheduler.Observer.
func (m *Runtime) ListenerFailed(module string) { m.listenerFails.WithLabelValues(module).Inc() }

// Published records one accepted batch (batch.Options.OnPublish).
func (m *Runtime) Published(_ int, took time.Duration) { m.publish.Observe(took.Seconds()) }

// Batcher is what the metrics read from the batcher.
type Batcher interface {
	Accepted() int64
	Batches() int64
	PublishFailures() int64
}

// WatchBatcher exposes the batcher's counters.
func (m *Runtime) WatchBatcher(b Batcher) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "samples_accepted_total",
			Help: "Samples whose batch the bus accepted (durable)."}, func() float64 { return float64(b.Accepted()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "batches_accepted_total",
			Help: "Sample batches the bus accepted."}, func() float64 { return float64(b.Batches()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "publish_errors_total",
			Help: "Failed attempts to publish a batch (retried)."}, func() float64 { return float64(b.PublishFailures()) }),
	)
}

// WatchJournal exposes a journal's size and every consumer's lag.
func (m *Runtime) WatchJournal(stats func() journal.Stats) {
	m.Registry.MustRegister(&journalCollector{stats: stats})
}

// WatchArchiver exposes an archiver's figures.
func (m *Runtime) WatchArchiver(stats func() parquet.Stats) {
	m.Registry.MustRegister(&archiverCollector{stats: stats})
}

var (
	journalBytes    = prometheus.NewDesc("recond_journal_bytes", "Bytes of journal segment files on disk.", nil, nil)
	journalSegments = prometheus.NewDesc("recond_journal_segments", "Journal segment files on disk.", nil, nil)
	journalFsyncs   = prometheus.NewDesc("recond_journal_fsyncs_total", "Journal group commits (fdatasync calls).", nil, nil)
	journalLag      = prometheus.NewDesc("recond_journal_consumer_lag_batches", "Batches published but not yet committed, by consumer.", []string{"consumer"}, nil)
)

type journalCollector struct{ stats func() journal.Stats }

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- journalBytes
	ch <- journalSegments
	ch <- journalFsyncs
	ch <- journalLag
}

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(journalBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(journalSegments, prometheus.GaugeValue, float64(s.Segments))
	ch <- prometheus.MustNewConstMetric(journalFsyncs, prometheus.CounterValue, float64(s.Fsyncs))
	for _, cs := range s.Consumers {
		ch <- prometheus.MustNewConstMetric(journalLag, prometheus.GaugeValue, float64(cs.Lag), cs.Name)
	}
}

var (
	archRows    = prometheus.NewDesc("recond_samples_archived_total", "Samples written to durable Parquet files.", []string{"table"}, nil)
	archFiles   = prometheus.NewDesc("recond_archive_files_written_total", "Parquet files written.", []string{"table"}, nil)
	archBytes   = prometheus.NewDesc("recond_archive_bytes_written_total", "Bytes of Parquet files written.", []string{"table"}, nil)
	archErrors  = prometheus.NewDesc("recond_archive_write_errors_total", "Failed attempts to write and commit a range (retried).", []string{"table"}, nil)
	archPending = prometheus.NewDesc("recond_archive_pending_rows", "Rows fetched from the bus but not archived yet.", []string{"table"}, nil)
	archLag     = prometheus.NewDesc("recond_archive_lag_seconds", "How long the oldest pending row has waited.", []string{"table"}, nil)
)

type archiverCollector struct{ stats func() parquet.Stats }

func (c *archiverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{archRows, archFiles, archBytes, archErrors, archPending, archLag} {
		ch <- d
	}
}

func (c *archiverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(archRows, prometheus.CounterValue, float64(s.RowsWritten), s.Table)
	ch <- prometheus.MustNewConstMetric(archFiles, prometheus.CounterValue, float64(s.FilesWritten), s.Table)
	ch <- prometheus.MustNewConstMetric(archBytes, prometheus.CounterValue, float64(s.BytesWritten), s.Table)
	ch <- prometheus.MustNewConstMetric(archErrors, prometheus.CounterValue, float64(s.WriteErrors), s.Table)
	ch <- prometheus.MustNewConstMetric(archPending, prometheus.GaugeValue, float64(s.PendingRows), s.Table)
	ch <- prometheus.MustNewConstMetric(archLag, prometheus.GaugeValue, s.Lag.Seconds(), s.Table)
}
