// Package ping is the ping source module: ICMP echo requests to the target,
// their round trips and loss.
package ping

import (
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// Attribute names.
const (
	FieldCount        = "count"
	FieldInterval     = "interval"
	FieldSize         = "size"
	FieldAvailNeeded  = "avail_needed"
	FieldRTTWarning   = "rtt_warning"
	FieldRTTCritical  = "rtt_critical"
	FieldLossWarning  = "loss_warning"
	FieldLossCritical = "loss_critical"
)

// Metric names (the runtime adds status, available and duration).
const (
	MetricRTTMin = "rtt_min"
	MetricRTTAvg = "rtt_avg"
	MetricRTTMax = "rtt_max"
	MetricLoss   = "loss"
)

// Spec declares the ping source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "ping",
	Summary: "ICMP echo check.",
	Description: `Sends ` + "`count`" + ` ICMP echo requests ` + "`interval`" + ` apart and waits for the replies
until the run's timeout; ` + "`count` × `interval`" + ` must fit in the timeout.

recond uses a raw ICMP socket when it may (root or CAP_NET_RAW), and an
unprivileged ICMP datagram socket otherwise; the latter needs the group of
the recond process inside ` + "`net.ipv4.ping_group_range`" + ` (e.g.
` + "`sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"`" + `; the same sysctl governs
IPv6). When neither is allowed the check is unknown with a message saying so.

Available means at least ` + "`avail_needed`" + ` replies came back. Status: not
available is critical; otherwise loss and average round trip are compared
with the thresholds (a value at or above a threshold trips it, as check_ping).
With no reply the rtt rows are not written; loss is always written.`,
	Fields: []module.Field{
		module.Int(FieldCount, "Echo requests per run.").Def(5).Range(1, 100),
		module.Duration(FieldInterval, "Time between requests.").Def(200*time.Millisecond).Range(0.001, 60),
		module.Int(FieldSize, "Payload bytes per request.").Def(56).Range(16, 65000).Adv(),
		netcheck.IPVersionField(),
		module.Int(FieldAvailNeeded, "Replies needed for the target to count as available (at most count).").
			Def(1).Range(1, 100),
		module.Duration(FieldRTTWarning, "Warning when the average round trip is at least this.").Example("100ms"),
		module.Duration(FieldRTTCritical, "Critical when the average round trip is at least this.").Example("500ms"),
		module.Float(FieldLossWarning, "Warning when the loss is at least this percentage.").Range(0, 100).Example("20"),
		module.Float(FieldLossCritical, "Critical when the loss is at least this percentage.").Range(0, 100).Example("60"),
	},
	Metrics: []module.Metric{
		{Name: MetricRTTMin, Unit: "s", Summary: "Fastest round trip."},
		{Name: MetricRTTAvg, Unit: "s", Summary: "Average round trip."},
		{Name: MetricRTTMax, Unit: "s", Summary: "Slowest round trip."},
		{Name: MetricLoss, Unit: "%", Summary: "Requests without a reply, percent of count."},
	},
	Example: `pipeline "net"

source gw ping {
  target        = "127.0.0.1"
  count         = 5
  interval      = 200ms
  avail_needed  = 3
  rtt_warning   = 100ms
  rtt_critical  = 500ms
  loss_warning  = 20
  loss_critical = 60
}
`,
	Validate: validate,
	NewCheck: NewCheck,
}

func validate(a module.Attrs) error {
	if a.Int(FieldAvailNeeded) > a.Int(FieldCount) {
		return module.Errorf(FieldAvailNeeded, "avail_needed (%d) exceeds count (%d)", a.Int(FieldAvailNeeded), a.Int(FieldCount))
	}
	if a.Has(FieldRTTWarning) && a.Has(FieldRTTCritical) && a.Duration(FieldRTTWarning) > a.Duration(FieldRTTCritical) {
		return module.Errorf(FieldRTTWarning, "rtt_warning must not exceed rtt_critical")
	}
	if a.Has(FieldLossWarning) && a.Has(FieldLossCritical) && a.Float(FieldLossWarning) > a.Float(FieldLossCritical) {
		return module.Errorf(FieldLossWarning, "loss_warning must not exceed loss_critical")
	}
	return nil
}
