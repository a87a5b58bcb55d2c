package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the process's user+system CPU time so far: on a shared
// machine it is steadier than wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDurableSamples measures samples per second from writers through
// the batcher into the fsynced journal and out to durable Parquet files:
// one op is one sample, done when the archiver has written it.
func BenchmarkDurableSamples(b *testing.B) {
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	c, err := j.Consumer(ArchiverConsumer)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cfg := parquet.DefaultConfig(filepath.Join(dir, "archive"))
	cfg.FlushInterval = time.Second
	cfg.Compact = false
	a, err := parquet.NewArchiver(archiverOptions(cfg, parquet.SamplesTable, c, quiet)) // as recond runs it
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	adone := make(chan error, 1)
	go func() { adone <- a.Run(ctx) }()
	bt := batch.New(j, batch.Options{Logger: quiet})
	bt.Start()

	const writers = 4
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			w := bt.Writer(batch.Identity{Pipeline: "bench", Source: fmt.Sprintf("gen%d", i), Module: "generator", Target: "127.0.0.1", Node: "n1"})
			series := make([]string, 100)
			for k := range series {
				series[k] = "series-" + strconv.Itoa(k)
			}
			r := sample.Row{Metric: "seq", HasValue: true, Ts: start.UnixNano()}
			for n := i; n < b.N; n += writers {
				r.Ts += 1000
				r.Target = series[n%len(series)]
				r.Value = float64(n)
				w.Write(&r)
			}
		})
	}
	wg.Wait()
	if err := bt.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	for a.Stats().RowsWritten+a.Stats().PendingRows < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-adone; err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	if got := a.Stats().RowsWritten; got != int64(b.N) {
		b.Fatalf("archived %d of %d samples", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/sample")
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peakRSS_MiB")
}
