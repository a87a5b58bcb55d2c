// Package kafka is the kafka sink module: samples as Arrow IPC streams and
// alert events as JSON, on Kafka topics (design §3.3).
package kafka

import (
	"time"

	"github.com/reconmon/recon/module"
)

// Attribute names of the kafka sink.
const (
	FieldBrokers       = "brokers"
	FieldTopic         = "topic"
	FieldAlertsTopic   = "alerts_topic"
	FieldSamples       = "samples"
	FieldClientID      = "client_id"
	FieldRequiredAcks  = "required_acks"
	FieldCompression   = "compression"
	FieldBatchTimeout  = "batch_timeout"
	FieldBatchBytes    = "batch_bytes"
	FieldWriteTimeout  = "write_timeout"
	FieldTLS           = "tls"
	FieldSASLMechanism = "sasl_mechanism"
	FieldUsername      = "username"
	FieldPassword      = "password"
)

// Spec declares the kafka sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "kafka",
	Summary: "Kafka topics for samples and alerts.",
	Description: "Publishes every sample batch to `topic` as one Arrow IPC stream per message " +
		"(key = source name, headers `content-type: application/vnd.apache.arrow.stream` and " +
		"`recon-schema: samples/v1`), and, when a rule names the sink in `notify`, every alert " +
		"event to `alerts_topic` as one JSON object per message (key = the alert's fingerprint). " +
		"Set `samples = false` for a sink that carries alerts only.",
	Fields: []module.Field{
		module.StringList(FieldBrokers, "Bootstrap brokers, `host:port`.").Req().
			Example(`["127.0.0.1:9092"]`, `["kafka1:9092", "kafka2:9092"]`),
		module.String(FieldTopic, "Topic of the sample batches.").Def("recon.samples"),
		module.String(FieldAlertsTopic, "Topic of the alert events.").Def("recon.alerts"),
		module.Bool(FieldSamples, "Publish samples; `false` keeps the sink for alerts only.").Def(true),
		module.String(FieldClientID, "Client id sent to the brokers.").Def("recon").Adv(),
		module.String(FieldRequiredAcks, "Acknowledgements a write waits for; a sample counts as sent only once acknowledged.").
			Def("all").OneOf("all", "one").Adv(),
		module.String(FieldCompression, "Compression of message batches (Kafka's own: consumers decompress it transparently). `lz4` sends ~2.6× fewer bytes than `none` and costs the brokers less CPU; `zstd` sends the fewest bytes for more producer CPU.").
			Def("lz4").OneOf("none", "gzip", "snappy", "lz4", "zstd").Adv(),
		module.Duration(FieldBatchTimeout, "Longest time a message waits for its batch to fill.").
			Def(50*time.Millisecond).Range(0, 60).Adv(),
		module.Size(FieldBatchBytes, "Largest batch sent to a partition at once.").
			Def(1<<20).Range(1024, 1<<30).Adv(),
		module.Duration(FieldWriteTimeout, "Time limit of one write, acknowledgements included.").
			Def(10*time.Second).Range(0.001, 3600).Adv(),
		module.Bool(FieldTLS, "Connect to the brokers over TLS (system roots).").Def(false),
		module.String(FieldSASLMechanism, "SASL authentication; empty for none.").
			Def("").OneOf("", "plain", "scram-sha-256", "scram-sha-512"),
		module.String(FieldUsername, "SASL user name."),
		module.String(FieldPassword, "SASL password; read it with `env(\"…\")` rather than writing it in the file.").
			Example(`env("KAFKA_PASSWORD")`),
	},
	Validate: validate,
	Example: `sink bus kafka {
  brokers      = ["127.0.0.1:9092"]
  topic        = "recon.samples"
  alerts_topic = "recon.alerts"
}`,
}

func validate(a module.Attrs) error {
	if a.String(FieldSASLMechanism) != "" {
		if a.String(FieldUsername) == "" {
			return module.Errorf(FieldSASLMechanism, "sasl_mechanism %q needs a username", a.String(FieldSASLMechanism))
		}
		if a.String(FieldPassword) == "" {
			return module.Errorf(FieldSASLMechanism, "sasl_mechanism %q needs a password", a.String(FieldSASLMechanism))
		}
	}
	if a.Bool(FieldSamples) && a.String(FieldTopic) == a.String(FieldAlertsTopic) {
		return module.Errorf(FieldAlertsTopic, "alerts_topic must differ from topic %q: samples and alerts have different formats", a.String(FieldTopic))
	}
	for _, f := range []string{FieldTopic, FieldAlertsTopic} {
		if a.String(f) == "" {
			return module.Errorf(f, "%s must not be empty", f)
		}
	}
	return nil
}
