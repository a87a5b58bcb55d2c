// Package netchecktest helps the network checks' tests: attributes with the
// spec's defaults, a run with the source's timeout, test certificates, and
// the Debian monitoring-plugins as reference peers.
package netchecktest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
)

// Attrs returns set completed with spec's defaults, as the compiler does,
// after checking it against spec.Validate.
func Attrs(t testing.TB, spec *module.Spec, set module.Attrs) module.Attrs {
	t.Helper()
	a := module.Attrs{}
	for _, f := range spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	for k, v := range set {
		if _, ok := spec.Field(k); !ok {
			t.Fatalf("%s has no attribute %q", spec.Name, k)
		}
		a[k] = v
	}
	if spec.Validate != nil {
		if err := spec.Validate(a); err != nil {
			t.Fatalf("%s attributes %v: %v", spec.Name, set, err)
		}
	}
	return a
}

// Check builds a check of spec for target with attributes set.
func Check(t testing.TB, spec *module.Spec, target string, timeout time.Duration, set module.Attrs) module.Check {
	t.Helper()
	chk, err := spec.NewCheck(module.Env{
		Pipeline: "test", Source: spec.Name, Node: "test", Target: target,
		Period: time.Minute, Timeout: timeout, Attrs: Attrs(t, spec, set),
	})
	if err != nil {
		t.Fatalf("NewCheck: %v", err)
	}
	if c, ok := chk.(module.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return chk
}

// Run runs chk once with timeout as the context deadline, as the scheduler does.
func Run(chk module.Check, timeout time.Duration) (sample.Result, *sampletest.Recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rec := &sampletest.Recorder{}
	res := chk.Run(ctx, rec)
	return res, rec
}

// Value returns the value of the single row of metric, failing the test if
// there is not exactly one.
func Value(t testing.TB, rec *sampletest.Recorder, metric string) float64 {
	t.Helper()
	rows := rec.Metric(metric)
	if len(rows) != 1 || !rows[0].HasValue {
		t.Fatalf("metric %s: want one row with a value, got %+v", metric, rows)
	}
	return rows[0].Value
}

// Cert is a test CA and a server certificate it signed.
type Cert struct {
	// CAFile is the CA certificate as a PEM file.
	CAFile string
	// TLS is the server certificate with its key.
	TLS tls.Certificate
	// CertFile and KeyFile hold TLS as PEM files.
	CertFile, KeyFile string
}

// NewCert makes a CA and a server certificate for 127.0.0.1, ::1 and
// localhost expiring at notAfter, written to files in a test directory.
func NewCert(t testing.TB, notAfter time.Time) Cert {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Recon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	writePEM(t, c.KeyFile, "EC PRIVATE KEY", keyDER)
	c.TLS, err = tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// PluginDir is where Debian installs the monitoring-plugins.
const PluginDir = "/usr/lib/nagios/plugins"

// Need returns the path of a required peer program: name is looked up in
// PluginDir first, then in PATH. A missing program fails the test in CI
// (CI=true) and skips it elsewhere.
func Need(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(PluginDir, name); isExec(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true: a missing peer is a failure); install with: make deps", name)
	}
	t.Skipf("%s is not installed (CI=true would fail here); install with: make deps", name)
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Plugin runs a Nagios plugin and returns its status (exit code) and its
// first output line.
func Plugin(t testing.TB, path string, args ...string) (sample.Status, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v", path, args, err)
		}
		code = ee.ExitCode()
	}
	if code < 0 || code > 3 {
		t.Fatalf("%s %v: exit code %d: %s", path, args, code, out)
	}
	line, _, _ := bytes.Cut(out, []byte{'\n'})
	return sample.Status(code), string(line)
}

// NoLeak fails the test if, after its cleanups ran, more goroutines are
// left than when NoLeak was called. Call it first in a test.
func NoLeak(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("goroutine leak: %d before, %d after:\n%s",
					before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// Serve accepts connections on a fresh 127.0.0.1 port, handing each to
// handle in its own goroutine, until the test ends; it then closes the
// listener and every accepted connection and waits for the handlers.
func Serve(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// ClosedPort returns a 127.0.0.1 port nothing listens on.
func ClosedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// cpuTime returns the user and system CPU time the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Discard is a sample.Writer that counts rows and keeps nothing, for
// benchmarks.
type Discard struct{ Rows atomic.Int64 }

// Write counts r.
func (d *Discard) Write(*sample.Row) { d.Rows.Add(1) }

// Throughput runs checks concurrently, b.N runs in all, one worker per
// check, and reports checks/min, the p99 run time and the share of runs
// that were not ok. Every check must be its own instance, as the
// scheduler keeps one per source.
func Throughput(b *testing.B, checks []module.Check, timeout time.Duration) {
	b.Helper()
	var (
		next     atomic.Int64
		notOK    atomic.Int64
		firstBad atomic.Pointer[sample.Result]
		wg       sync.WaitGroup
	)
	durations := make([][]time.Duration, len(checks))
	w := &Discard{}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	for i, chk := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				t0 := time.Now()
				res := chk.Run(ctx, w)
				durations[i] = append(durations[i], time.Since(t0))
				cancel()
				if res.Status != sample.OK {
					notOK.Add(1)
					firstBad.CompareAndSwap(nil, &res)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	var all []time.Duration
	for _, d := range durations {
		all = append(all, d...)
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Minutes(), "checks/min")
	if len(all) > 0 {
		b.ReportMetric(all[len(all)*99/100].Seconds()*1000, "p99-ms")
	}
	b.ReportMetric(float64(notOK.Load())/float64(b.N), "failed/op")
	// CPU time of the whole process (checks and local peers) per check:
	// unlike wall time, it does not depend on what else the machine runs.
	cpuPerCheck := cpu / time.Duration(b.N)
	b.ReportMetric(float64(cpuPerCheck.Microseconds()), "cpu-µs/check")
	b.ReportMetric(float64(2*time.Minute)/float64(cpuPerCheck), "checks/min/2cores")
	if r := firstBad.Load(); r != nil {
		b.Logf("first failed run: %+v", *r)
	}
}

// TimeoutOverrun runs chk against a peer that never answers, b.N times, and
// reports how long a run lasted past its timeout (overrun-ms): the check's
// own deadline should end it, not the scheduler's. Each run must report a
// timeout (its message holds want).
func TimeoutOverrun(b *testing.B, chk module.Check, timeout time.Duration, want string) {
	var over time.Duration
	for b.Loop() {
		start := time.Now()
		res, _ := Run(chk, timeout)
		over += time.Since(start) - timeout
		if !strings.Contains(res.Message, want) {
			b.Fatalf("result %+v, want a message with %q", res, want)
		}
	}
	b.ReportMetric(float64(over.Microseconds())/1e3/float64(b.N), "overrun-ms")
}
