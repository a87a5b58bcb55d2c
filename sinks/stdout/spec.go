// Package stdout is the stdout sink module: one line per alert transition
// on recond's standard output.
package stdout

import "github.com/reconmon/recon/module"

// Attribute names of the stdout sink.
const (
	FieldFormat = "format"
)

// Output formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Spec declares the stdout sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "stdout",
	Summary: "Alert notifications printed to standard output.",
	Description: "Prints one line per alert transition of the rules that name the sink in `notify`. " +
		"`text` reads as `2026-11-24T13:00:00Z CRITICAL homepage_slow {target=10.0.0.5} value=2.3 (was warning since 12:58:00Z): message`; " +
		"`json` prints the alert event (design §3.2) as one JSON object per line, for log shippers.",
	Fields: []module.Field{
		module.String(FieldFormat, "Line format.").Def(FormatText).OneOf(FormatText, FormatJSON),
	},
	Example: `sink console stdout {
  format = "text"
}`,
}
