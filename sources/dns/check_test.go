package dns_test

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/dns"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

const timeout = time.Second

var records = []string{
	"--address=/a.test/10.0.0.5",
	"--address=/a.test/fd00::5",
	"--address=/nx.test/",
	"--local=/test/", // authoritative: a known name without the type is NOERROR, no answer
	"--host-record=h.test,10.0.0.7",
	"--mx-host=a.test,mx1.a.test,10",
	"--mx-host=a.test,mx2.a.test,20",
	"--txt-record=t.a.test,v=spf1 -all",
	"--ptr-record=5.0.0.10.in-addr.arpa,host.a.test",
	"--srv-host=_ldap._tcp.a.test,ldap.a.test,389,0,100",
}

func run(t *testing.T, target string, port int, set module.Attrs) (sample.Result, *sampletest.Recorder) {
	t.Helper()
	set[dns.FieldPort] = int64(port)
	chk := netchecktest.Check(t, dns.Spec, target, timeout, set)
	return netchecktest.Run(chk, timeout)
}

func answers(rec *sampletest.Recorder) []string {
	var out []string
	for _, r := range rec.Metric(dns.MetricAnswer) {
		out = append(out, r.Text)
	}
	return out
}

func TestRecordTypes(t *testing.T) {
	netchecktest.NoLeak(t)
	port := dnsmasq(t, records...)
	cases := []struct {
		query, typ string
		want       []string
		expect     []string // as written by a user; nil: want
	}{
		{"a.test", "A", []string{"10.0.0.5"}, nil},
		{"www.a.test", "A", []string{"10.0.0.5"}, nil},
		{"a.test", "AAAA", []string{"fd00::5"}, nil},
		{"a.test", "AAAA", []string{"fd00::5"}, []string{"FD00:0:0::5"}},
		{"a.test", "MX", []string{"10 mx1.a.test.", "20 mx2.a.test."}, []string{"20 MX2.a.test", "10  mx1.a.test."}},
		{"a.test", "MX", []string{"10 mx1.a.test.", "20 mx2.a.test."}, nil},
		{"t.a.test", "TXT", []string{"v=spf1 -all"}, nil},
		{"10.0.0.5", "PTR", []string{"host.a.test."}, nil},
		{"_ldap._tcp.a.test", "SRV", []string{"0 100 389 ldap.a.test."}, nil},
	}
	for _, c := range cases {
		expect := c.expect
		if expect == nil {
			expect = c.want
		}
		res, rec := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: c.query, dns.FieldType: c.typ, dns.FieldExpect: expect})
		if res.Status != sample.OK || !res.Available {
			t.Errorf("%s %s: result %+v", c.query, c.typ, res)
			continue
		}
		got := answers(rec)
		slices.Sort(got)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s %s: answers %q, want %q", c.query, c.typ, got, c.want)
		}
		if n := netchecktest.Value(t, rec, dns.MetricAnswers); int(n) != len(c.want) {
			t.Errorf("%s %s: answers = %v", c.query, c.typ, n)
		}
		rows := rec.Metric(dns.MetricRcode)
		if len(rows) != 1 || rows[0].Value != 0 || rows[0].Text != "NOERROR" {
			t.Errorf("%s %s: rcode rows %+v", c.query, c.typ, rows)
		}
		for _, r := range rec.Metric(dns.MetricAnswer) {
			if typ, _ := sampletest.Label(r, dns.LabelType); typ != c.typ {
				t.Errorf("%s %s: answer label type %q", c.query, c.typ, typ)
			}
			if _, ok := sampletest.Label(r, dns.LabelTTL); !ok {
				t.Errorf("%s %s: answer without ttl label", c.query, c.typ)
			}
		}
		rtt := rec.Metric(dns.MetricRTT)
		if len(rtt) != 1 || rtt[0].Value <= 0 {
			t.Errorf("%s %s: rtt rows %+v", c.query, c.typ, rtt)
		} else if tr, _ := sampletest.Label(rtt[0], dns.LabelTransport); tr != "udp" {
			t.Errorf("%s %s: transport %q, want udp", c.query, c.typ, tr)
		}
	}
}

func TestExpectMismatch(t *testing.T) {
	port := dnsmasq(t, records...)
	res, _ := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "a.test", dns.FieldExpect: []string{"10.0.0.9"}})
	if res.Status != sample.Warning || res.Message != "expected 10.0.0.9 not in answers (10.0.0.5)" {
		t.Fatalf("result %+v", res)
	}
	res, _ = run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "a.test", dns.FieldType: "MX",
		dns.FieldExpect: []string{"10 MX1.a.test", "30 mx3.a.test."}, dns.FieldMismatch: "critical"})
	if res.Status != sample.Critical || !strings.HasPrefix(res.Message, "expected 30 mx3.a.test not in answers") {
		t.Fatalf("MX: result %+v", res)
	}
}

