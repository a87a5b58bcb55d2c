// Package generator is the generator source module.
package generator

import "github.com/reconmon/recon/module"

// Spec declares the generator source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "generator",
	Summary: "Synthetic samples at a set rate, with sequence numbers.",
}
