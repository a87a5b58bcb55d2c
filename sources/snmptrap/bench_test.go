package snmptrap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/snmp/snmptest"
)

type countingWriter struct{ n atomic.Uint64 }

func (c *countingWriter) Write(*sample.Row) { c.n.Add(1) }

// BenchmarkTrapFlood sends b.N v2c traps (4 varbinds, sequence numbers) over
// loopback as fast as one sender can and reports the rate and the loss.
func BenchmarkTrapFlood(b *testing.B) {
	port := freePort(b)
	a := module.Attrs{}
	for _, f := range Spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	a[FieldListen] = fmt.Sprintf("127.0.0.1:%d", port)
	ml, err := Spec.NewListener(module.Env{Source: "flood", Attrs: a, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	w := &countingWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ml.Listen(ctx, w) }()
	defer func() { cancel(); <-done }()
	conn, err := net.Dial("udp", a.String(FieldListen))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = encodedTrap(b, "public", i)
	}
	snmptest.WaitUDPBound(b, a.String(FieldListen))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.n.Load() < uint64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got := w.n.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "traps/s")
	b.ReportMetric(float64(uint64(b.N)-got), "lost")
}

func freePort(tb testing.TB) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
