package nagios

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

// discardWriter counts rows and drops them.
type discardWriter struct{ n int }

func (d *discardWriter) Write(*sample.Row) { d.n++ }

func cpuTime() (self, children time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return self, children
}

// benchRuns runs b.N plugin runs spread over workers concurrent checks
// (each check runs one plugin at a time, as the scheduler does) and
// reports runs per second and CPU per run: recond's own and the plugins'.
func benchRuns(b *testing.B, workers int, attrs module.Attrs) {
	a := module.Attrs{}
	for _, f := range Spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	for k, v := range attrs {
		a[k] = v
	}
	checks := make([]module.Check, workers)
	for i := range checks {
		c, err := NewCheck(module.Env{Pipeline: "bench", Source: "s" + strconv.Itoa(i), Target: "127.0.0.1", Timeout: 10 * time.Second, Attrs: a})
		if err != nil {
			b.Fatal(err)
		}
		checks[i] = c
	}
	jobs := make(chan struct{}, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	b.ReportAllocs()
	b.ResetTimer()
	selfStart, childStart := cpuTime()
	start := time.Now()
	for _, c := range checks {
		wg.Add(1)
		go func(c module.Check) {
			defer wg.Done()
			w := &discardWriter{}
			for range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res := c.Run(ctx, w)
				cancel()
				if res.Status != sample.OK {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		}(c)
	}
	for range b.N {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	selfEnd, childEnd := cpuTime()
	b.StopTimer()
	if bad > 0 {
		b.Fatalf("%d of %d runs not ok", bad, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "runs/s")
	b.ReportMetric(float64((selfEnd-selfStart).Microseconds())/float64(b.N), "recond-cpu-µs/run")
	b.ReportMetric(float64((childEnd-childStart).Microseconds())/float64(b.N), "plugin-cpu-µs/run")
}

func BenchmarkCheckDummy(b *testing.B) {
	needPlugin(b, "check_dummy")
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchRuns(b, workers, module.Attrs{FieldCommand: []string{"check_dummy", "0", "bench | a=1ms;1;2;0;10"}})
		})
	}
}

// BenchmarkCheckTCP runs check_tcp against a local listener: the
// benchmark's own, or the port in RECON_BENCH_TCP_PORT (the side-by-side
// script points Nagios and Recon at the same listener).
func BenchmarkCheckTCP(b *testing.B) {
	needPlugin(b, "check_tcp")
	port := os.Getenv("RECON_BENCH_TCP_PORT")
	if port == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchRuns(b, workers, module.Attrs{FieldCommand: []string{"check_tcp", "-H", "$HOSTADDRESS$", "-p", port}})
		})
	}
}
