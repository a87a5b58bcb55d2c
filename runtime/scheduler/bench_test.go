package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp"
)

type discardBus struct{}

func (discardBus) Publish(context.Context, string, arrow.RecordBatch) error { return nil }

// latenessRecorder keeps every start lateness.
type latenessRecorder struct {
	nopObserver
	mu   sync.Mutex
	late []time.Duration
	runs int
}

func (r *latenessRecorder) RunStarted(_ string, late time.Duration) {
	r.mu.Lock()
	r.late = append(r.late, late)
	r.mu.Unlock()
}

func (r *latenessRecorder) RunDone(string, sample.Status, time.Duration) {
	r.mu.Lock()
	r.runs++
	r.mu.Unlock()
}

// BenchmarkTCPChecks schedules 10,000 tcp checks with a 6 s period
// (100,000 checks per minute) against a local listener for 12 s and reports
// the p50/p99 start lateness. b.N is ignored: run it with -benchtime=1x.
func BenchmarkTCPChecks(b *testing.B) {
	const sources, period, span = 10_000, 6 * time.Second, 12 * time.Second
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
	port := ln.Addr().(*net.TCPAddr).Port
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bt := batch.New(discardBus{}, batch.Options{Logger: quiet})
	bt.Start()
	defer bt.Close(context.Background())
	rec := &latenessRecorder{}
	s := New(Options{Observer: rec, Logger: quiet, Concurrency: 512})
	attrs := module.Attrs{tcp.FieldPort: int64(port), tcp.FieldTLS: false, tcp.FieldMaxRead: int64(4096), tcp.FieldMismatch: "warning"}
	for i := range sources {
		name := fmt.Sprintf("tcp%d", i)
		env := module.Env{Pipeline: "bench", Source: name, Target: "127.0.0.1", Period: period, Timeout: 2 * time.Second, Attrs: attrs, Logger: quiet}
		chk, err := tcp.NewCheck(env)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Add(Source{Name: name, Module: "tcp", Period: period, Timeout: env.Timeout, Check: chk,
			Writer: bt.Writer(batch.Identity{Pipeline: "bench", Source: name, Module: "tcp", Target: "127.0.0.1"})}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), span)
	defer cancel()
	b.ResetTimer()
	if err := s.Run(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.late)
	if len(rec.late) == 0 {
		b.Fatal("no run started")
	}
	q := func(p float64) float64 { return rec.late[int(p*float64(len(rec.late)-1))].Seconds() * 1000 }
	b.ReportMetric(float64(rec.runs)/span.Minutes(), "checks/min")
	b.ReportMetric(q(0.5), "p50_late_ms")
	b.ReportMetric(q(0.99), "p99_late_ms")
	b.ReportMetric(q(1), "max_late_ms")
}
