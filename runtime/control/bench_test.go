package control_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/reconmon/recon/plan"
)

// BenchmarkDeployRules: one deploy that changes a rule (and keeps another
// unchanged) while a generator runs at 500 samples/s: the answer's latency,
// which covers stopping the rule engine (state saved, position committed)
// and starting it on the new plan (state restored).
func BenchmarkDeployRules(b *testing.B) {
	dir := b.TempDir()
	src := func(threshold int) string {
		return fmt.Sprintf(`pipeline "bench"

source gen generator {
  target  = "g"
  period  = 1s
  timeout = 900ms
  rate    = 500
  pattern = "seq"
}
sink archive parquet { flush_interval = 1s }
sink console stdout { format = "json" }

rule kept {
  from   = gen where metric == "seq"
  window = tumbling(1s)
  warning when max(value) < 0 for 30s
  notify = [console]
}

rule changed {
  from   = gen where metric == "seq"
  window = tumbling(1s)
  warning when max(value) < %d
  notify = [console]
}
`, -threshold)
	}
	plans := [2]*plan.Plan{compilePlan(b, dir, src(1)), compilePlan(b, dir, src(2))}
	c, _ := runCompiled(b, dir, plans[0], io.Discard)
	time.Sleep(1500 * time.Millisecond)
	b.ResetTimer()
	for i := range b.N {
		res := deploy(b, c, plans[(i+1)%2])
		if res.Change.Rules.String() != "~changed (1 unchanged)" {
			b.Fatalf("rules change %q", res.Change.Rules.String())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/deploy")
}
