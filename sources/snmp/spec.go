// Package snmp is the snmp source module.
package snmp

import "github.com/reconmon/recon/module"

// Spec declares the snmp source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "snmp",
	Summary: "SNMP polling (get and walk), v1/v2c/v3.",
}
