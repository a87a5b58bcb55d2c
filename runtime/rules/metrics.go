package rules

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconmon/recon/runtime/alert"
)

// Metrics are the rule engine's counters on recond's /metrics. One value
// lives as long as the process: a deploy replaces the Engine, and the new
// one adds to the same counters.
type Metrics struct {
	mu          sync.Mutex
	samples     map[string]float64 // by rule
	late        map[string]float64
	groups      map[string]float64
	transitions map[[2]string]float64 // rule, severity
	notified    map[string]float64    // by sink
	failed      map[string]float64
}

// NewMetrics returns zeroed counters.
func NewMetrics() *Metrics {
	return &Metrics{
		samples: map[string]float64{}, late: map[string]float64{}, groups: map[string]float64{},
		transitions: map[[2]string]float64{}, notified: map[string]float64{}, failed: map[string]float64{},
	}
}

var (
	descSamples = prometheus.NewDesc("recond_rule_samples_total",
		"Samples a rule accepted into its windows.", []string{"rule"}, nil)
	descLate = prometheus.NewDesc("recond_rule_late_samples_total",
		"Samples a rule dropped because they arrived behind its watermark (raise the rule's lateness if this grows).", []string{"rule"}, nil)
	descGroups = prometheus.NewDesc("recond_rule_groups",
		"Groups (by the rule's group by) a rule tracks.", []string{"rule"}, nil)
	descTransitions = prometheus.NewDesc("recond_rule_transitions_total",
		"Alert transitions of a rule, by the severity entered.", []string{"rule", "severity"}, nil)
	descNotified = prometheus.NewDesc("recond_notifications_total",
		"Alert events a notification sink delivered.", []string{"sink"}, nil)
	descNotifyFailed = prometheus.NewDesc("recond_notification_failures_total",
		"Alert events a notification sink failed to deliver after its retries (logged; not delivered).", []string{"sink"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSamples, descLate, descGroups, descTransitions, descNotified, descNotifyFailed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for rule, v := range m.samples {
		ch <- prometheus.MustNewConstMetric(descSamples, prometheus.CounterValue, v, rule)
	}
	for rule, v := range m.late {
		ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, v, rule)
	}
	for rule, v := range m.groups {
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, v, rule)
	}
	for k, v := range m.transitions {
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, v, k[0], k[1])
	}
	for sink, v := range m.notified {
		ch <- prometheus.MustNewConstMetric(descNotified, prometheus.CounterValue, v, sink)
	}
	for sink, v := range m.failed {
		ch <- prometheus.MustNewConstMetric(descNotifyFailed, prometheus.CounterValue, v, sink)
	}
}

// ruleCounters is what an engine last reported of one rule, so that it
// adds only what is new.
type ruleCounters struct{ samples, late uint64 }

// report adds the engine's new counts and the events of one evaluation.
// Only Run's goroutine calls it.
func (e *Engine) report(evs []alert.Event) {
	m := e.opts.Metrics
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.groups) // rules a deploy removed have no groups any more
	for i, r := range e.rules {
		rep := &e.reported[i]
		m.samples[r.name] += float64(r.seen - rep.samples)
		m.late[r.name] += float64(r.late - rep.late)
		rep.samples, rep.late = r.seen, r.late
		m.groups[r.name] = float64(len(r.groups))
	}
	for _, ev := range evs {
		m.transitions[[2]string{ev.Rule, ev.Severity.String()}]++
	}
}

// notifiedBy counts one delivery attempt's outcome.
func (m *Metrics) notifiedBy(sink string, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failed[sink]++
		return
	}
	m.notified[sink]++
}
