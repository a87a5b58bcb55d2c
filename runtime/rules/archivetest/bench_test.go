package archivetest

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/rules"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// benchRecords: 1000 targets × 2 metrics, one sample each per second, for
// secs seconds, in batches of 10 s.
func benchRecords(secs int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for s0 := 0; s0 < secs; s0 += 10 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
		for s := s0; s < s0+10; s++ {
			ts := t0.Add(time.Duration(s) * time.Second).UnixNano()
			for tg := 0; tg < 1000; tg++ {
				for _, m := range []string{"duration", "code"} {
					b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts))
					b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("bench")
					b.Field(sample.IdxSource).(*array.StringBuilder).Append("web")
					b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
					b.Field(sample.IdxTarget).(*array.StringBuilder).Append(fmt.Sprintf("10.1.%d.%d", tg/256, tg%256))
					b.Field(sample.IdxMetric).(*array.StringBuilder).Append(m)
					b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64((s+tg)%100) / 50)
					b.Field(sample.IdxText).AppendNull()
					b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
					mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
					mb.Append(true)
					mb.KeyBuilder().(*array.StringBuilder).Append("region")
					mb.ItemBuilder().(*array.StringBuilder).Append("eu")
					b.Field(sample.IdxNode).(*array.StringBuilder).Append("n1")
				}
			}
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

// BenchmarkBacktest replays 2,000,000 archived samples (written by the
// archiver) through a rule per target: sliding(1m, 10s), avg and p95. Half
// the samples are of a metric the rule does not read. The archive is
// written with 1 Mi-row files (few, large row groups) and with the
// archiver's default flush_rows (many smaller ones).
func BenchmarkBacktest(b *testing.B) {
	recs := benchRecords(1000)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var total int64
	for _, r := range recs {
		total += r.NumRows()
	}
	col := func(n string) *plan.Expr { return &plan.Expr{Op: "col", Name: n} }
	call := func(n string) *plan.Expr { return &plan.Expr{Op: "call", Name: n, Args: []*plan.Expr{col("value")}} }
	p := &plan.Plan{Pipeline: "bench", Rules: []plan.Rule{{
		Name: "slow", From: []string{"web"},
		Where:   &plan.Expr{Op: "==", Args: []*plan.Expr{col("metric"), {Op: "str", Str: "duration"}}},
		GroupBy: []plan.Expr{*col("target")},
		Window:  plan.Window{Kind: "sliding", Size: plan.Duration(time.Minute), Every: plan.Duration(10 * time.Second)},
		Clauses: []plan.Clause{
			{Severity: "warning", When: &plan.Expr{Op: ">", Args: []*plan.Expr{call("p95"), {Op: "num", Num: 1.9}}}},
			{Severity: "critical", When: &plan.Expr{Op: ">", Args: []*plan.Expr{call("avg"), {Op: "num", Num: 1.5}}}},
		},
	}}}
	for _, flushRows := range []int{1 << 20, parquet.DefaultFlushRows} {
		b.Run(fmt.Sprintf("flush_rows=%d", flushRows), func(b *testing.B) {
			root := archive(b, recs, flushRows)
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for i := 0; i < b.N; i++ {
				res, err := rules.Backtest(context.Background(), rules.BacktestOptions{Plan: p, Archive: root, From: t0, To: t0.Add(time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
				if res.Samples != total {
					b.Fatalf("replayed %d samples, want %d", res.Samples, total)
				}
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			// CPU time of the whole process (decoder, engine and GC) per
			// sample: steadier than the wall clock on a shared machine.
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(total)/float64(b.N), "cpu-ns/sample")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
