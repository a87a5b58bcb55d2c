// Package kafka is the kafka sink module.
package kafka

import "github.com/reconmon/recon/module"

// Spec declares the kafka sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "kafka",
	Summary: "Kafka topics for samples and alerts.",
}
