// Package selfcheck is the selfcheck source module: recond's own figures
// (goroutines, memory, GC, open files, free space under the data
// directory) as samples, so that the archive holds the collector's health
// next to what it collected.
package selfcheck

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

// Metric names.
const (
	MetricGoroutines = "goroutines"
	MetricHeap       = "heap_bytes"
	MetricRSS        = "rss_bytes"
	MetricGCCycles   = "gc_cycles"
	MetricOpenFiles  = "open_files"
	MetricUptime     = "uptime"
	MetricDataFree   = "data_free_bytes"
)

// Spec declares the selfcheck source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "selfcheck",
	Summary: "recond's own figures as samples.",
	Description: `Samples the recond process itself every period: goroutines, Go heap, resident
memory, GC cycles, open file descriptors, uptime and the free space of the file system
holding the data directory. The target is the node name. Status is warning when the data
directory's file system has less than 10% free, critical under 2%.`,
	Fields: []module.Field{
		module.String("target", "The target column of the samples.").Def("recond"),
	},
	Metrics: []module.Metric{
		{Name: MetricGoroutines, Summary: "Goroutines."},
		{Name: MetricHeap, Unit: "B", Summary: "Go heap objects in use."},
		{Name: MetricRSS, Unit: "B", Summary: "Resident set size (Linux)."},
		{Name: MetricGCCycles, Unit: "c", Summary: "Completed GC cycles since start."},
		{Name: MetricOpenFiles, Summary: "Open file descriptors (Linux)."},
		{Name: MetricUptime, Unit: "s", Summary: "Seconds since the process started."},
		{Name: MetricDataFree, Unit: "B", Summary: "Free bytes on the data directory's file system."},
	},
	Example: `pipeline "self"

source recond selfcheck {
  period = 10s
}
`,
	NewCheck: func(env module.Env) (module.Check, error) {
		return &check{env: env, started: time.Now(), samples: []metrics.Sample{
			{Name: "/sched/goroutines:goroutines"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/gc/cycles/total:gc-cycles"},
		}}, nil
	},
}

type check struct {
	env     module.Env
	started time.Time
	samples []metrics.Sample
}

func (c *check) Run(_ context.Context, w sample.Writer) sample.Result {
	metrics.Read(c.samples)
	sample.WriteValue(w, MetricGoroutines, float64(c.samples[0].Value.Uint64()), "")
	sample.WriteValue(w, MetricHeap, float64(c.samples[1].Value.Uint64()), "B")
	sample.WriteValue(w, MetricGCCycles, float64(c.samples[2].Value.Uint64()), "c")
	sample.WriteValue(w, MetricUptime, time.Since(c.started).Seconds(), "s")
	if rss, err := readRSS(); err == nil {
		sample.WriteValue(w, MetricRSS, float64(rss), "B")
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		sample.WriteValue(w, MetricOpenFiles, float64(len(fds)), "")
	}
	res := sample.Result{Status: sample.OK, Available: true}
	dir := c.env.DataDir
	if dir == "" {
		dir = "."
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return sample.Result{Status: sample.Unknown, Available: true, Message: fmt.Sprintf("data directory %s: %v", dir, err)}
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	sample.WriteValue(w, MetricDataFree, free, "B")
	if total := float64(st.Blocks) * float64(st.Bsize); total > 0 {
		pct := 100 * free / total
		switch {
		case pct < 2:
			res.Status = sample.Critical
		case pct < 10:
			res.Status = sample.Warning
		}
		res.Message = fmt.Sprintf("%.1f%% free under %s", pct, dir)
	}
	return res
}

// readRSS returns the resident set size from /proc/self/statm.
func readRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/self/statm: unexpected %q", data)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}
