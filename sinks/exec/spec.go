// Package exec is the exec sink module.
package exec

import "github.com/reconmon/recon/module"

// Spec declares the exec sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "exec",
	Summary: "Alert notifications passed to a command.",
}
