package http_test

import (
	"io"
	nethttp "net/http"
	"strconv"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// TestAgreesWithNagiosPlugins runs check_http and check_curl from Debian's
// monitoring-plugins and the http check against the same servers: all must
// reach the same status for up, down, slow, wrong-content, error-code and
// expiring-certificate cases.
func TestAgreesWithNagiosPlugins(t *testing.T) {
	plugins := []string{netchecktest.Need(t, "check_http"), netchecktest.Need(t, "check_curl")}
	mux := nethttp.NewServeMux()
	mux.Handle("/up", text(200, "all ok"))
	mux.Handle("/wrong", text(200, "database error"))
	mux.Handle("/missing", text(404, "not here"))
	mux.Handle("/broken", text(503, "overloaded"))
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		_, _ = io.WriteString(w, "late ok")
	})
	port := serveHTTP(t, mux)
	cert := netchecktest.NewCert(t, time.Now().Add(10*24*time.Hour))
	tlsPort := serveTLS(t, cert, text(200, "secure ok"))
	closed := netchecktest.ClosedPort(t)

	cases := []struct {
		name  string
		port  int
		path  string
		https bool
		match string
		expCd string
		certW int64
		want  sample.Status
	}{
		{name: "up", port: port, path: "/up", match: "ok", want: sample.OK},
		{name: "down", port: closed, path: "/up", want: sample.Critical},
		{name: "slow", port: port, path: "/slow", want: sample.Critical},
		{name: "wrong content", port: port, path: "/wrong", match: "ok", want: sample.Critical},
		{name: "not found", port: port, path: "/missing", want: sample.Warning},
		{name: "server error", port: port, path: "/broken", want: sample.Critical},
		{name: "unexpected code", port: port, path: "/missing", expCd: "200", want: sample.Critical},
		{name: "https up", port: tlsPort, path: "/", https: true, match: "ok", want: sample.OK},
		{name: "certificate expiring", port: tlsPort, path: "/", https: true, certW: 30, want: sample.Warning},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-I", "127.0.0.1", "-p", strconv.Itoa(c.port), "-u", c.path, "-t", "1"}
			scheme := "http"
			set := module.Attrs{}
			if c.https {
				scheme = "https"
				args = append(args, "--ssl")
				set["insecure_skip_verify"] = true // the plugins do not verify either
			}
			if c.match != "" {
				args = append(args, "-r", c.match)
				set["body_match"] = c.match
			}
			if c.expCd != "" {
				args = append(args, "-e", c.expCd)
				set["expect_code"] = []string{c.expCd}
			}
			if c.certW > 0 {
				args = append(args, "-C", strconv.FormatInt(c.certW, 10))
				set["cert_warning_days"] = c.certW
			}
			set["url"] = scheme + "://127.0.0.1:" + strconv.Itoa(c.port) + c.path
			o := run(t, set)
			for _, p := range plugins {
				got, line := netchecktest.Plugin(t, p, args...)
				if got != c.want {
					t.Errorf("%s %v: %v (%s), want %v", p, args, got, line, c.want)
				}
			}
			if o.res.Status != c.want {
				t.Errorf("recon: %v (%s), want %v", o.res.Status, o.res.Message, c.want)
			}
		})
	}
}
