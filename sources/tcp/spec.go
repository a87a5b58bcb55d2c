// Package tcp is the tcp source module.
package tcp

import "github.com/reconmon/recon/module"

// Spec declares the tcp source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "tcp",
	Summary: "TCP connect check, with optional TLS, send string and banner match.",
}
