package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/kafkabus"
)

// Config is a kafka sink's settings, read from its attributes.
type Config struct {
	// Name is the sink's name in the plan.
	Name string
	// Samples says whether the sink carries samples (else alerts only).
	Samples      bool
	SamplesTopic string
	AlertsTopic  string
	// Conn holds the connection and producer settings shared by both
	// topics; its Topic, Schema and SchemaVersion are left empty.
	Conn kafkabus.Options
}

// ConfigFromAttrs reads a sink's attributes (defaults filled in by the
// compiler).
func ConfigFromAttrs(name string, a module.Attrs) Config {
	c := Config{
		Name:         name,
		Samples:      a.Bool(FieldSamples),
		SamplesTopic: a.String(FieldTopic),
		AlertsTopic:  a.String(FieldAlertsTopic),
		Conn: kafkabus.Options{
			Brokers:       a.Strings(FieldBrokers),
			ClientID:      a.String(FieldClientID),
			LeaderAckOnly: a.String(FieldRequiredAcks) == "one",
			Compression:   a.String(FieldCompression),
			BatchTimeout:  a.Duration(FieldBatchTimeout),
			BatchBytes:    a.Size(FieldBatchBytes),
			WriteTimeout:  a.Duration(FieldWriteTimeout),
			SASLMechanism: a.String(FieldSASLMechanism),
			Username:      a.String(FieldUsername),
			Password:      a.String(FieldPassword),
		},
	}
	if a.Bool(FieldTLS) {
		c.Conn.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return c
}

// Configs reads every kafka sink of a plan, in plan order.
func Configs(p *plan.Plan) ([]Config, error) {
	var out []Config
	for _, s := range p.Sinks {
		if s.Kind != Spec.Name {
			continue
		}
		a, err := module.DecodeAttrs(Spec, s.Attrs)
		if err != nil {
			return nil, fmt.Errorf("sink %s (%s): %w", s.Name, s.Pos, err)
		}
		out = append(out, ConfigFromAttrs(s.Name, a))
	}
	return out, nil
}

// SamplesOptions are the options of the sink's samples topic.
func (c Config) SamplesOptions(log *slog.Logger) kafkabus.Options {
	o := c.Conn
	o.Topic, o.Logger = c.SamplesTopic, log
	return o
}

// AlertsOptions are the options of the sink's alerts topic.
func (c Config) AlertsOptions(log *slog.Logger) kafkabus.Options {
	o := c.Conn
	o.Topic, o.Logger = c.AlertsTopic, log
	o.Schema, o.SchemaVersion = alert.Schema, alert.SchemaVersion
	return o
}
