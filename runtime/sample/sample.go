// Package sample defines the sample contract of design §3.1: the row a
// source produces, the Arrow schema every batch on the bus carries, and the
// run status every check reports.
//
// The schema is a contract: users query it in the archive and consume it from
// Kafka. Change it only with a new schema version (see SchemaVersion).
package sample

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// SchemaVersion names the schema in Kafka headers ("recon-schema") and in
// Arrow schema metadata.
const SchemaVersion = "samples/v1"

// Column names, in schema order.
const (
	ColTs       = "ts"
	ColPipeline = "pipeline"
	ColSource   = "source"
	ColModule   = "module"
	ColTarget   = "target"
	ColMetric   = "metric"
	ColValue    = "value"
	ColText     = "text"
	ColUnit     = "unit"
	ColLabels   = "labels"
	ColNode     = "node"
)

// Column indexes in Schema, for code that reads batches by position.
const (
	IdxTs = iota
	IdxPipeline
	IdxSource
	IdxModule
	IdxTarget
	IdxMetric
	IdxValue
	IdxText
	IdxUnit
	IdxLabels
	IdxNode
)

// Schema is the Arrow schema of every sample batch (design §3.1).
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: ColTs, Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}},
	{Name: ColPipeline, Type: arrow.BinaryTypes.String},
	{Name: ColSource, Type: arrow.BinaryTypes.String},
	{Name: ColModule, Type: arrow.BinaryTypes.String},
	{Name: ColTarget, Type: arrow.BinaryTypes.String},
	{Name: ColMetric, Type: arrow.BinaryTypes.String},
	{Name: ColValue, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColText, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColUnit, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColLabels, Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
	{Name: ColNode, Type: arrow.BinaryTypes.String},
}, &schemaMeta)

var schemaMeta = arrow.NewMetadata([]string{"recon-schema"}, []string{SchemaVersion})

// Label is one extra dimension of a sample (ifIndex, a trap varbind,
// perfdata warn/crit …).
type Label struct {
	Key, Value string
}

// Row is one measurement as a source hands it to the runtime. Writers copy
// what they need, so a source may reuse one Row (and its Labels slice) for
// every sample it writes: the per-sample path allocates nothing.
type Row struct {
	// Ts is the measurement time in Unix nanoseconds; 0 means the start of
	// the current run.
	Ts int64
	// Target overrides the source's target (a trap's sender); "" keeps it.
	Target string
	Metric string
	// Value is valid when HasValue is set; otherwise the value column is null.
	Value    float64
	HasValue bool
	// Text is valid when HasText is set; otherwise the text column is null.
	Text    string
	HasText bool
	// Unit is as reported ("s", "B", "%", "c" …); "" is stored as null.
	Unit   string
	Labels []Label
}

// Reset clears r for reuse, keeping the Labels capacity.
func (r *Row) Reset() {
	labels := r.Labels[:0]
	*r = Row{Labels: labels}
}

// Writer accepts the rows of one source. Implementations copy the row; the
// caller may reuse it as soon as Write returns.
type Writer interface {
	Write(r *Row)
}

// WriteValue writes a numeric sample with no labels.
func WriteValue(w Writer, metric string, value float64, unit string) {
	r := Row{Metric: metric, Value: value, HasValue: true, Unit: unit}
	w.Write(&r)
}

// WriteText writes a textual sample with no labels.
func WriteText(w Writer, metric, text string) {
	r := Row{Metric: metric, Text: text, HasText: true}
	w.Write(&r)
}

// Status is the outcome of one check run, with the Nagios numbering.
type Status uint8

// Run statuses, numbered as Nagios plugin exit codes.
const (
	OK Status = iota
	Warning
	Critical
	Unknown
)

var statusNames = [...]string{"ok", "warning", "critical", "unknown"}

// String returns ok, warning, critical or unknown.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ParseStatus maps ok|warning|critical|unknown to a Status.
func ParseStatus(s string) (Status, bool) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), true
		}
	}
	return Unknown, false
}

// Result is what a check run reports besides its metrics. The runtime turns
// it into the `status`, `available` and `duration` rows of every run:
// status has value 0..3 and text ok|warning|critical|unknown, with the
// human-readable reason in the label "message".
type Result struct {
	Status Status
	// Message says why, e.g. "connection refused" or "timeout after 5s".
	Message string
	// Available reports whether the target answered at all.
	Available bool
}

// Metric names every check run yields (design §3.1).
const (
	MetricStatus    = "status"
	MetricAvailable = "available"
	MetricDuration  = "duration"
	LabelMessage    = "message"
)
