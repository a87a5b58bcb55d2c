package http_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	nethttp "net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	httpsource "github.com/reconmon/recon/sources/http"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

const timeout = time.Second

// serveHTTP starts a real HTTP server on 127.0.0.1 and returns its port.
func serveHTTP(t *testing.T, h nethttp.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// serveTLS starts a real HTTPS server with cert and returns its port.
func serveTLS(t *testing.T, cert netchecktest.Cert, h nethttp.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		ErrorLog:  log.New(io.Discard, "", 0)} // failed handshakes are what some tests make
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func text(code int, body string) nethttp.HandlerFunc {
	return func(w nethttp.ResponseWriter, _ *nethttp.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

type outcome struct {
	res  sample.Result
	vals map[string]float64
}

func check(t *testing.T, set module.Attrs) module.Check {
	t.Helper()
	return netchecktest.Check(t, httpsource.Spec, "127.0.0.1", timeout, set)
}

func runOnce(t *testing.T, chk module.Check) outcome {
	t.Helper()
	res, rec := netchecktest.Run(chk, timeout)
	o := outcome{res: res, vals: map[string]float64{}}
	for _, r := range rec.Rows() {
		if _, dup := o.vals[r.Metric]; dup {
			t.Fatalf("metric %s written twice", r.Metric)
		}
		o.vals[r.Metric] = r.Value
	}
	return o
}

func run(t *testing.T, set module.Attrs) outcome {
	t.Helper()
	return runOnce(t, check(t, set))
}

func url(port int, path string) string { return "http://127.0.0.1:" + strconv.Itoa(port) + path }

func TestOK(t *testing.T) {
	netchecktest.NoLeak(t)
	port := serveHTTP(t, text(200, "status: ok\n"))
	o := run(t, module.Attrs{"url": url(port, "/health"), "body_match": "ok", "expect_code": []string{"200-299"}})
	if o.res.Status != sample.OK || !o.res.Available {
		t.Fatalf("result %+v, want ok", o.res)
	}
	if o.vals["code"] != 200 || o.vals["bytes"] != 11 {
		t.Errorf("code %v bytes %v", o.vals["code"], o.vals["bytes"])
	}
	for _, m := range []string{"connect", "first_byte"} {
		if v, ok := o.vals[m]; !ok || v <= 0 || v >= timeout.Seconds() {
			t.Errorf("%s = %v (present %v)", m, v, ok)
		}
	}
	if _, ok := o.vals["tls_handshake"]; ok {
		t.Error("tls_handshake row for plain http")
	}
}

func TestStatusCodes(t *testing.T) {
	mux := nethttp.NewServeMux()
	for _, code := range []int{200, 204, 301, 404, 500, 503} {
		mux.Handle(fmt.Sprintf("/%d", code), text(code, ""))
	}
	port := serveHTTP(t, mux)
	cases := []struct {
		path   string
		expect []string
		want   sample.Status
		msg    string
	}{
		{"/200", nil, sample.OK, ""},
		{"/301", nil, sample.OK, ""},
		{"/404", nil, sample.Warning, "status code 404"},
		{"/500", nil, sample.Critical, "status code 500"},
		{"/503", []string{"200"}, sample.Critical, "status code 503, expected 200"},
		{"/204", []string{"200-299", "304"}, sample.OK, ""},
		{"/404", []string{"404"}, sample.OK, ""},
		{"/301", []string{"200-299"}, sample.Critical, "status code 301, expected 200-299"},
	}
	for _, c := range cases {
		set := module.Attrs{"url": url(port, c.path)}
		if c.expect != nil {
			set["expect_code"] = c.expect
		}
		o := run(t, set)
		if o.res.Status != c.want || o.res.Message != c.msg || !o.res.Available {
			t.Errorf("%s expect %v: result %+v, want %v %q", c.path, c.expect, o.res, c.want, c.msg)
		}
	}
}

func TestBodyMatch(t *testing.T) {
	port := serveHTTP(t, text(200, `{"status":"degraded","error":"disk"}`))
	o := run(t, module.Attrs{"url": url(port, "/"), "body_match": `"status":"ok"`})
	if o.res.Status != sample.Critical || o.res.Message != `body did not match "\"status\":\"ok\""` {
		t.Fatalf("result %+v", o.res)
	}
	o = run(t, module.Attrs{"url": url(port, "/"), "body_not_match": `(?i)ERROR`})
	if o.res.Status != sample.Critical || o.res.Message != `body matched "(?i)ERROR"` {
		t.Fatalf("result %+v", o.res)
	}
	o = run(t, module.Attrs{"url": url(port, "/"), "body_match": "degraded", "body_not_match": "fatal"})
	if o.res.Status != sample.OK {
		t.Fatalf("result %+v", o.res)
	}
}

func TestRequestShape(t *testing.T) {
	port := serveHTTP(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		fmt.Fprintf(w, "%s %s host=%s ua=%s accept=%s user=%s pass=%s auth=%s body=%s",
			r.Method, r.URL.Path, r.Host, r.UserAgent(), r.Header.Get("Accept"), user, pass,
			r.Header.Get("Authorization"), body)
	}))
	// The URL names a host that does not resolve: the check connects to the
	// target and sends the URL's host in the Host header.
	o := run(t, module.Attrs{
		"url": "http://www.example.invalid:" + strconv.Itoa(port) + "/api", "method": "POST",
		"body": "ping=1", "headers": map[string]string{"Accept": "text/plain"},
		"user": "ops", "password": "s3cret",
		"body_match": `^POST /api host=www\.example\.invalid:\d+ ua=Recon-http-check/1 accept=text/plain user=ops pass=s3cret auth=Basic \S+ body=ping=1$`,
	})
	if o.res.Status != sample.OK {
		t.Fatalf("result %+v", o.res)
	}
	o = run(t, module.Attrs{"url": url(port, "/"), "bearer_token": "t0k", "user_agent": "probe",
		"headers": map[string]string{"Host": "vhost.example"}, "body_match": `host=vhost\.example ua=probe .*auth=Bearer t0k`})
	if o.res.Status != sample.OK {
		t.Fatalf("bearer: result %+v", o.res)
	}
}

func TestRedirects(t *testing.T) {
	mux := nethttp.NewServeMux()
	mux.Handle("/old", nethttp.RedirectHandler("/new", nethttp.StatusFound))
	mux.Handle("/new", text(200, "arrived"))
	mux.HandleFunc("/loop", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		nethttp.Redirect(w, r, "/loop", nethttp.StatusFound)
	})
	port := serveHTTP(t, mux)
	o := run(t, module.Attrs{"url": url(port, "/old")})
	if o.res.Status != sample.OK || o.vals["code"] != 302 {
		t.Fatalf("no follow: result %+v code %v", o.res, o.vals["code"])
	}
	o = run(t, module.Attrs{"url": url(port, "/old"), "follow_redirects": true, "body_match": "arrived"})
	if o.res.Status != sample.OK || o.vals["code"] != 200 {
		t.Fatalf("follow: result %+v code %v", o.res, o.vals["code"])
	}
	o = run(t, module.Attrs{"url": url(port, "/loop"), "follow_redirects": true, "max_redirects": int64(3)})
	if o.res.Status != sample.Critical || o.res.Message != "more than 3 redirects" || !o.res.Available {
		t.Fatalf("loop: result %+v", o.res)
	}
}

