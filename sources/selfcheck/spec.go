// Package selfcheck is the selfcheck source module.
package selfcheck

import "github.com/reconmon/recon/module"

// Spec declares the selfcheck source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "selfcheck",
	Summary: "recond's own figures as samples.",
}
