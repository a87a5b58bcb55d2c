package http_test

import (
	"context"
	"io"
	"net"
	nethttp "net/http"
	"strconv"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	httpsource "github.com/reconmon/recon/sources/http"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// benchServer starts a minimal HTTP server (200, "ok") and returns its port.
func benchServer(b *testing.B) int {
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &nethttp.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
			_, _ = io.WriteString(w, "ok")
		})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	b.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkChecks measures http check throughput: 256 sources run
// concurrently against 4 local servers, with a fresh connection per run
// (the default) and with keep_alive.
func BenchmarkChecks(b *testing.B) {
	for _, keepAlive := range []bool{false, true} {
		name := "fresh-connection"
		if keepAlive {
			name = "keep-alive"
		}
		b.Run(name, func(b *testing.B) {
			ports := make([]int, 4)
			for i := range ports {
				ports[i] = benchServer(b)
			}
			checks := make([]module.Check, 256)
			for i := range checks {
				checks[i] = netchecktest.Check(b, httpsource.Spec, "127.0.0.1", 5*time.Second, module.Attrs{
					"url":        "http://127.0.0.1:" + strconv.Itoa(ports[i%len(ports)]) + "/health",
					"body_match": "ok", "keep_alive": keepAlive,
				})
			}
			netchecktest.Throughput(b, checks, 5*time.Second)
		})
	}
}

// BenchmarkTimeoutOverrun: how long a check of a server that accepts and
// never answers lasts past the check's 1 s timeout.
//
//	go test -run '^$' -bench TimeoutOverrun -benchtime 5x ./sources/http/
func BenchmarkTimeoutOverrun(b *testing.B) {
	port := netchecktest.Serve(b, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	chk := netchecktest.Check(b, httpsource.Spec, "127.0.0.1", time.Second, module.Attrs{
		"url": "http://127.0.0.1:" + strconv.Itoa(port) + "/"})
	netchecktest.TimeoutOverrun(b, chk, time.Second, "timeout after 1s")
}
