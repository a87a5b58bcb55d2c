package tcp_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/tcp"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// benchChecks returns n tcp checks spread over listeners local listeners
// that accept and close at once (or send a banner first).
func benchChecks(b *testing.B, n, listeners int, bannerText string) []module.Check {
	ports := make([]int, listeners)
	for i := range ports {
		ports[i] = acceptAndClose(b, bannerText)
	}
	checks := make([]module.Check, n)
	for i := range checks {
		set := module.Attrs{tcp.FieldPort: int64(ports[i%listeners])}
		if bannerText != "" {
			set[tcp.FieldExpect] = "^SSH-"
		}
		checks[i] = netchecktest.Check(b, tcp.Spec, "127.0.0.1", 5*time.Second, set)
	}
	return checks
}

// acceptAndClose serves a listener that writes text (if any) to every
// connection and closes it, inline in the accept loop: the cheapest peer,
// so the benchmark measures the check more than the server.
func acceptAndClose(b *testing.B, text string) int {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if text != "" {
				_, _ = io.WriteString(c, text)
			}
			_ = c.Close()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkChecks measures tcp check throughput: 256 sources run
// concurrently against 4 local listeners.
func BenchmarkChecks(b *testing.B) {
	b.Run("connect", func(b *testing.B) {
		netchecktest.Throughput(b, benchChecks(b, 256, 16, ""), 5*time.Second)
	})
	b.Run("banner", func(b *testing.B) {
		netchecktest.Throughput(b, benchChecks(b, 256, 16, "SSH-2.0-bench\r\n"), 5*time.Second)
	})
}
