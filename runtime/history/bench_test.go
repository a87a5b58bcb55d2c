package history_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/history/historytest"
)

// benchArchive returns the benchmark archive (see historytest.BenchArchive):
// in $RECON_BENCH_ARCHIVE when set, built there once and reused (also by
// the DuckDB benchmark in interop/duckdb), else built in a temporary
// directory.
func benchArchive(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("RECON_BENCH_ARCHIVE")
	if dir == "" {
		dir = b.TempDir()
	}
	t0 := time.Now()
	built, err := historytest.BenchArchive(dir)
	if err != nil {
		b.Fatal(err)
	}
	if built {
		b.Logf("built the benchmark archive in %s in %s", dir, time.Since(t0).Round(time.Second))
	}
	return dir
}

// cpuTime is the CPU time (user and system) the process used so far: on
// the shared 2-core machine, wall time depends on the others' load, CPU
// time much less.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkYearSeries draws the year series of the benchmark archive at
// 2,000 buckets (issue 10's target: under 200 ms), and two zooms: the
// densest day (raw) and six hours of raw points. "cold" opens a new
// Archive for every query (no index or point cache; the OS page cache is
// warm), "warm" reuses one, as recond does.
func BenchmarkYearSeries(b *testing.B) {
	dir := benchArchive(b)
	shared, err := history.New(history.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	lastDay := historytest.YearEnd.Add(-24 * time.Hour)
	for _, c := range []struct {
		name     string
		from, to time.Time
		raw      bool
		count    int64
	}{
		{"year-2000-buckets", historytest.YearStart, historytest.YearEnd, false, 525600},
		{"last-day-raw", lastDay, historytest.YearEnd, true, 1440},
		{"6h-raw", lastDay.Add(-6 * time.Hour), lastDay, true, 360},
	} {
		q := history.Query{Source: historytest.YearSource, Metric: historytest.BenchMetric, Target: historytest.BenchTarget,
			From: c.from, To: c.to, Points: 2000}
		for _, warm := range []bool{false, true} {
			name := c.name + "/cold"
			if warm {
				name = c.name + "/warm"
			}
			b.Run(name, func(b *testing.B) {
				if warm {
					if _, err := shared.Series(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
				var res *history.Result
				cpu0 := cpuTime(b)
				for b.Loop() {
					a := shared
					if !warm {
						if a, err = history.New(history.Options{Dir: dir}); err != nil {
							b.Fatal(err)
						}
					}
					if res, err = a.Series(context.Background(), q); err != nil {
						b.Fatal(err)
					}
				}
				if len(res.Series) != 1 || res.Series[0].Raw != c.raw || res.Series[0].Count != c.count {
					b.Fatalf("got %d series (%+v), want one with %d points", len(res.Series), res.Scan, c.count)
				}
				b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
				b.ReportMetric(float64(res.Scan.Files), "files/op")
				b.ReportMetric(float64(res.Scan.RowsDecoded), "rows-decoded/op")
			})
		}
	}
}
