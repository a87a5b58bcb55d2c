// Package sampletest provides a sample.Writer that records rows, for tests
// of source modules.
package sampletest

import (
	"sync"

	"github.com/reconmon/recon/runtime/sample"
)

// Recorder is a sample.Writer keeping a deep copy of every row written.
type Recorder struct {
	mu   sync.Mutex
	rows []sample.Row
}

// Write records a copy of r.
func (rec *Recorder) Write(r *sample.Row) {
	c := *r
	c.Labels = append([]sample.Label(nil), r.Labels...)
	rec.mu.Lock()
	rec.rows = append(rec.rows, c)
	rec.mu.Unlock()
}

// Rows returns a copy of the rows recorded so far.
func (rec *Recorder) Rows() []sample.Row {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]sample.Row(nil), rec.rows...)
}

// Metric returns the rows recorded for metric.
func (rec *Recorder) Metric(metric string) []sample.Row {
	var out []sample.Row
	for _, r := range rec.Rows() {
		if r.Metric == metric {
			out = append(out, r)
		}
	}
	return out
}

// Label returns the value of label key on r, and whether it is set.
func Label(r sample.Row, key string) (string, bool) {
	for _, l := range r.Labels {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}
