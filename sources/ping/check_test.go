package ping_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/ping"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

const timeout = time.Second

func run(t *testing.T, target string, set module.Attrs) outcome {
	t.Helper()
	chk := netchecktest.Check(t, ping.Spec, target, timeout, set)
	res, rec := netchecktest.Run(chk, timeout)
	o := outcome{Result: res, Values: map[string]float64{}}
	for _, r := range rec.Rows() {
		o.Values[r.Metric] = r.Value
	}
	return o
}

func fast(extra module.Attrs) module.Attrs {
	a := module.Attrs{ping.FieldCount: int64(3), ping.FieldInterval: 20 * time.Millisecond}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func assertAnswered(t *testing.T, o outcome) {
	t.Helper()
	if o.Result.Status != sample.OK || !o.Result.Available {
		t.Fatalf("result %+v, want ok and available", o.Result)
	}
	if o.Values[ping.MetricLoss] != 0 {
		t.Errorf("loss = %v", o.Values[ping.MetricLoss])
	}
	lo, avg, hi := o.Values[ping.MetricRTTMin], o.Values[ping.MetricRTTAvg], o.Values[ping.MetricRTTMax]
	if lo <= 0 || lo > avg || avg > hi || hi >= timeout.Seconds() {
		t.Errorf("rtt min %v avg %v max %v", lo, avg, hi)
	}
}

func TestLoopback(t *testing.T) {
	netchecktest.NoLeak(t)
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			assertAnswered(t, run(t, target, fast(nil)))
		})
	}
}

func TestNameTarget(t *testing.T) {
	assertAnswered(t, run(t, "localhost", fast(module.Attrs{"ip_version": "ipv4"})))
}

func TestWrongFamily(t *testing.T) {
	o := run(t, "::1", fast(module.Attrs{"ip_version": "ipv4"}))
	if o.Result.Status != sample.Critical || o.Result.Message != "::1 is not an ip4 address" {
		t.Fatalf("result %+v", o.Result)
	}
}

func TestRTTThresholds(t *testing.T) {
	o := run(t, "127.0.0.1", fast(module.Attrs{ping.FieldRTTWarning: time.Nanosecond, ping.FieldRTTCritical: time.Hour}))
	if o.Result.Status != sample.Warning || !strings.HasPrefix(o.Result.Message, "rtt avg ") || !o.Result.Available {
		t.Fatalf("warning: result %+v", o.Result)
	}
	o = run(t, "127.0.0.1", fast(module.Attrs{ping.FieldRTTCritical: time.Nanosecond}))
	if o.Result.Status != sample.Critical {
		t.Fatalf("critical: result %+v", o.Result)
	}
}

// Concurrent checks of the same target on raw sockets see each other's
// replies; each must count only its own.
func TestConcurrentChecksKeepTheirReplies(t *testing.T) {
	const n = 8
	done := make(chan outcome, n)
	for range n {
		chk := netchecktest.Check(t, ping.Spec, "127.0.0.1", timeout, fast(module.Attrs{ping.FieldCount: int64(5)}))
		go func() {
			res, rec := netchecktest.Run(chk, timeout)
			o := outcome{Result: res, Values: map[string]float64{}}
			for _, r := range rec.Rows() {
				o.Values[r.Metric] = r.Value
			}
			done <- o
		}()
	}
	for range n {
		assertAnswered(t, <-done)
	}
}

// Loss against an address that does not answer, in a network namespace of
// its own (nothing leaves the machine).
func TestNoAnswer(t *testing.T) {
	start := time.Now()
	o := runInNetns(t, netnsSetup, silentAddr, false, fast(nil))
	if o.Result.Status != sample.Critical || o.Result.Available || o.Result.Message != "packet loss 100% (0 of 3 replies)" {
		t.Fatalf("result %+v", o.Result)
	}
	if o.Values[ping.MetricLoss] != 100 {
		t.Errorf("loss = %v", o.Values[ping.MetricLoss])
	}
	if _, ok := o.Values[ping.MetricRTTAvg]; ok {
		t.Error("rtt rows without replies")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// Without CAP_NET_RAW the check falls back to an ICMP datagram socket when
// ping_group_range allows it.
func TestUnprivilegedDatagramSocket(t *testing.T) {
	o := runInNetns(t, netnsSetup+` && sysctl -qw net.ipv4.ping_group_range="0 2147483647"`, "127.0.0.1", true, fast(nil))
	assertAnswered(t, o)
	o = runInNetns(t, netnsSetup+` && sysctl -qw net.ipv4.ping_group_range="0 2147483647"`, "::1", true, fast(nil))
	assertAnswered(t, o)
}

// Neither socket kind allowed: unknown, saying what to set.
func TestNoSocketAllowed(t *testing.T) {
	o := runInNetns(t, netnsSetup+` && sysctl -qw net.ipv4.ping_group_range="1 0"`, "127.0.0.1", true, fast(nil))
	if o.Result.Status != sample.Unknown || o.Result.Available ||
		!strings.Contains(o.Result.Message, "net.ipv4.ping_group_range") || !strings.Contains(o.Result.Message, "CAP_NET_RAW") {
		t.Fatalf("result %+v", o.Result)
	}
}
