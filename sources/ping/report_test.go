package ping

import (
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// Partial loss cannot be made on loopback without touching the host's
// firewall, so the judgement of a run's replies is tested directly.
func TestReportPartialLoss(t *testing.T) {
	cases := []struct {
		name      string
		replies   []time.Duration // per request; 0: lost
		set       module.Attrs
		status    sample.Status
		available bool
		msg       string
	}{
		{"3 of 5, avail_needed 3", []time.Duration{1, 0, 1, 0, 1}, module.Attrs{FieldAvailNeeded: int64(3)},
			sample.OK, true, ""},
		{"2 of 5, avail_needed 3", []time.Duration{1, 0, 1, 0, 0}, module.Attrs{FieldAvailNeeded: int64(3)},
			sample.Critical, false, "packet loss 60% (2 of 5 replies)"},
		{"loss warning", []time.Duration{1, 1, 1, 1, 0}, module.Attrs{FieldLossWarning: 20.0, FieldLossCritical: 60.0},
			sample.Warning, true, "packet loss 20% (4 of 5 replies)"},
		{"loss critical", []time.Duration{1, 0, 0, 1, 0}, module.Attrs{FieldLossWarning: 20.0, FieldLossCritical: 60.0},
			sample.Critical, true, "packet loss 60% (2 of 5 replies)"},
		{"rtt critical beats loss warning", []time.Duration{600 * time.Millisecond, 0, 600 * time.Millisecond, 600 * time.Millisecond, 600 * time.Millisecond},
			module.Attrs{FieldLossWarning: 20.0, FieldRTTCritical: 500 * time.Millisecond}, sample.Critical, true, "rtt avg 600ms"},
	}
	for _, c := range cases {
		a := module.Attrs{FieldCount: int64(5), FieldInterval: 10 * time.Millisecond, FieldSize: int64(56),
			netcheck.FieldIPVersion: netcheck.IPAny, FieldAvailNeeded: int64(1)}
		for k, v := range c.set {
			a[k] = v
		}
		chk, err := NewCheck(module.Env{Target: "127.0.0.1", Timeout: time.Second, Attrs: a})
		if err != nil {
			t.Fatal(err)
		}
		pc := chk.(*check)
		received := 0
		for i, r := range c.replies {
			pc.rtt[i] = r
			if r > 0 {
				received++
			}
		}
		rec := &sampletest.Recorder{}
		var v netcheck.Verdict
		v.Raise(sample.OK, "")
		pc.report(rec, &v, received, nil)
		res := v.Result(received >= pc.availNeeded)
		if res.Status != c.status || res.Available != c.available || res.Message != c.msg {
			t.Errorf("%s: %+v, want %v available=%v %q", c.name, res, c.status, c.available, c.msg)
		}
		if loss := rec.Metric(MetricLoss); len(loss) != 1 || loss[0].Value != 100*float64(5-received)/5 {
			t.Errorf("%s: loss rows %+v", c.name, loss)
		}
	}
}
