package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconmon/recon/runtime/sample"
)

func TestObserverCounts(t *testing.T) {
	m := New(time.Second)
	m.RunStarted("tcp", 10*time.Millisecond)
	m.RunStarted("tcp", 3*time.Second) // late
	m.RunDone("tcp", sample.Critical, 200*time.Millisecond)
	m.RunSkipped("tcp")
	m.Panicked("http")
	want := `
# HELP recond_runs_late_total Check runs that started more than the lateness threshold after their slot.
# TYPE recond_runs_late_total counter
recond_runs_late_total{module="tcp"} 1
# HELP recond_runs_skipped_total Slots skipped because the previous run of the source was still going.
# TYPE recond_runs_skipped_total counter
recond_runs_skipped_total{module="tcp"} 1
# HELP recond_runs_total Check runs finished, by module and status.
# TYPE recond_runs_total counter
recond_runs_total{module="tcp",status="critical"} 1
# HELP recond_module_panics_total Checks and listeners that panicked (reported as unknown status).
# TYPE recond_module_panics_total counter
recond_module_panics_total{module="http"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"recond_runs_late_total", "recond_runs_skipped_total", "recond_runs_total", "recond_module_panics_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.lateness); n != 1 {
		t.Fatalf("lateness histogram series: %d, want 1", n)
	}
}
