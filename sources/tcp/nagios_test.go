package tcp_test

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// TestAgreesWithCheckTCP runs check_tcp from Debian's monitoring-plugins
// and the tcp check against the same servers: both must reach the same
// status for up, down, slow and wrong-content peers. One documented
// difference: a wrong banner from a server that then keeps the connection
// open is "Socket timeout" (critical) for check_tcp, and a mismatch
// (warning, with the answer in the message) for recon.
func TestAgreesWithCheckTCP(t *testing.T) {
	plugin := netchecktest.Need(t, "check_tcp")
	cases := []struct {
		name   string
		port   int
		expect string
		nagios sample.Status
		recon  sample.Status
	}{
		{"up", netchecktest.Serve(t, banner("SSH-2.0-OpenSSH_9.2\r\n")), "SSH-", sample.OK, sample.OK},
		{"up without expect", netchecktest.Serve(t, silent), "", sample.OK, sample.OK},
		{"down", netchecktest.ClosedPort(t), "", sample.Critical, sample.Critical},
		{"slow", netchecktest.Serve(t, silent), "SSH-", sample.Critical, sample.Critical},
		{"wrong content", netchecktest.Serve(t, func(c net.Conn) {
			_, _ = io.WriteString(c, "220 mail ESMTP\r\n")
			_ = c.Close()
		}), "SSH-", sample.Warning, sample.Warning},
		{"closed without answer", netchecktest.Serve(t, func(c net.Conn) { _ = c.Close() }), "SSH-", sample.Critical, sample.Critical},
		{"wrong content, kept open", netchecktest.Serve(t, banner("220 mail ESMTP\r\n")), "SSH-", sample.Critical, sample.Warning},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-H", "127.0.0.1", "-p", strconv.Itoa(c.port), "-t", "1"}
			set := module.Attrs{}
			if c.expect != "" {
				args = append(args, "-e", c.expect)
				set[tcp.FieldExpect] = "^" + c.expect
			}
			nagios, line := netchecktest.Plugin(t, plugin, args...)
			res, _, _ := run(t, c.port, set)
			if nagios != c.nagios || res.Status != c.recon {
				t.Fatalf("check_tcp %v (%s), recon %v (%s), want %v and %v", nagios, line, res.Status, res.Message, c.nagios, c.recon)
			}
		})
	}
}
