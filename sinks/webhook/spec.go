// Package webhook is the webhook sink module.
package webhook

import "github.com/reconmon/recon/module"

// Spec declares the webhook sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "webhook",
	Summary: "Alert notifications as HTTP POSTs.",
}
