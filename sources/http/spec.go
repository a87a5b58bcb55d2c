// Package http is the http source module.
package http

import "github.com/reconmon/recon/module"

// Spec declares the http source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "http",
	Summary: "HTTP(S) request check.",
}
