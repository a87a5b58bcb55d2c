package dns

import (
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// FuzzAnswers feeds arbitrary DNS messages (as a server could send them) to
// the answer handling: it must never panic, and answers must count the
// answer rows.
func FuzzAnswers(f *testing.F) {
	for _, seed := range []func(*mdns.Msg){
		func(m *mdns.Msg) { m.Answer = append(m.Answer, mustRR(f, "a.test. 60 IN A 10.0.0.5")) },
		func(m *mdns.Msg) { m.Answer = append(m.Answer, mustRR(f, `a.test. 60 IN TXT "x" "y z"`)) },
		func(m *mdns.Msg) { m.Answer = append(m.Answer, mustRR(f, "a.test. 60 IN MX 10 mx.a.test.")) },
		func(m *mdns.Msg) { m.Rcode = mdns.RcodeNameError },
	} {
		m := new(mdns.Msg)
		m.SetQuestion("a.test.", mdns.TypeA)
		m.Response = true
		seed(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	chk, err := NewCheck(module.Env{Target: "127.0.0.1", Timeout: time.Second, Attrs: module.Attrs{
		FieldQuery: "a.test", FieldType: "A", FieldPort: int64(53), FieldRecursion: true,
		FieldExpectRcode: "NOERROR", FieldMismatch: "warning", FieldExpect: []string{"10.0.0.5"},
	}})
	if err != nil {
		f.Fatal(err)
	}
	c := chk.(*check)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(mdns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		rec := &sampletest.Recorder{}
		c.writeAnswers(rec, m)
		var v netcheck.Verdict
		v.Raise(sample.OK, "")
		c.judgeExpect(&v)
		n := rec.Metric(MetricAnswers)
		if len(n) != 1 || int(n[0].Value) != len(rec.Metric(MetricAnswer)) {
			t.Fatalf("answers row %+v for %d answer rows", n, len(rec.Metric(MetricAnswer)))
		}
	})
}

func mustRR(f *testing.F, s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		f.Fatal(err)
	}
	return rr
}
