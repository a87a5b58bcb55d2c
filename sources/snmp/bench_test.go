package snmp

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/snmp/snmptest"
)

type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(*sample.Row) { c.n.Add(1) }

// BenchmarkPollSteady polls one snmpd on loopback at a steady rate of
// values (RECON_POLL_RATE, default 10,000 OIDs/s): each iteration is one
// run of a check that bulk-walks the agent's interfaces, ip and host
// resources subtrees, started on a fixed schedule so that the runs
// together ask for that rate. It reports the rate reached, the slowest run
// and how many runs overran their slot (a steady poller has none).
//
//	go test -run=^$ -bench=PollSteady -benchtime=600x -benchmem ./sources/snmp
func BenchmarkPollSteady(b *testing.B) {
	rate := 10000.0
	if s := os.Getenv("RECON_POLL_RATE"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			b.Fatalf("RECON_POLL_RATE=%q: want a positive number of OIDs per second", s)
		}
		rate = r
	}
	port := snmptest.Agent(b)
	a := attrs(module.Attrs{
		FieldPort:          int64(port),
		FieldWalk:          map[string]string{"if": "1.3.6.1.2.1.2", "ip": "1.3.6.1.2.1.4", "host": "1.3.6.1.2.1.25"},
		FieldMaxRepetition: int64(50),
	})
	c, err := Spec.NewCheck(module.Env{Source: "bench", Target: "127.0.0.1", Timeout: 5 * time.Second, Attrs: a})
	if err != nil {
		b.Fatal(err)
	}
	defer c.(module.Closer).Close()
	w := &countingWriter{}
	runOnce := func() time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if res := c.Run(ctx, w); res.Status != sample.OK {
			b.Fatalf("run: %+v", res)
		}
		return time.Since(start)
	}
	runOnce() // connect, and learn how many values one run yields
	perRun := w.n.Load()
	if perRun == 0 {
		b.Fatal("the walk yielded no values")
	}
	slot := time.Duration(float64(perRun) / rate * float64(time.Second))
	w.n.Store(0)
	var slowest time.Duration
	late := 0
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * slot)); d > 0 {
			time.Sleep(d)
		} else if i > 0 && -d > slot/10 {
			late++
		}
		slowest = max(slowest, runOnce())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(w.n.Load())/elapsed.Seconds(), "oids/s")
	b.ReportMetric(float64(perRun), "oids/run")
	b.ReportMetric(float64(slowest.Microseconds())/1000, "max-run-ms")
	b.ReportMetric(float64(slot.Microseconds())/1000, "slot-ms")
	b.ReportMetric(float64(late), "late-runs")
}

// BenchmarkPollMax runs the same check back to back: the most OIDs per
// second one poller gets from one snmpd.
func BenchmarkPollMax(b *testing.B) {
	port := snmptest.Agent(b)
	a := attrs(module.Attrs{
		FieldPort:          int64(port),
		FieldWalk:          map[string]string{"if": "1.3.6.1.2.1.2", "ip": "1.3.6.1.2.1.4", "host": "1.3.6.1.2.1.25"},
		FieldMaxRepetition: int64(50),
	})
	c, err := Spec.NewCheck(module.Env{Source: "bench", Target: "127.0.0.1", Timeout: 5 * time.Second, Attrs: a})
	if err != nil {
		b.Fatal(err)
	}
	defer c.(module.Closer).Close()
	w := &countingWriter{}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res := c.Run(ctx, w)
		cancel()
		if res.Status != sample.OK {
			b.Fatalf("run: %+v", res)
		}
	}
	b.ReportMetric(float64(w.n.Load())/time.Since(start).Seconds(), "oids/s")
	b.ReportMetric(float64(w.n.Load())/float64(b.N), "oids/run")
}