func TestNXDOMAIN(t *testing.T) {
	port := dnsmasq(t, records...)
	res, rec := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "gone.nx.test"})
	if res.Status != sample.Critical || res.Message != "rcode NXDOMAIN, expected NOERROR" || !res.Available {
		t.Fatalf("result %+v", res)
	}
	if rows := rec.Metric(dns.MetricRcode); len(rows) != 1 || rows[0].Value != 3 || rows[0].Text != "NXDOMAIN" {
		t.Fatalf("rcode rows %+v", rows)
	}
	res, _ = run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "gone.nx.test", dns.FieldExpectRcode: "NXDOMAIN"})
	if res.Status != sample.OK {
		t.Fatalf("expect_rcode NXDOMAIN: result %+v", res)
	}
}

func TestNoRecordOfType(t *testing.T) {
	port := dnsmasq(t, records...)
	res, rec := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "h.test", dns.FieldType: "TXT"})
	if res.Status != sample.Critical || res.Message != "no TXT record for h.test." {
		t.Fatalf("result %+v", res)
	}
	if n := netchecktest.Value(t, rec, dns.MetricAnswers); n != 0 {
		t.Fatalf("answers = %v", n)
	}
}

// Many TXT records: the UDP answer is truncated and the check asks again
// over TCP.
func TestTruncatedFallsBackToTCP(t *testing.T) {
	netchecktest.NoLeak(t)
	args := append([]string(nil), records...)
	var want []string
	for i := range 12 {
		txt := strings.Repeat(string(rune('a'+i)), 100)
		want = append(want, txt)
		args = append(args, "--txt-record=big.a.test,"+txt)
	}
	port := dnsmasq(t, args...)
	res, rec := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "big.a.test", dns.FieldType: "TXT", dns.FieldExpect: want})
	if res.Status != sample.OK {
		t.Fatalf("result %+v", res)
	}
	if n := netchecktest.Value(t, rec, dns.MetricAnswers); n != 12 {
		t.Fatalf("answers = %v, want 12", n)
	}
	if tr, _ := sampletest.Label(rec.Metric(dns.MetricRTT)[0], dns.LabelTransport); tr != "tcp" {
		t.Fatalf("transport %q, want tcp", tr)
	}
}

func TestIPv6ServerAndTCP(t *testing.T) {
	port := dnsmasq(t, records...)
	res, rec := run(t, "::1", port, module.Attrs{dns.FieldQuery: "a.test", dns.FieldTCP: true, dns.FieldExpect: []string{"10.0.0.5"}})
	if res.Status != sample.OK {
		t.Fatalf("result %+v", res)
	}
	if tr, _ := sampletest.Label(rec.Metric(dns.MetricRTT)[0], dns.LabelTransport); tr != "tcp" {
		t.Fatalf("transport %q, want tcp", tr)
	}
}

func TestServerDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	res, rec := run(t, "127.0.0.1", port, module.Attrs{dns.FieldQuery: "a.test"})
	if res.Status != sample.Critical || res.Message != "udp: connection refused" || res.Available {
		t.Fatalf("result %+v", res)
	}
	if len(rec.Rows()) != 0 {
		t.Fatalf("rows %+v", rec.Rows())
	}
}

// A server that reads queries and never answers: the check reports its
// own timeout (how promptly: BenchmarkTimeoutOverrun).
func TestServerSilent(t *testing.T) {
	netchecktest.NoLeak(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	res, _ := run(t, "127.0.0.1", pc.LocalAddr().(*net.UDPAddr).Port, module.Attrs{dns.FieldQuery: "a.test"})
	if res.Status != sample.Critical || res.Message != "udp: timeout after 1s" || res.Available {
		t.Fatalf("result %+v", res)
	}
}

// BenchmarkTimeoutOverrun: how long a query to a server that never answers
// lasts past the check's 1 s timeout.
//
//	go test -run '^$' -bench TimeoutOverrun -benchtime 5x ./sources/dns/
func BenchmarkTimeoutOverrun(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	chk := netchecktest.Check(b, dns.Spec, "127.0.0.1", timeout, module.Attrs{
		dns.FieldQuery: "a.test", dns.FieldPort: int64(pc.LocalAddr().(*net.UDPAddr).Port)})
	netchecktest.TimeoutOverrun(b, chk, timeout, "timeout after 1s")
}
