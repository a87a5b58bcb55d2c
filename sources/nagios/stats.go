package nagios

import "sync/atomic"

// Stats are the module's self-metrics, summed over every nagios source of
// the process. The runtime publishes them on /metrics.
type Stats struct {
	// Running is the number of plugins running right now.
	Running int64
	// Runs counts plugin runs started.
	Runs uint64
	// StartFailures counts plugins that could not be started (not found,
	// not executable, bad dir or user).
	StartFailures uint64
	// Timeouts counts plugins killed at the timeout.
	Timeouts uint64
	// NonStandardExits counts plugins that exited with a code other than
	// 0..3 or were killed by a signal (timeouts excluded).
	NonStandardExits uint64
	// OutputTruncated counts runs whose output exceeded max_output.
	OutputTruncated uint64
	// PerfdataErrors counts perfdata items skipped as unparseable.
	PerfdataErrors uint64
}

var stats struct {
	running                                                              atomic.Int64
	runs, startFailures, timeouts, nonStandard, truncated, perfdataError atomic.Uint64
}

// ReadStats returns a snapshot of the module's self-metrics.
func ReadStats() Stats {
	return Stats{
		Running:          stats.running.Load(),
		Runs:             stats.runs.Load(),
		StartFailures:    stats.startFailures.Load(),
		Timeouts:         stats.timeouts.Load(),
		NonStandardExits: stats.nonStandard.Load(),
		OutputTruncated:  stats.truncated.Load(),
		PerfdataErrors:   stats.perfdataError.Load(),
	}
}
