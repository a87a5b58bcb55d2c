// Package snmptrap is the snmp_trap source module.
package snmptrap

import "github.com/reconmon/recon/module"

// Spec declares the snmp_trap source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "snmp_trap",
	Summary: "SNMP trap and inform listener.",
}
