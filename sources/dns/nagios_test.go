package dns_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/dns"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// TestAgreesWithCheckDig runs check_dig from Debian's monitoring-plugins and
// the dns check against the same dnsmasq: the same status for up, wrong
// answer, missing record, NXDOMAIN and slow servers. A server that refuses
// (nothing listening) is the one documented difference: check_dig reports
// "dig returned an error status" as WARNING, recon reports critical, as
// check_dns does for an unreachable server.
func TestAgreesWithCheckDig(t *testing.T) {
	plugin := netchecktest.Need(t, "check_dig")
	netchecktest.Need(t, "dig")
	port := dnsmasq(t, records...)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentPort := silent.LocalAddr().(*net.UDPAddr).Port
	closed := freePort(t)

	cases := []struct {
		name, query, typ, expect string
		port                     int
		nagios, recon            sample.Status
	}{
		{"up", "a.test", "A", "10.0.0.5", port, sample.OK, sample.OK},
		{"up MX", "a.test", "MX", "", port, sample.OK, sample.OK},
		{"wrong answer", "a.test", "A", "10.0.0.9", port, sample.Warning, sample.Warning},
		{"no record of type", "h.test", "TXT", "", port, sample.Critical, sample.Critical},
		{"NXDOMAIN", "gone.nx.test", "A", "", port, sample.Critical, sample.Critical},
		{"slow", "a.test", "A", "", silentPort, sample.Critical, sample.Critical},
		{"down", "a.test", "A", "", closed, sample.Warning, sample.Critical},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-H", "127.0.0.1", "-p", strconv.Itoa(c.port), "-l", c.query, "-T", c.typ, "-t", "1"}
			set := module.Attrs{dns.FieldQuery: c.query, dns.FieldType: c.typ}
			if c.expect != "" {
				args = append(args, "-a", c.expect)
				set[dns.FieldExpect] = []string{c.expect}
			}
			got, line := netchecktest.Plugin(t, plugin, args...)
			if got != c.nagios {
				t.Errorf("check_dig %v: %v (%s), want %v", args, got, line, c.nagios)
			}
			res, _ := run(t, "127.0.0.1", c.port, set)
			if res.Status != c.recon {
				t.Errorf("recon: %v (%s), want %v", res.Status, res.Message, c.recon)
			}
		})
	}
}
