package tcp_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

const timeout = time.Second

func banner(text string) func(net.Conn) {
	return func(c net.Conn) {
		_, _ = io.WriteString(c, text)
		_, _ = io.Copy(io.Discard, c)
	}
}

// silent accepts and never writes.
func silent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

func run(t *testing.T, port int, set module.Attrs) (sample.Result, []sample.Row, map[string]float64) {
	t.Helper()
	if set == nil {
		set = module.Attrs{}
	}
	set[tcp.FieldPort] = int64(port)
	chk := netchecktest.Check(t, tcp.Spec, "127.0.0.1", timeout, set)
	res, rec := netchecktest.Run(chk, timeout)
	vals := map[string]float64{}
	for _, r := range rec.Rows() {
		vals[r.Metric] = r.Value
	}
	return res, rec.Rows(), vals
}

func TestBannerMatch(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, banner("SSH-2.0-OpenSSH_9.2\r\n"))
	res, _, vals := run(t, port, module.Attrs{tcp.FieldExpect: `^SSH-2\.0-`})
	if res.Status != sample.OK || !res.Available {
		t.Fatalf("result %+v, want ok and available", res)
	}
	for _, m := range []string{tcp.MetricConnect, tcp.MetricFirstByte} {
		if v, ok := vals[m]; !ok || v <= 0 || v >= timeout.Seconds() {
			t.Errorf("%s = %v (present %v), want within (0, timeout)", m, v, ok)
		}
	}
	if vals[tcp.MetricBytes] != float64(len("SSH-2.0-OpenSSH_9.2\r\n")) {
		t.Errorf("bytes = %v", vals[tcp.MetricBytes])
	}
}

func TestConnectOnly(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, silent)
	res, rows, _ := run(t, port, nil)
	if res.Status != sample.OK || !res.Available {
		t.Fatalf("result %+v, want ok", res)
	}
	if len(rows) != 1 || rows[0].Metric != tcp.MetricConnect {
		t.Fatalf("rows %+v, want only connect", rows)
	}
}

func TestRefused(t *testing.T) {
	res, rows, _ := run(t, netchecktest.ClosedPort(t), nil)
	if res.Status != sample.Critical || res.Available || res.Message != "connection refused" {
		t.Fatalf("result %+v, want critical, unavailable, connection refused", res)
	}
	if len(rows) != 0 {
		t.Fatalf("rows %+v, want none", rows)
	}
}

func TestMismatch(t *testing.T) {
	port := netchecktest.Serve(t, banner("220 mail ESMTP\r\n"))
	res, _, _ := run(t, port, module.Attrs{tcp.FieldExpect: `^SSH-`})
	if res.Status != sample.Warning || !res.Available || !strings.Contains(res.Message, `did not match "^SSH-"`) {
		t.Fatalf("result %+v, want warning: did not match", res)
	}
	res, _, _ = run(t, port, module.Attrs{tcp.FieldExpect: `^SSH-`, tcp.FieldMismatch: "critical"})
	if res.Status != sample.Critical {
		t.Fatalf("mismatch=critical: result %+v", res)
	}
}

func TestSendExpect(t *testing.T) {
	port := netchecktest.Serve(t, func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "+PONG "+strings.TrimSpace(line)+"\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	res, _, _ := run(t, port, module.Attrs{tcp.FieldSend: "PING abc\r\n", tcp.FieldExpect: `^\+PONG PING abc\r\n`})
	if res.Status != sample.OK {
		t.Fatalf("result %+v, want ok", res)
	}
}

// A server that never sends the expected banner: critical timeout, within
// the timeout, and nothing left running.
func TestSilentServerTimesOut(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, silent)
	start := time.Now()
	res, _, vals := run(t, port, module.Attrs{tcp.FieldExpect: "^220"})
	if res.Status != sample.Critical || res.Message != "no answer: timeout after 1s" || !res.Available {
		t.Fatalf("result %+v, want critical no answer: timeout after 1s", res)
	}
	if vals[tcp.MetricBytes] != 0 {
		t.Errorf("bytes = %v", vals[tcp.MetricBytes])
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Fatalf("run took %v with a %v timeout", d, timeout)
	}
}

// A server that closes without a word.
func TestClosedWithoutAnswer(t *testing.T) {
	port := netchecktest.Serve(t, func(c net.Conn) { _ = c.Close() })
	res, _, _ := run(t, port, module.Attrs{tcp.FieldExpect: "^220"})
	if res.Status != sample.Critical || res.Message != "no answer: connection closed by the server" || !res.Available {
		t.Fatalf("result %+v", res)
	}
}