func TestRefused(t *testing.T) {
	o := run(t, module.Attrs{"url": url(netchecktest.ClosedPort(t), "/")})
	if o.res.Status != sample.Critical || o.res.Message != "connection refused" || o.res.Available {
		t.Fatalf("result %+v", o.res)
	}
}

// A server that accepts and never answers: the check reports its own
// timeout (how promptly: BenchmarkTimeoutOverrun), nothing left running.
func TestServerNeverAnswers(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	o := run(t, module.Attrs{"url": url(port, "/")})
	if o.res.Status != sample.Critical || o.res.Message != "timeout after 1s waiting for the response" || o.res.Available {
		t.Fatalf("result %+v", o.res)
	}
}

// A handler that stalls mid-body.
func TestSlowBody(t *testing.T) {
	netchecktest.NoLeak(t)
	port := serveHTTP(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(nethttp.Flusher).Flush()
		<-r.Context().Done()
	}))
	o := run(t, module.Attrs{"url": url(port, "/")})
	if o.res.Status != sample.Critical || o.res.Message != "timeout after 1s reading the body" || !o.res.Available {
		t.Fatalf("result %+v", o.res)
	}
}

// A server sending 1 GiB: the check reads max_body and stops, with bounded
// memory.
func TestHugeBodyIsBounded(t *testing.T) {
	netchecktest.NoLeak(t)
	port := serveHTTP(t, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range (1 << 30) / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	o := run(t, module.Attrs{"url": url(port, "/"), "max_body": int64(1 << 20), "body_match": "^x+$"})
	runtime.ReadMemStats(&after)
	if o.res.Status != sample.OK || o.vals["bytes"] != 1<<20 {
		t.Fatalf("result %+v bytes %v, want ok after 1 MiB", o.res, o.vals["bytes"])
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("allocated %d MiB for a 1 MiB bounded read", alloc>>20)
	}
}

// A server whose header never ends.
func TestEndlessHeader(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, func(c net.Conn) {
		if _, err := nethttp.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: "); err != nil {
			return
		}
		chunk := []byte(strings.Repeat("a", 4096))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	o := run(t, module.Attrs{"url": url(port, "/"), "max_header": int64(64 << 10)})
	if o.res.Status != sample.Critical || !strings.Contains(o.res.Message, "headers exceeded 65536 bytes") {
		t.Fatalf("result %+v", o.res)
	}
}

func TestKeepAlive(t *testing.T) {
	netchecktest.NoLeak(t)
	port := serveHTTP(t, text(200, "ok"))
	fresh := check(t, module.Attrs{"url": url(port, "/")})
	kept := check(t, module.Attrs{"url": url(port, "/"), "keep_alive": true})
	for i := range 2 {
		if _, ok := runOnce(t, fresh).vals["connect"]; !ok {
			t.Fatalf("keep_alive off, run %d: no connect row", i)
		}
	}
	if _, ok := runOnce(t, kept).vals["connect"]; !ok {
		t.Fatal("keep_alive on, first run: no connect row")
	}
	if o := runOnce(t, kept); o.res.Status != sample.OK {
		t.Fatalf("keep_alive second run: %+v", o.res)
	} else if _, ok := o.vals["connect"]; ok {
		t.Fatal("keep_alive on, second run: connected again")
	}
}

func TestTLS(t *testing.T) {
	netchecktest.NoLeak(t)
	cert := netchecktest.NewCert(t, time.Now().Add(10*24*time.Hour))
	port := serveTLS(t, cert, text(200, "secure ok"))
	https := "https://localhost:" + strconv.Itoa(port) + "/"
	o := run(t, module.Attrs{"url": https, "ca_file": cert.CAFile, "body_match": "secure"})
	if o.res.Status != sample.OK {
		t.Fatalf("result %+v", o.res)
	}
	if d := o.vals["cert_expiry_days"]; d < 9.9 || d > 10 {
		t.Errorf("cert_expiry_days = %v, want ≈ 10", d)
	}
	if v, ok := o.vals["tls_handshake"]; !ok || v <= 0 {
		t.Errorf("tls_handshake = %v (present %v)", v, ok)
	}
	o = run(t, module.Attrs{"url": https, "ca_file": cert.CAFile, "cert_warning_days": int64(30)})
	if o.res.Status != sample.Warning || o.res.Message != "certificate expires in 9 days" {
		t.Fatalf("warning: result %+v", o.res)
	}
	o = run(t, module.Attrs{"url": https, "ca_file": cert.CAFile, "cert_warning_days": int64(30), "cert_critical_days": int64(10)})
	if o.res.Status != sample.Critical || o.res.Message != "certificate expires in 9 days" {
		t.Fatalf("critical: result %+v", o.res)
	}
	// Unknown CA: critical, yet the expiry is measured.
	o = run(t, module.Attrs{"url": https})
	if o.res.Status != sample.Critical || o.res.Message != "certificate signed by unknown authority" || o.res.Available {
		t.Fatalf("unknown CA: result %+v", o.res)
	}
	if d := o.vals["cert_expiry_days"]; d < 9.9 || d > 10 {
		t.Errorf("unknown CA: cert_expiry_days = %v", d)
	}
	o = run(t, module.Attrs{"url": https, "insecure_skip_verify": true})
	if o.res.Status != sample.OK {
		t.Fatalf("insecure_skip_verify: result %+v", o.res)
	}
	// A name the certificate does not cover.
	o = run(t, module.Attrs{"url": https, "ca_file": cert.CAFile, "server_name": "www.example.com"})
	if o.res.Status != sample.Critical || o.res.Message != "certificate is not valid for www.example.com" {
		t.Fatalf("wrong name: result %+v", o.res)
	}
}

func TestClientCertificate(t *testing.T) {
	cert := netchecktest.NewCert(t, time.Now().Add(30*24*time.Hour))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprintf(w, "client=%d", len(r.TLS.PeerCertificates))
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}, ClientAuth: tls.RequireAnyClientCert},
		ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	https := "https://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/"
	o := run(t, module.Attrs{"url": https, "ca_file": cert.CAFile, "cert_file": cert.CertFile, "key_file": cert.KeyFile, "body_match": "client=1"})
	if o.res.Status != sample.OK {
		t.Fatalf("with client cert: result %+v", o.res)
	}
	o = run(t, module.Attrs{"url": https, "ca_file": cert.CAFile})
	if o.res.Status != sample.Critical {
		t.Fatalf("without client cert: result %+v", o.res)
	}
}

