// Package nagios is the nagios source module.
package nagios

import "github.com/reconmon/recon/module"

// Spec declares the nagios source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "nagios",
	Summary: "Runs a Nagios/Monitoring Plugins plugin and keeps its perfdata.",
}
