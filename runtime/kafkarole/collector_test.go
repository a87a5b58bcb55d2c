package kafkarole

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func seqBatch(first, rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for i := range rows {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Now().UnixNano()))
		for _, f := range []int{sample.IdxPipeline, sample.IdxSource, sample.IdxModule, sample.IdxTarget, sample.IdxNode} {
			b.Field(f).(*array.StringBuilder).Append("x")
		}
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append("seq")
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(first + i))
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxLabels).(*array.MapBuilder).Append(true)
	}
	return b.NewRecordBatch()
}

// metric reads one value of the collector's metrics, as /metrics would.
func metric(t *testing.T, c *Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// While the broker is away the collector keeps accepting into its journal
// and /metrics says how far behind it is; when the broker returns the
// backlog drains and every row reaches Kafka.
func TestCollectorLagAcrossOutage(t *testing.T) {
	b := kafkatest.Start(t, 2, "recon.samples")
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"), journal.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	c, err := NewCollector(CollectorOptions{Journal: j, Kafka: kafkabus.Options{Brokers: b.Addrs, Topic: "recon.samples"},
		Origin: strings.Repeat("a", 32), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	publish := func(first int) {
		rec := seqBatch(first, 100)
		defer rec.Release()
		if err := j.Publish(ctx, "src", rec); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
		}
	}
	publish(0)
	wait("first batch forwarded", func() bool { return metric(t, c, "recond_kafka_forwarder_rows_total") == 100 })

	if err := b.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		publish(i * 100)
	}
	wait("lag reported", func() bool { return metric(t, c, "recond_kafka_forwarder_lag_batches") >= 19 })
	if err := b.Resume(); err != nil {
		t.Fatal(err)
	}
	wait("backlog drained", func() bool {
		return metric(t, c, "recond_kafka_forwarder_lag_batches") == 0 && metric(t, c, "recond_kafka_forwarder_rows_total") == 2100
	})
	if metric(t, c, "recond_kafka_forwarder_down") != 0 {
		t.Error("collector still reports Kafka down after the backlog drained")
	}
}
