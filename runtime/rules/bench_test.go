package rules

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/sample"
)

func col(name string) *plan.Expr { return &plan.Expr{Op: "col", Name: name} }
func num(v float64) *plan.Expr   { return &plan.Expr{Op: "num", Num: v} }
func str(s string) *plan.Expr    { return &plan.Expr{Op: "str", Str: s} }
func call(name string, args ...*plan.Expr) *plan.Expr {
	return &plan.Expr{Op: "call", Name: name, Args: args}
}
func op(o string, args ...*plan.Expr) *plan.Expr { return &plan.Expr{Op: o, Args: args} }

// benchPlan: nRules rules, rule i reads source src<i> (metric duration),
// groups by target, sliding(5m, 30s), warning on p95, critical on avg.
func benchPlan(nRules int) *plan.Plan {
	p := &plan.Plan{Pipeline: "bench"}
	for i := 0; i < nRules; i++ {
		p.Rules = append(p.Rules, plan.Rule{
			Name: fmt.Sprintf("r%d", i), From: []string{fmt.Sprintf("src%d", i)},
			Where:   op("==", col("metric"), str("duration")),
			GroupBy: []plan.Expr{*col("target")},
			Window:  plan.Window{Kind: "sliding", Size: plan.Duration(5 * time.Minute), Every: plan.Duration(30 * time.Second)},
			Clauses: []plan.Clause{
				{Severity: "warning", When: op(">", call("p95", col("value")), num(0.5)), For: plan.Duration(time.Minute)},
				{Severity: "critical", When: op(">", call("avg", col("value")), num(2))},
			},
		})
	}
	return p
}

// benchBatch is one second of event time: every (source, target) once.
func benchBatch(nSources, nTargets int, sec int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for s := 0; s < nSources; s++ {
		src := fmt.Sprintf("src%d", s)
		for t := 0; t < nTargets; t++ {
			b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(sec*1e9 + int64(t)))
			b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("bench")
			b.Field(sample.IdxSource).(*array.StringBuilder).Append(src)
			b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
			b.Field(sample.IdxTarget).(*array.StringBuilder).Append(fmt.Sprintf("10.0.%d.%d", t/256, t%256))
			b.Field(sample.IdxMetric).(*array.StringBuilder).Append("duration")
			b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64((sec*7+int64(t))%100) / 100)
			b.Field(sample.IdxText).AppendNull()
			b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
			b.Field(sample.IdxLabels).(*array.MapBuilder).Append(true)
			b.Field(sample.IdxNode).(*array.StringBuilder).Append("n1")
		}
	}
	return b.NewRecordBatch()
}

// BenchmarkEngine pushes samples through 100 rules over 10,000 groups
// (100 sources × 100 targets, one sample per group per second of event
// time): sliding(5m, 30s) windows with p95 and avg, evaluated every 30s.
func BenchmarkEngine(b *testing.B) {
	const nRules, nTargets = 100, 100
	// A minute of batches, reused with their times shifted.
	const cycle = 60
	batches := make([]arrow.RecordBatch, cycle)
	for i := range batches {
		batches[i] = benchBatch(nRules, nTargets, int64(i))
		defer batches[i].Release()
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e, err := New(Options{Plan: benchPlan(nRules), Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	shift := func(rec arrow.RecordBatch, d int64) {
		ts := rec.Column(sample.IdxTs).(*array.Timestamp).TimestampValues()
		for i := range ts {
			ts[i] += arrow.Timestamp(d)
		}
	}
	// Warm up: fill the 5-minute windows.
	for i := 0; i < 6*cycle; i++ {
		rec := batches[i%cycle]
		if err := e.Ingest(rec); err != nil {
			b.Fatal(err)
		}
		e.Eval(time.Time{})
		if i%cycle == cycle-1 {
			for _, r := range batches {
				shift(r, cycle*1e9)
			}
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	groups := 0
	for _, st := range e.Stats() {
		groups += st.Groups
	}
	heapPerGroup := float64(ms.HeapAlloc-before.HeapAlloc) / float64(groups)
	rows := int(batches[0].NumRows())
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rec := batches[i%cycle]
		if err := e.Ingest(rec); err != nil {
			b.Fatal(err)
		}
		e.Eval(time.Time{})
		if i%cycle == cycle-1 {
			b.StopTimer()
			for _, r := range batches {
				shift(r, cycle*1e9)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)*float64(rows)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(heapPerGroup, "heap-B/group")
}
