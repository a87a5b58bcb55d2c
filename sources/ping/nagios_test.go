package ping_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/ping"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// TestAgreesWithCheckPing runs check_ping from Debian's monitoring-plugins
// and the ping check with the same thresholds against the same targets:
// the same status for up (IPv4, IPv6), slow (round trip above the warning or
// critical threshold) and down (no answer, in an isolated namespace).
func TestAgreesWithCheckPing(t *testing.T) {
	plugin := netchecktest.Need(t, "check_ping")
	cases := []struct {
		name, target string
		warnMs       float64
		critMs       float64
		isolated     bool
		want         sample.Status
	}{
		{name: "up", target: "127.0.0.1", warnMs: 100, critMs: 500, want: sample.OK},
		{name: "up IPv6", target: "::1", warnMs: 100, critMs: 500, want: sample.OK},
		{name: "slow warning", target: "127.0.0.1", warnMs: 0.001, critMs: 500, want: sample.Warning},
		{name: "slow critical", target: "127.0.0.1", warnMs: 0.001, critMs: 0.002, want: sample.Critical},
		{name: "down", target: silentAddr, warnMs: 100, critMs: 500, isolated: true, want: sample.Critical},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-H", c.target, "-p", "3", "-t", "2",
				"-w", ftoa(c.warnMs) + ",20%", "-c", ftoa(c.critMs) + ",60%"}
			if c.target == "::1" {
				args = append(args, "-6")
			}
			set := module.Attrs{
				ping.FieldCount: int64(3), ping.FieldInterval: 20 * time.Millisecond,
				ping.FieldRTTWarning:  time.Duration(c.warnMs * float64(time.Millisecond)),
				ping.FieldRTTCritical: time.Duration(c.critMs * float64(time.Millisecond)),
				ping.FieldLossWarning: 20.0, ping.FieldLossCritical: 60.0,
			}
			var nagios sample.Status
			var o outcome
			if c.isolated {
				out, code := inNetns(t, netnsSetup, nil, append([]string{plugin}, args...)...)
				nagios = sample.Status(code)
				t.Logf("check_ping: %s", out)
				o = runInNetns(t, netnsSetup, c.target, false, set)
			} else {
				var line string
				nagios, line = netchecktest.Plugin(t, plugin, args...)
				t.Logf("check_ping: %s", line)
				o = run(t, c.target, set)
			}
			if nagios != c.want || o.Result.Status != c.want {
				t.Fatalf("check_ping %v, recon %v (%s), want %v", nagios, o.Result.Status, o.Result.Message, c.want)
			}
		})
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
