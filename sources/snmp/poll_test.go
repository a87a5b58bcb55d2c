package snmp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/snmp/snmptest"
)

// attrs returns the spec defaults overlaid with over, as the compiler would.
func attrs(over module.Attrs) module.Attrs {
	a := module.Attrs{}
	for _, f := range Spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	for k, v := range over {
		a[k] = v
	}
	return a
}

func run(t *testing.T, port int, over module.Attrs, timeout time.Duration) (*sampletest.Recorder, sample.Result) {
	t.Helper()
	over[FieldPort] = int64(port)
	a := attrs(over)
	if err := Spec.Validate(a); err != nil {
		t.Fatalf("validate: %v", err)
	}
	c, err := Spec.NewCheck(module.Env{Source: "core", Target: "127.0.0.1", Timeout: timeout, Attrs: a})
	if err != nil {
		t.Fatal(err)
	}
	defer c.(module.Closer).Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rec := &sampletest.Recorder{}
	return rec, c.Run(ctx, rec)
}

func TestPollGetAndWalk(t *testing.T) {
	port := snmptest.Agent(t)
	rec, res := run(t, port, module.Attrs{
		FieldGet:  map[string]string{"uptime": "1.3.6.1.2.1.1.3.0", "name": ".1.3.6.1.2.1.1.5.0"},
		FieldWalk: map[string]string{"ifInOctets": "1.3.6.1.2.1.2.2.1.10", "ifDescr": "1.3.6.1.2.1.2.2.1.2"},
	}, 5*time.Second)
	if res.Status != sample.OK || !res.Available {
		t.Fatalf("result = %+v, want ok and available", res)
	}
	up := rec.Metric("uptime")
	if len(up) != 1 || !up[0].HasValue || up[0].Value <= 0 {
		t.Fatalf("uptime rows = %+v, want one positive value", up)
	}
	if typ, _ := sampletest.Label(up[0], "type"); typ != "TimeTicks" {
		t.Errorf("uptime type label = %q, want TimeTicks", typ)
	}
	name := rec.Metric("name")
	if len(name) != 1 || !name[0].HasText || name[0].Text == "" {
		t.Fatalf("sysName rows = %+v, want one text value", name)
	}
	in := rec.Metric("ifInOctets")
	descr := rec.Metric("ifDescr")
	if len(in) == 0 || len(in) != len(descr) {
		t.Fatalf("walk gave %d ifInOctets and %d ifDescr rows, want the same non-zero count", len(in), len(descr))
	}
	seen := map[string]bool{}
	for _, r := range in {
		idx, ok := sampletest.Label(r, "index")
		if !ok || idx == "" || strings.Contains(idx, ".") {
			t.Errorf("ifInOctets row without a plain ifIndex label: %+v", r)
		}
		if typ, _ := sampletest.Label(r, "type"); typ != "Counter32" {
			t.Errorf("ifInOctets type = %q, want Counter32", typ)
		}
		seen[idx] = true
	}
	if !seen["1"] {
		t.Errorf("interface 1 (lo) missing from walk: %v", seen)
	}
	for _, r := range descr {
		if !r.HasText || r.Text == "" {
			t.Errorf("ifDescr row without text: %+v", r)
		}
	}
}

func TestPollSplitsRequests(t *testing.T) {
	port := snmptest.Agent(t)
	gets := map[string]string{}
	for _, n := range []string{"1", "2", "3", "4", "5", "6"} {
		gets["sys"+n] = "1.3.6.1.2.1.1." + n + ".0"
	}
	rec, res := run(t, port, module.Attrs{FieldGet: gets, FieldMaxOIDs: int64(2), FieldBulk: false}, 5*time.Second)
	if res.Status != sample.OK {
		t.Fatalf("result = %+v", res)
	}
	if got := len(rec.Rows()); got != len(gets) {
		t.Fatalf("got %d rows for %d OIDs split 2 per request", got, len(gets))
	}
}

func TestPollMissingObjectWarns(t *testing.T) {
	port := snmptest.Agent(t)
	rec, res := run(t, port, module.Attrs{FieldGet: map[string]string{
		"uptime": "1.3.6.1.2.1.1.3.0", "nothing": "1.3.6.1.2.1.1.99.0"}}, 5*time.Second)
	if res.Status != sample.Warning || !strings.Contains(res.Message, "do not exist") {
		t.Fatalf("result = %+v, want warning about a missing object", res)
	}
	if len(rec.Metric("nothing")) != 0 || len(rec.Metric("uptime")) != 1 {
		t.Fatalf("rows = %+v", rec.Rows())
	}
}

func TestPollV3(t *testing.T) {
	port := snmptest.Agent(t)
	v3 := module.Attrs{
		FieldVersion: "3", FieldUsername: snmptest.User, FieldSecLevel: "authPriv",
		FieldAuthProtocol: "SHA", FieldAuthPassword: snmptest.AuthPass,
		FieldPrivProtocol: "AES", FieldPrivPassword: snmptest.PrivPass,
		FieldGet: map[string]string{"uptime": "1.3.6.1.2.1.1.3.0"},
	}
	rec, res := run(t, port, v3, 5*time.Second)
	if res.Status != sample.OK || len(rec.Metric("uptime")) != 1 {
		t.Fatalf("v3 authPriv: result %+v rows %+v", res, rec.Rows())
	}

	v3[FieldAuthPassword] = "wrongpass1"
	rec, res = run(t, port, v3, 3*time.Second)
	if res.Status != sample.Critical || len(rec.Rows()) != 0 {
		t.Fatalf("wrong password: result %+v rows %d, want critical and no rows", res, len(rec.Rows()))
	}
	if !strings.Contains(res.Message, "authentication") && !strings.Contains(res.Message, "timeout") {
		t.Fatalf("wrong password message %q does not say why", res.Message)
	}
	t.Logf("wrong password: %s", res.Message)
}

