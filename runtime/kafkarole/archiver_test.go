package kafkarole

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/sinks/parquet"
)

// archivedValues reads the value column of every file of the archive.
func archivedValues(t *testing.T, dir string) map[float64]int {
	t.Helper()
	type row struct {
		Value *float64 `parquet:"value,optional"`
	}
	seen := map[float64]int{}
	err := filepath.WalkDir(filepath.Join(dir, "samples"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		rows, err := pq.ReadFile[row](path)
		if err != nil {
			return err
		}
		for _, r := range rows {
			seen[*r.Value]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

// The archiver group writes every forwarded row once: a batch a restarted
// collector forwarded a second time is dropped, and a message that is not
// a sample batch is skipped and counted without stopping its partition.
func TestArchiverDropsDuplicatesAndSkipsCorrupt(t *testing.T) {
	b := kafkatest.Start(t, 2, "recon.samples")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := kafkabus.Options{Brokers: b.Addrs, Topic: "recon.samples", Logger: quietLog()}
	topic, err := kafkabus.Open(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	msg := func(key string, off int64, first int) bus.Message {
		return bus.Message{Key: key, Offset: off, Record: seqBatch(first, 100)}
	}
	send := func(ms ...bus.Message) {
		t.Helper()
		defer func() {
			for _, m := range ms {
				m.Record.Release()
			}
		}()
		if err := topic.PublishBatches(ctx, "origin-1", ms); err != nil {
			t.Fatal(err)
		}
	}
	send(msg("a", 0, 0), msg("b", 1, 100), msg("c", 2, 200))
	// The collector died before its journal checkpoint moved: batches 1
	// and 2 are forwarded again after its restart, then batch 3.
	send(msg("b", 1, 100), msg("c", 2, 200), msg("a", 3, 300))
	w := &kafka.Writer{Addr: kafka.TCP(b.Addrs...), Topic: "recon.samples", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("a"), Value: []byte("not arrow")}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	send(msg("a", 4, 400))

	dir := t.TempDir()
	cfg := parquet.DefaultConfig(dir)
	cfg.FlushInterval = 100 * time.Millisecond
	a, err := NewArchiver(ArchiverOptions{Kafka: conn, Archive: cfg, Logger: quietLog(),
		Membership: GroupOptions{SessionTimeout: 6 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := reg.Gather(); err != nil { // /metrics while it runs
			t.Fatal(err)
		}
		s := a.Stats()
		if s.Archive.RowsWritten >= 500 && s.Duplicates == 2 && s.Skipped == 1 && s.Archive.PendingRows == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archiver stats after 30s: %+v", s)
		}
	}
	for name, want := range map[string]float64{
		"recond_kafka_consumer_skipped_total":    1,
		"recond_kafka_consumer_duplicates_total": 2,
		"recond_kafka_consumer_rows_total":       500,
		"recond_samples_archived_total":          500,
		"recond_kafka_archiver_partitions":       2,
	} {
		if got := gathered(t, reg, name); got != want {
			t.Errorf("/metrics %s = %v, want %v", name, got, want)
		}
	}
	if h := a.Health(); h.Status != "ok" || h.Archived != 500 {
		t.Errorf("health %+v, want ok with 500 archived", h)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := archivedValues(t, dir)
	if len(seen) != 500 {
		t.Errorf("archive holds %d distinct values, want 500", len(seen))
	}
	for v, n := range seen {
		if n != 1 || v < 0 || v >= 500 {
			t.Errorf("value %v archived %d times", v, n)
		}
	}
}

// gathered sums the samples of one metric family of reg (-1 if absent).
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return -1
}
