package journal

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const benchRows = 65536

// cpuTime returns the user+system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchBatches(b *testing.B, n int) []arrow.RecordBatch {
	b.Helper()
	recs := make([]arrow.RecordBatch, n)
	for i := range recs {
		recs[i] = sampleBatch(memory.DefaultAllocator, int64(i), benchRows)
	}
	b.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return recs
}

// BenchmarkPublish measures durable (fsynced) publish throughput of
// 65,536-row sample batches; one op is one batch.
func BenchmarkPublish(b *testing.B) {
	recs := benchBatches(b, 4)
	for _, comp := range []Compression{CompressionLZ4, CompressionNone} {
		for _, pubs := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/publishers=%d", comp, pubs), func(b *testing.B) {
				j, err := Open(b.TempDir(), Options{Compression: comp, Logger: discard()})
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close()
				before := j.Stats()
				b.ReportAllocs()
				b.ResetTimer()
				start, cpu := time.Now(), cpuTime(b)
				var wg sync.WaitGroup
				for p := range pubs {
					n := b.N / pubs
					if p < b.N%pubs {
						n++
					}
					wg.Go(func() {
						for i := range n {
							if err := j.Publish(context.Background(), "bench", recs[(p+i)%len(recs)]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start).Seconds()
				cpuPerSample := float64(cpuTime(b)-cpu) / float64(b.N*benchRows)
				b.StopTimer()
				st := j.Stats()
				disk := float64(st.PublishedBytes - before.PublishedBytes)
				b.ReportMetric(float64(b.N*benchRows)/elapsed, "samples/s")
				b.ReportMetric(disk/elapsed/1e6, "diskMB/s")
				b.ReportMetric(disk/float64(b.N*benchRows), "diskB/sample")
				b.ReportMetric(float64(st.Fsyncs-before.Fsyncs)/float64(b.N), "fsyncs/op")
				b.ReportMetric(cpuPerSample, "cpu-ns/sample")
			})
		}
	}
}

// BenchmarkFetch measures decode throughput of Fetch over 65,536-row
// batches already on disk; one op is one batch.
func BenchmarkFetch(b *testing.B) {
	recs := benchBatches(b, 4)
	for _, comp := range []Compression{CompressionLZ4, CompressionNone} {
		b.Run(comp.String(), func(b *testing.B) {
			j, err := Open(b.TempDir(), Options{Compression: comp, Logger: discard()})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			const stored = 16
			for i := range stored {
				if err := j.Publish(context.Background(), "bench", recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			var c *Consumer
			round := 0
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu := time.Now(), cpuTime(b)
			for i := range b.N {
				if i%stored == 0 {
					b.StopTimer()
					if c != nil {
						_ = c.Close()
					}
					if c, err = j.OpenConsumer(fmt.Sprintf("bench-%d", round)); err != nil {
						b.Fatal(err)
					}
					round++
					b.StartTimer()
				}
				m, err := c.Fetch(ctx)
				if err != nil {
					b.Fatal(err)
				}
				m.Record.Release()
			}
			elapsed := time.Since(start).Seconds()
			cpuPerSample := float64(cpuTime(b)-cpu) / float64(b.N*benchRows)
			b.StopTimer()
			_ = c.Close()
			b.ReportMetric(float64(b.N*benchRows)/elapsed, "samples/s")
			b.ReportMetric(cpuPerSample, "cpu-ns/sample")
		})
	}
}
