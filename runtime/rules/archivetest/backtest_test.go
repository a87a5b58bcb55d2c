package archivetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/rules"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

var t0 = time.Date(2026, 5, 1, 0, 30, 0, 0, time.UTC)

func rulesPlan() *plan.Plan {
	col := func(n string) *plan.Expr { return &plan.Expr{Op: "col", Name: n} }
	str := func(s string) *plan.Expr { return &plan.Expr{Op: "str", Str: s} }
	num := func(v float64) *plan.Expr { return &plan.Expr{Op: "num", Num: v} }
	op := func(o string, a ...*plan.Expr) *plan.Expr { return &plan.Expr{Op: o, Args: a} }
	avg := &plan.Expr{Op: "call", Name: "avg", Args: []*plan.Expr{col("value")}}
	return &plan.Plan{Pipeline: "bt", Rules: []plan.Rule{{
		Name: "slow", From: []string{"web"}, Pos: "bt.recon:1:1",
		Where:   op("and", op("==", col("metric"), str("duration")), op("==", &plan.Expr{Op: "label", Str: "region"}, str("eu"))),
		GroupBy: []plan.Expr{*col("target")},
		Window:  plan.Window{Kind: "tumbling", Size: plan.Duration(time.Minute)},
		Clauses: []plan.Clause{
			{Severity: "warning", When: op(">", avg, num(0.5)), For: plan.Duration(2 * time.Minute)},
			{Severity: "critical", When: op(">", avg, num(2))},
		},
	}}}
}

// batches: two targets (and an other-region decoy), one sample each per 10s
// for two hours from 00:30 (crossing hour partitions); target a is slow from
// 00:50 to 01:10 and very slow from 01:20 to 01:25. One batch per minute.
func batches(t *testing.T) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for m := 0; m < 120; m++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
		for s := 0; s < 60; s += 10 {
			ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
			for _, tgt := range []string{"a", "b", "c"} {
				v := 0.1
				at := ts.Sub(t0)
				if tgt == "a" && at >= 20*time.Minute && at < 40*time.Minute {
					v = 1
				}
				if tgt == "a" && at >= 50*time.Minute && at < 55*time.Minute {
					v = 3
				}
				region := "eu"
				if tgt == "c" {
					region, v = "us", 9
				}
				b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixNano()))
				b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("bt")
				b.Field(sample.IdxSource).(*array.StringBuilder).Append("web")
				b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
				b.Field(sample.IdxTarget).(*array.StringBuilder).Append(tgt)
				for _, metric := range []string{"duration", "code"} {
					if metric == "code" {
						b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixNano()))
						b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("bt")
						b.Field(sample.IdxSource).(*array.StringBuilder).Append("web")
						b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
						b.Field(sample.IdxTarget).(*array.StringBuilder).Append(tgt)
						v = 200
					}
					b.Field(sample.IdxMetric).(*array.StringBuilder).Append(metric)
					b.Field(sample.IdxValue).(*array.Float64Builder).Append(v)
					b.Field(sample.IdxText).AppendNull()
					b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
					mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
					mb.Append(true)
					mb.KeyBuilder().(*array.StringBuilder).Append("region")
					mb.ItemBuilder().(*array.StringBuilder).Append(region)
					b.Field(sample.IdxNode).(*array.StringBuilder).Append("n1")
				}
			}
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	t.Cleanup(func() {
		for _, r := range out {
			r.Release()
		}
	})
	return out
}

func live(t *testing.T, recs []arrow.RecordBatch, to time.Time) []alert.Event {
	e, err := rules.New(rules.Options{Plan: rulesPlan()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var out []alert.Event
	for _, r := range recs {
		if err := e.Ingest(r); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Eval(time.Time{})...)
	}
	return append(out, e.Eval(to)...)
}

// archive writes recs through the journal and the Parquet archiver, as
// recond does, and returns the archive root.
func archive(t testing.TB, recs []arrow.RecordBatch, flushRows int) string {
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	j, err := journal.Open(dir+"/journal", journal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	total := int64(0)
	for _, r := range recs {
		if err := j.Publish(ctx, "web", r); err != nil {
			t.Fatal(err)
		}
		total += r.NumRows()
	}
	c, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := parquet.NewArchiver(parquet.Options{Config: parquet.Config{Dir: dir + "/archive", FlushRows: flushRows, FlushInterval: 50 * time.Millisecond}, Consumer: c, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	deadline := time.After(30 * time.Second)
	for a.Stats().RowsWritten < total {
		select {
		case err := <-done:
			t.Fatalf("archiver stopped: %v", err)
		case <-deadline:
			t.Fatalf("archiver wrote %d of %d rows", a.Stats().RowsWritten, total)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return dir + "/archive"
}

func line(ev alert.Event) string {
	v := "null"
	if !math.IsNaN(ev.Value) {
		v = fmt.Sprintf("%.6g", ev.Value)
	}
	return fmt.Sprintf("%s %s %s<-%s %s %s", ev.Time.Format(time.RFC3339), ev.Rule, ev.Severity, ev.Previous, ev.GroupString(), v)
}

// A backtest over the archive the archiver wrote finds exactly the
// transitions of the live run over the same samples.
func TestBacktestMatchesLiveRun(t *testing.T) {
	recs := batches(t)
	to := t0.Add(2 * time.Hour)
	want := live(t, recs, to)
	if len(want) < 4 {
		t.Fatalf("live run found %d transitions, the scenario needs warning, critical, warning/ok: %v", len(want), want)
	}
	root := archive(t, recs, 2000)
	res, err := rules.Backtest(context.Background(), rules.BacktestOptions{Plan: rulesPlan(), Archive: root, From: t0, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 120*6*3*2 {
		t.Errorf("backtest read %d samples, want %d", res.Samples, 120*6*3*2)
	}
	var g, w []string
	for _, ev := range res.Events {
		g = append(g, line(ev))
	}
	for _, ev := range want {
		w = append(w, line(ev))
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("backtest transitions\n%s\nlive transitions\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	if res.Stats[0].Late != 0 {
		t.Errorf("%d late samples in an in-order archive", res.Stats[0].Late)
	}

	// The CLI entry point prints the same timeline; a narrower range skips
	// the first hour partition's files.
	var out, errb bytes.Buffer
	load := func(string) (*plan.Plan, error) { return rulesPlan(), nil }
	code := rules.BacktestCommand([]string{"rules.recon", "--archive", root, "--from", "2026-05-01T01:00:00Z", "--to", "2026-05-01T02:30:00Z"}, &out, &errb, load)
	if code != 0 {
		t.Fatalf("backtest exit %d: %s", code, errb.String())
	}
	if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "2026-05-01T01:21:00Z slow critical ok {target=a} 3") {
		t.Errorf("table lacks the critical transition at 01:21:\n%s", out.String())
	}
	if strings.Contains(out.String(), "T00:") {
		t.Errorf("table shows transitions before --from:\n%s", out.String())
	}
}