// A TLS server that accepts and never answers the ClientHello.
func TestTLSHandshakeStalls(t *testing.T) {
	netchecktest.NoLeak(t)
	port := netchecktest.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	o := run(t, module.Attrs{"url": "https://127.0.0.1:" + strconv.Itoa(port) + "/"})
	if o.res.Status != sample.Critical || o.res.Message != "timeout after 1s in the TLS handshake" {
		t.Fatalf("result %+v", o.res)
	}
}

func TestHTTPSAgainstPlainServer(t *testing.T) {
	port := serveHTTP(t, text(200, "ok"))
	o := run(t, module.Attrs{"url": "https://127.0.0.1:" + strconv.Itoa(port) + "/"})
	if o.res.Status != sample.Critical || !strings.Contains(o.res.Message, "TLS") {
		t.Fatalf("result %+v", o.res)
	}
}

// A target given by name: the lookup is timed, and ip_version picks the family.
func TestNameTarget(t *testing.T) {
	port := serveHTTP(t, text(200, "ok"))
	chk := netchecktest.Check(t, httpsource.Spec, "localhost", timeout, module.Attrs{
		"url": "http://www.example.invalid:" + strconv.Itoa(port) + "/", "ip_version": "ipv4"})
	o := runOnce(t, chk)
	if o.res.Status != sample.OK {
		t.Fatalf("result %+v", o.res)
	}
	if v, ok := o.vals["resolve"]; !ok || v <= 0 {
		t.Fatalf("resolve = %v (present %v)", v, ok)
	}
	chk = netchecktest.Check(t, httpsource.Spec, "127.0.0.1", timeout, module.Attrs{
		"url": "http://www.example.invalid:" + strconv.Itoa(port) + "/", "ip_version": "ipv6"})
	o = runOnce(t, chk)
	if o.res.Status != sample.Critical || o.res.Available || !strings.Contains(o.res.Message, "address") {
		t.Fatalf("IPv4 target with ip_version ipv6: result %+v", o.res)
	}
}
