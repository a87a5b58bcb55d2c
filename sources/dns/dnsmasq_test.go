package dns_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// dnsmasq starts a real dnsmasq on 127.0.0.1 and ::1 at a free port, with
// the records args define, and returns the port. It stops at the test's end.
func dnsmasq(t *testing.T, args ...string) int {
	t.Helper()
	bin := netchecktest.Need(t, "dnsmasq")
	var lastErr string
	for range 5 {
		port := freePort(t)
		all := append([]string{
			"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
			"--bind-interfaces", "--listen-address=127.0.0.1,::1", "--port=" + strconv.Itoa(port),
			"--log-facility=-",
		}, args...)
		var stderr bytes.Buffer
		cmd := exec.Command(bin, all...)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("dnsmasq: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if ready(port, exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return port
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = stderr.String()
	}
	t.Fatalf("dnsmasq did not start: %s", lastErr)
	return 0
}

// ready waits until dnsmasq answers on port over UDP and TCP.
func ready(port int, exited <-chan struct{}) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	q := new(mdns.Msg)
	q.SetQuestion("ready.invalid.", mdns.TypeA)
	for range 100 {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, _, errU := (&mdns.Client{Net: "udp"}).ExchangeContext(ctx, q, addr)
		_, _, errT := (&mdns.Client{Net: "tcp"}).ExchangeContext(ctx, q, addr)
		cancel()
		if errU == nil && errT == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// freePort returns a port free for UDP and TCP on 127.0.0.1 at the time of
// the call.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		_ = pc.Close()
		if err == nil {
			_ = ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