func TestPollTimeout(t *testing.T) {
	// A socket that swallows requests: an agent that never answers.
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rec, res := run(t, sink.LocalAddr().(*net.UDPAddr).Port,
		module.Attrs{FieldGet: map[string]string{"uptime": "1.3.6.1.2.1.1.3.0"}}, time.Second)
	if res.Status != sample.Critical || res.Available || !strings.Contains(res.Message, "timeout after 1s") {
		t.Fatalf("result = %+v, want critical unavailable timeout", res)
	}
	if len(rec.Rows()) != 0 {
		t.Fatalf("rows from a dead agent: %+v", rec.Rows())
	}
}

func TestPollRefused(t *testing.T) {
	port := snmptest.FreeUDPPort(t) // nothing listens: ICMP port unreachable
	_, res := run(t, port, module.Attrs{FieldGet: map[string]string{"uptime": "1.3.6.1.2.1.1.3.0"}}, time.Second)
	if res.Status != sample.Critical || res.Available || !strings.Contains(res.Message, "connection refused") {
		t.Fatalf("result = %+v, want critical: connection refused", res)
	}
}

func TestPollMIBNames(t *testing.T) {
	mibs := snmptest.MIBDir(t)
	port := snmptest.Agent(t)
	rec, res := run(t, port, module.Attrs{
		FieldMIBDirs: []string{mibs}, FieldMIBs: []string{"IF-MIB"},
		FieldGet:  map[string]string{"uptime": "SNMPv2-MIB::sysUpTime.0", "name": "sysName.0"},
		FieldWalk: map[string]string{"in": "IF-MIB::ifInOctets", "descr": "ifDescr"},
	}, 5*time.Second)
	if res.Status != sample.OK {
		t.Fatalf("result = %+v", res)
	}
	if up := rec.Metric("uptime"); len(up) != 1 || up[0].Value <= 0 {
		t.Fatalf("uptime rows = %+v", up)
	}
	if name := rec.Metric("name"); len(name) != 1 || name[0].Text == "" {
		t.Fatalf("sysName rows = %+v", name)
	}
	in, descr := rec.Metric("in"), rec.Metric("descr")
	if len(in) == 0 || len(in) != len(descr) {
		t.Fatalf("walk by name gave %d ifInOctets and %d ifDescr rows", len(in), len(descr))
	}
	if idx, _ := sampletest.Label(in[0], "index"); idx == "" || strings.Contains(idx, ".") {
		t.Fatalf("walked row index = %q, want the ifIndex", idx)
	}
}

func TestValidateOIDs(t *testing.T) {
	mibs := snmptest.MIBDir(t)
	for _, tc := range []struct {
		attrs      module.Attrs
		field, msg string
	}{
		{module.Attrs{FieldGet: map[string]string{"x": "IF-MIB::ifInOctets"}}, FieldGet, "no MIBs are loaded (set mib_dirs"},
		{module.Attrs{FieldGet: map[string]string{"x": "1..3"}}, FieldGet, "empty component"},
		{module.Attrs{FieldMIBDirs: []string{mibs}, FieldMIBs: []string{"IF-MIB"},
			FieldWalk: map[string]string{"in": "IF-MIB::ifInOctetz"}}, FieldWalk, "in: unknown MIB object \"IF-MIB::ifInOctetz\""},
		{module.Attrs{FieldMIBDirs: []string{mibs}, FieldMIBs: []string{"NO-SUCH-MIB"},
			FieldGet: map[string]string{"x": "1.3.6.1.2.1.1.3.0"}}, FieldMIBs, "NO-SUCH-MIB not found in " + mibs},
		{module.Attrs{FieldMIBs: []string{"IF-MIB"}, FieldGet: map[string]string{"x": "1.3"}}, FieldMIBs, "need mib_dirs"},
	} {
		err := Spec.Validate(attrs(tc.attrs))
		var fe *module.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
			t.Errorf("Validate(%v) = %v; want an error on %s containing %q", tc.attrs, err, tc.field, tc.msg)
		}
	}
	// The unknown-name error names where the MIBs were searched.
	err := Spec.Validate(attrs(module.Attrs{FieldMIBDirs: []string{mibs},
		FieldGet: map[string]string{"x": "ifInOctetz.1"}}))
	if err == nil || !strings.Contains(err.Error(), mibs) || !strings.Contains(err.Error(), "did you mean") {
		t.Errorf("unknown name: %v", err)
	}
	if err := Spec.Validate(attrs(module.Attrs{FieldGet: map[string]string{"up": ".1.3.6.1.2.1.1.3.0"}})); err != nil {
		t.Errorf("numeric OID without MIBs: %v", err)
	}
}
