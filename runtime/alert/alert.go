// Package alert defines the alert event of design §3.2: what the rule engine
// emits on every state transition, publishes to the alerts topic of the bus
// (as Arrow records of Schema, archived to the `alerts` table) and hands to
// the notification sinks (as JSON).
package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// SchemaVersion names the alerts schema in Arrow metadata and Kafka headers.
const SchemaVersion = "alerts/v1"

// Severity is the state of a rule for one group.
type Severity uint8

// Severities, in increasing order.
const (
	OK Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"ok", "warning", "critical"}

// String returns ok, warning or critical.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// ParseSeverity maps ok|warning|critical to a Severity.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return OK, fmt.Errorf("unknown severity %q (want ok, warning or critical)", s)
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) {
	if int(s) >= len(severityNames) {
		return nil, fmt.Errorf("invalid severity %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Event is one alert transition (or a repeated notification of a firing
// state) of one rule for one group.
type Event struct {
	// ID identifies this transition: equal IDs are the same notification
	// delivered twice (after a crash), so receivers may drop duplicates.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Rule string    `json:"rule"`
	// Severity is the new state, Previous the state it left (equal for a
	// repeated notification).
	Severity Severity `json:"severity"`
	Previous Severity `json:"previous"`
	// Group holds the group-by key/values (empty for an ungrouped rule).
	Group map[string]string `json:"group"`
	// Value is the value the deciding condition compared; NaN when there is
	// none (absent, pattern), encoded as JSON null.
	Value    float64 `json:"-"`
	Message  string  `json:"message"`
	Pipeline string  `json:"pipeline"`
	// Fingerprint is the stable id of rule+group (Fingerprint).
	Fingerprint string `json:"fingerprint"`
	// Since is when the current severity began.
	Since time.Time `json:"since"`
	// Repeat marks a re-notification of an unchanged state (rule `repeat`).
	Repeat bool `json:"repeat,omitempty"`
	// Flapping marks a transition while the group is flapping: it is
	// archived but not notified.
	Flapping bool `json:"flapping,omitempty"`
	// Notify lists the sinks the event goes to (the rule's `notify`);
	// empty when notifications are suppressed.
	Notify []string `json:"notify,omitempty"`
}

// MarshalJSON encodes the event with value null when it is NaN.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // drops the methods, avoiding recursion
	aux := struct {
		plain
		Value *float64 `json:"value"`
	}{plain: plain(e)}
	if !math.IsNaN(e.Value) && !math.IsInf(e.Value, 0) {
		v := e.Value
		aux.Value = &v
	}
	if aux.Group == nil {
		aux.Group = map[string]string{}
	}
	return json.Marshal(aux)
}

// UnmarshalJSON decodes an event; a null or missing value becomes NaN.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	aux := struct {
		*plain
		Value *float64 `json:"value"`
	}{plain: (*plain)(e)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	e.Value = math.NaN()
	if aux.Value != nil {
		e.Value = *aux.Value
	}
	return nil
}

// GroupString renders the group as {k=v, …} with sorted keys.
func (e *Event) GroupString() string { return FormatGroup(e.Group) }

// FormatGroup renders a group as {k=v, …} with sorted keys.
func FormatGroup(g map[string]string) string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(g[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Fingerprint is the stable id of rule+group: the first 16 hex digits of a
// SHA-256 over the rule name and the sorted key/values.
func Fingerprint(rule string, group map[string]string) string {
	keys := make([]string, 0, len(group))
	for k := range group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	h.Write([]byte(rule))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(group[k]))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// TransitionID is the id of the transition of fingerprint to sev at t
// (repeat set for a re-notification): stable across replays.
func TransitionID(fingerprint string, t time.Time, prev, sev Severity, repeat bool) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%t", fingerprint, t.UnixNano(), prev, sev, repeat)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Notifier delivers alert events (a notification sink). Notify returns once
// the event is delivered or delivery failed for good; it honours ctx.
type Notifier interface {
	Notify(ctx context.Context, ev *Event) error
}

// sortedPairs iterates a group in key order.
func sortedPairs(g map[string]string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		keys := make([]string, 0, len(g))
		for k := range g {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, g[k]) {
				return
			}
		}
	}
}
