// Package dns is the dns source module.
package dns

import "github.com/reconmon/recon/module"

// Spec declares the dns source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "dns",
	Summary: "DNS query check.",
}
