// Package parquet is the parquet sink module.
package parquet

import "github.com/reconmon/recon/module"

// Spec declares the parquet sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "parquet",
	Summary: "The Parquet archive, kept forever.",
}
