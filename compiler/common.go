package compiler

import (
	"time"

	"github.com/reconmon/recon/module"
)

// Names of the attributes the compiler handles for every source, whatever
// its module (they are not part of module specs).
const (
	AttrTarget  = "target"
	AttrPeriod  = "period"
	AttrTimeout = "timeout"
)

// Defaults of the common source attributes and of streams.
const (
	DefaultPeriod       = 60 * time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultStreamPeriod = time.Second
	minPeriod           = time.Second
)

// CommonSourceFields describes the attributes every source accepts; the
// docs generator lists them once for all sources.
func CommonSourceFields() []module.Field {
	return []module.Field{
		module.String(AttrTarget, "Host or address the source checks; it is the `target` column of every sample. "+
			"Required, except for passive sources, modules that declare their own `target` attribute, "+
			"and modules that derive it (http: the URL's host).").
			Example(`"10.0.0.5"`, `"db.example.com"`),
		module.Duration(AttrPeriod, "How often the check runs. Not accepted by passive sources (listeners).").
			Def(DefaultPeriod).AtLeast(minPeriod.Seconds()).Example("30s", "5m"),
		module.Duration(AttrTimeout, "Time limit of one run; must be less than `period`. Default: 10s, or half the period when that is shorter. Not accepted by passive sources.").
			Def(DefaultTimeout).AtLeast(0.001).Example("5s"),
	}
}
