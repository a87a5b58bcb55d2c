// Package stdout is the stdout sink module.
package stdout

import "github.com/reconmon/recon/module"

// Spec declares the stdout sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "stdout",
	Summary: "Alert notifications printed to standard output.",
}
