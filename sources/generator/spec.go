// Package generator is the generator source module: synthetic samples at a
// set rate, each carrying a sequence number that continues across restarts,
// for load tests and for proving that nothing accepted is lost or
// duplicated.
package generator

import (
	"github.com/reconmon/recon/module"
)

// Attribute names.
const (
	FieldRate    = "rate"
	FieldSeries  = "series"
	FieldMetrics = "metrics"
	FieldPattern = "pattern"
)

// MetricSeq names the generated samples when metrics = 1.
const MetricSeq = "seq"

// Patterns of the generated values.
const (
	PatternSeq      = "seq"
	PatternConstant = "constant"
	PatternSine     = "sine"
	PatternSawtooth = "sawtooth"
	PatternRandom   = "random"
)

// Spec declares the generator source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "generator",
	Summary: "Synthetic samples at a set rate, with sequence numbers.",
	Description: `Writes ` + "`rate`" + ` samples per second, period by period, with timestamps spread
evenly over the period. Sample number n (counting from 0 over the life of the source,
across restarts) goes to series ` + "`n % series`" + ` (the target column: ` + "`series-0`" + ` …) and metric
` + "`m<(n / series) % metrics>`" + ` (` + "`m0`" + ` …), or ` + "`seq`" + ` when ` + "`metrics = 1`" + ` (the default). With ` + "`pattern = \"seq\"`" + ` (the default) its value is n
itself, so that ` + "`count(*) = count(DISTINCT value)`" + ` proves every sample was archived once;
the other patterns give constant, sine, sawtooth or random values.

The next sequence number is reserved in blocks in ` + "`DATA/generator/<pipeline>/<source>.json`" + `
(written atomically, fsynced): after a crash numbers continue after the last reserved
block, never reusing one. The same file records ` + "`accepted`" + `, the highest sequence number
known durable on the bus, updated once per run.

Since a run's samples date back over the whole period, a rule reading them live needs a
` + "`lateness`" + ` of at least the period (or a short period, like ` + "`period = 1s`" + `); older samples are
counted late and left out of the rule's windows (they are archived all the same).`,
	Fields: []module.Field{
		module.String("target", "Unused: the target column holds the series name.").Def("generator").Adv(),
		module.Float(FieldRate, "Samples per second.").Def(1000.0).Range(0, 1e8).Example("1000", "2000000"),
		module.Int(FieldSeries, "Distinct series (targets) the samples are spread over.").Def(1).Range(1, 1e7),
		module.Int(FieldMetrics, "Distinct metric names per series.").Def(1).Range(1, 1e4),
		module.String(FieldPattern, "Values: the sequence number, or a synthetic curve.").
			Def(PatternSeq).OneOf(PatternSeq, PatternConstant, PatternSine, PatternSawtooth, PatternRandom),
	},
	Metrics: []module.Metric{
		{Name: "seq", Summary: "The generated samples when metrics = 1 (value: the sequence number with pattern seq); m0 … m<metrics-1> otherwise."},
	},
	Example: `pipeline "load"

source load generator {
  period  = 1s
  rate    = 100000
  series  = 100
  metrics = 10
}
`,
	NewCheck: func(env module.Env) (module.Check, error) { return New(env) },
}
