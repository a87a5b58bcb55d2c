package kafkabus

import (
	"context"
	"testing"

	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
)

// BenchmarkPublish measures samples/s through kafka-go into the test broker
// process (acks=all, lz4), 65,536-row batches split to 1 MB messages.
func BenchmarkPublish(b *testing.B) {
	br := kafkatest.Start(b, 4, "bench.samples")
	tp, err := Open(Options{Brokers: br.Addrs, Topic: "bench.samples", Compression: "lz4"})
	if err != nil {
		b.Fatal(err)
	}
	defer tp.Close()
	const rows = 65536
	rec := batch("bench", 0, rows)
	defer rec.Release()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := tp.Publish(ctx, "bench", rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(tp.Stats().Bytes.Load())/float64(b.N*rows), "wireB/sample")
}
