package kafkarole

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// benchBatch is one batcher-sized batch of http-like samples of source.
func benchBatch(source string, rows int, t0 time.Time) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for i := range rows {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(i) * time.Millisecond).UnixNano()))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("bench")
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(source)
		b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append(fmt.Sprintf("10.0.%d.%d", i%16, i%251))
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append([]string{"duration", "code", "status", "available"}[i%4])
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(i%1000) / 1000)
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
		b.Field(sample.IdxLabels).(*array.MapBuilder).Append(true)
		b.Field(sample.IdxNode).(*array.StringBuilder).Append("collector-1")
	}
	return b.NewRecordBatch()
}

// BenchmarkEndToEnd: batches accepted into a collector's journal →
// forwarder → Kafka (kfake process, 4 partitions) → archiver group member →
// durable Parquet files. One op is one 65,536-row batch; samples/s counts
// rows archived (committed) per second of the whole run; cpu-ns/sample is
// the CPU time of this process (collector and archiver) per sample,
// broker-cpu-ns/sample the broker process's.
func BenchmarkEndToEnd(b *testing.B) {
	for _, comp := range []string{"none", "lz4", "zstd"} {
		b.Run("compression="+comp, func(b *testing.B) { benchEndToEnd(b, comp) })
	}
}

func benchEndToEnd(b *testing.B, compression string) {
	const rows = 65536
	broker := kafkatest.Start(b, 4, "recon.samples")
	dir := b.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	conn := kafkabus.Options{Brokers: broker.Addrs, Topic: "recon.samples", Compression: compression}
	c, err := NewCollector(CollectorOptions{Journal: j, Kafka: conn, Origin: "0123456789abcdef0123456789abcdef", Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := parquet.DefaultConfig(filepath.Join(dir, "archive"))
	cfg.FlushInterval = time.Second
	a, err := NewArchiver(ArchiverOptions{Kafka: conn, Archive: cfg, Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	batches := make([]arrow.RecordBatch, 8)
	for i := range batches {
		batches[i] = benchBatch(fmt.Sprintf("web-%02d", i), rows, time.Now())
		defer batches[i].Release()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- c.Run(ctx) }()
	go func() { errs <- a.Run(ctx) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				b.Error(err)
			}
		}
	}()
	// Wait until the archiver holds its partitions.
	for a.Stats().Partitions == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	start := time.Now()
	cpu0, bcpu0 := processCPU(b), brokerCPU(b, broker)
	for i := 0; i < b.N; i++ {
		rec := batches[i%len(batches)]
		if err := j.Publish(ctx, fmt.Sprintf("web-%02d", i%len(batches)), rec); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * rows
	published := time.Since(start)
	for c.Stats().Rows < uint64(want) {
		time.Sleep(5 * time.Millisecond)
	}
	forwarded := time.Since(start)
	for a.Stats().Archive.RowsWritten < want {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu, bcpu := processCPU(b)-cpu0, brokerCPU(b, broker)-bcpu0
	b.StopTimer()
	b.Logf("%d rows: in the journal after %v, acknowledged by Kafka after %v, archived after %v", want, published, forwarded, elapsed)
	cs := c.Stats()
	b.ReportMetric(float64(want)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(want), "cpu-ns/sample")
	b.ReportMetric(float64(bcpu.Nanoseconds())/float64(want), "broker-cpu-ns/sample")
	b.ReportMetric(float64(cs.Bytes)/float64(cs.Rows), "msgB/sample")
	b.ReportMetric(float64(cs.Bytes)/float64(cs.Rows)*compressionRatio(b, compression, batches[0]), "wireB/sample")
	b.ReportMetric(peakRSS(b), "peakRSS-MiB")
}

// peakRSS is this process's peak resident set so far (VmHWM), in MiB.
func peakRSS(b *testing.B) float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", kb, err)
			}
			return n / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// processCPU is the CPU time (user + system) this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func brokerCPU(b *testing.B, br *kafkatest.Broker) time.Duration {
	d, err := br.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// compressionRatio is compressed/plain size of one message-sized piece
// of rec under Kafka's codec name (1 for none).
func compressionRatio(b *testing.B, name string, rec arrow.RecordBatch) float64 {
	var codec kafka.CompressionCodec
	switch name {
	case "lz4":
		codec = kafka.Lz4.Codec()
	case "zstd":
		codec = kafka.Zstd.Codec()
	default:
		return 1
	}
	piece := rec.NewSlice(0, 8192)
	defer piece.Release()
	var plain, packed bytes.Buffer
	w := ipc.NewWriter(&plain, ipc.WithSchema(piece.Schema()))
	if err := w.Write(piece); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	cw := codec.NewWriter(&packed)
	if _, err := cw.Write(plain.Bytes()); err != nil {
		b.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		b.Fatal(err)
	}
	return float64(packed.Len()) / float64(plain.Len())
}
