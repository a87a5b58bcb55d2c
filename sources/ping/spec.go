// Package ping is the ping source module.
package ping

import "github.com/reconmon/recon/module"

// Spec declares the ping source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "ping",
	Summary: "ICMP echo check.",
}