// A server that streams endlessly: the read stops at max_read.
func TestEndlessAnswerIsBounded(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, func(c net.Conn) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	res, _, vals := run(t, port, module.Attrs{tcp.FieldExpect: "^220", tcp.FieldMaxRead: int64(8192)})
	if res.Status != sample.Warning || vals[tcp.MetricBytes] != 8192 {
		t.Fatalf("result %+v bytes %v, want warning after 8192 bytes", res, vals[tcp.MetricBytes])
	}
}

func tlsServe(t *testing.T, cert netchecktest.Cert, text string) int {
	return netchecktest.Serve(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
		if err := tc.Handshake(); err != nil {
			return
		}
		_, _ = io.WriteString(tc, text)
		_, _ = io.Copy(io.Discard, tc)
	})
}

func TestTLSCertExpiry(t *testing.T) {
	netchecktest.NoLeak(t)
	cert := netchecktest.NewCert(t, time.Now().Add(10*24*time.Hour))
	port := tlsServe(t, cert, "220 ready\r\n")
	set := func(extra module.Attrs) module.Attrs {
		a := module.Attrs{tcp.FieldTLS: true, "ca_file": cert.CAFile, tcp.FieldExpect: "^220 "}
		for k, v := range extra {
			a[k] = v
		}
		return a
	}
	res, _, vals := run(t, port, set(nil))
	if res.Status != sample.OK {
		t.Fatalf("result %+v, want ok", res)
	}
	if d := vals[tcp.MetricCertExpiryDays]; d < 9.9 || d > 10 {
		t.Errorf("cert_expiry_days = %v, want ≈ 10", d)
	}
	if _, ok := vals[tcp.MetricTLSHandshake]; !ok {
		t.Error("no tls_handshake row")
	}
	res, _, _ = run(t, port, set(module.Attrs{"cert_warning_days": int64(30)}))
	if res.Status != sample.Warning || res.Message != "certificate expires in 9 days" {
		t.Fatalf("warning 30 days: result %+v", res)
	}
	res, _, _ = run(t, port, set(module.Attrs{"cert_warning_days": int64(30), "cert_critical_days": int64(14)}))
	if res.Status != sample.Critical || res.Message != "certificate expires in 9 days" {
		t.Fatalf("critical 14 days: result %+v", res)
	}
}

// Without the CA the handshake fails, yet the expiry is still measured.
func TestTLSUnknownAuthority(t *testing.T) {
	cert := netchecktest.NewCert(t, time.Now().Add(40*24*time.Hour))
	port := tlsServe(t, cert, "220 ready\r\n")
	res, _, vals := run(t, port, module.Attrs{tcp.FieldTLS: true})
	if res.Status != sample.Critical || res.Message != "certificate signed by unknown authority" {
		t.Fatalf("result %+v, want critical unknown authority", res)
	}
	if d := vals[tcp.MetricCertExpiryDays]; d < 39 || d > 40 {
		t.Errorf("cert_expiry_days = %v, want ≈ 40", d)
	}
	res, _, _ = run(t, port, module.Attrs{tcp.FieldTLS: true, "insecure_skip_verify": true})
	if res.Status != sample.OK {
		t.Fatalf("insecure_skip_verify: result %+v, want ok", res)
	}
}

func TestTLSExpired(t *testing.T) {
	cert := netchecktest.NewCert(t, time.Now().Add(-49*time.Hour))
	port := tlsServe(t, cert, "")
	res, _, vals := run(t, port, module.Attrs{tcp.FieldTLS: true, "ca_file": cert.CAFile})
	if res.Status != sample.Critical || res.Message != "certificate expired or not yet valid" {
		t.Fatalf("result %+v", res)
	}
	if d := vals[tcp.MetricCertExpiryDays]; d > -2 || d < -2.1 {
		t.Errorf("cert_expiry_days = %v, want ≈ -2", d)
	}
}

// A TLS server that accepts and never answers the ClientHello.
func TestTLSHandshakeStalls(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, silent)
	res, _, _ := run(t, port, module.Attrs{tcp.FieldTLS: true})
	if res.Status != sample.Critical || res.Message != "timeout after 1s" || !res.Available {
		t.Fatalf("result %+v, want critical timeout after 1s", res)
	}
}

// A plain-text server behind a tls check.
func TestTLSAgainstPlainServer(t *testing.T) {
	port := netchecktest.Serve(t, banner("SSH-2.0-x\r\n"))
	res, _, _ := run(t, port, module.Attrs{tcp.FieldTLS: true})
	if res.Status != sample.Critical || !strings.Contains(res.Message, "TLS") {
		t.Fatalf("result %+v, want critical TLS failure", res)
	}
}

func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "hello\n")
			_ = c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	chk := netchecktest.Check(t, tcp.Spec, "::1", timeout, module.Attrs{
		tcp.FieldPort: int64(port), tcp.FieldExpect: "^hello", "ip_version": "ipv6"})
	res, _ := netchecktest.Run(chk, timeout)
	if res.Status != sample.OK {
		t.Fatalf("result %+v", res)
	}
}
