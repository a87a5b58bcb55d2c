package selfcheck

import (
	"context"
	"testing"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
)

func TestReportsProcessFigures(t *testing.T) {
	chk, err := Spec.NewCheck(module.Env{Source: "self", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var rec sampletest.Recorder
	res := chk.Run(context.Background(), &rec)
	if !res.Available || res.Status == sample.Unknown {
		t.Fatalf("result %+v", res)
	}
	for _, m := range []string{MetricGoroutines, MetricHeap, MetricRSS, MetricGCCycles, MetricOpenFiles, MetricUptime, MetricDataFree} {
		rows := rec.Metric(m)
		if len(rows) != 1 || !rows[0].HasValue {
			t.Errorf("metric %s: %d rows", m, len(rows))
			continue
		}
		if m != MetricGCCycles && m != MetricUptime && rows[0].Value <= 0 {
			t.Errorf("metric %s = %v, want > 0", m, rows[0].Value)
		}
	}
}

func TestMissingDataDirIsUnknown(t *testing.T) {
	chk, err := Spec.NewCheck(module.Env{Source: "self", DataDir: "/nonexistent/recon-data"})
	if err != nil {
		t.Fatal(err)
	}
	var rec sampletest.Recorder
	if res := chk.Run(context.Background(), &rec); res.Status != sample.Unknown {
		t.Fatalf("status %v for a missing data directory, want unknown", res.Status)
	}
}
