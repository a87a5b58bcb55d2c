package alert

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func sampleEvents() []Event {
	at := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	g := map[string]string{"target": "10.0.0.5", "ifIndex": "3"}
	fp := Fingerprint("link", g)
	return []Event{
		{ID: TransitionID(fp, at, OK, Critical, false), Time: at, Rule: "link", Severity: Critical, Previous: OK,
			Group: g, Value: math.NaN(), Message: "absent", Pipeline: "p", Fingerprint: fp, Since: at},
		{ID: TransitionID(fp, at.Add(time.Hour), Critical, Critical, true), Time: at.Add(time.Hour), Rule: "link",
			Severity: Critical, Previous: Critical, Group: g, Value: 2.5, Pipeline: "p", Fingerprint: fp, Since: at, Repeat: true},
		{ID: "x", Time: at, Rule: "all", Severity: Warning, Previous: OK, Group: map[string]string{}, Value: 0, Flapping: true, Since: at},
	}
}

func equal(a, b Event) bool {
	if math.IsNaN(a.Value) != math.IsNaN(b.Value) || (!math.IsNaN(a.Value) && a.Value != b.Value) {
		return false
	}
	a.Value, b.Value = 0, 0
	a.Notify, b.Notify = nil, nil
	return reflect.DeepEqual(a, b)
}

// The Arrow form (alerts topic, alerts table) and the JSON form (webhook,
// Kafka, stdout) round-trip every field; NaN is null in both.
func TestRoundTrips(t *testing.T) {
	evs := sampleEvents()
	rec := Record(memory.DefaultAllocator, evs)
	defer rec.Release()
	back, err := Events(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Column(5).IsNull(0) || rec.Column(5).IsNull(1) {
		t.Error("value column: NaN must be null, 2.5 not")
	}
	for i := range evs {
		if !equal(back[i], evs[i]) {
			t.Errorf("arrow round trip %d:\n got %+v\nwant %+v", i, back[i], evs[i])
		}
		b, err := json.Marshal(evs[i])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if (m["value"] == nil) != math.IsNaN(evs[i].Value) || m["severity"] != evs[i].Severity.String() {
			t.Errorf("json %s", b)
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if !equal(ev, evs[i]) {
			t.Errorf("json round trip %d:\n got %+v\nwant %+v", i, ev, evs[i])
		}
	}
}

// Fingerprints are stable (independent of map order) and distinct per rule
// and group; transition ids differ per transition.
func TestIdentity(t *testing.T) {
	a := Fingerprint("r", map[string]string{"a": "1", "b": "2"})
	if a != Fingerprint("r", map[string]string{"b": "2", "a": "1"}) {
		t.Error("fingerprint depends on map order")
	}
	for _, other := range []string{
		Fingerprint("s", map[string]string{"a": "1", "b": "2"}),
		Fingerprint("r", map[string]string{"a": "1", "b": "3"}),
		Fingerprint("r", map[string]string{"a": "1\x00b", "": "2"}),
	} {
		if other == a {
			t.Error("distinct rule/group share a fingerprint")
		}
	}
	at := time.Unix(100, 0)
	if TransitionID(a, at, OK, Warning, false) == TransitionID(a, at, OK, Warning, true) ||
		TransitionID(a, at, OK, Warning, false) == TransitionID(a, at.Add(1), OK, Warning, false) {
		t.Error("transition ids collide")
	}
	if _, err := ParseSeverity("major"); err == nil {
		t.Error("ParseSeverity accepted major")
	}
}

// FuzzEventJSON: alert JSON read back from Kafka or a file never panics the
// decoder, and what decodes re-encodes.
func FuzzEventJSON(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := json.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"severity":"bad"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Event
		if json.Unmarshal(data, &ev) != nil {
			return
		}
		if _, err := json.Marshal(ev); err != nil && int(ev.Severity) < 3 && int(ev.Previous) < 3 {
			t.Fatalf("decoded event does not encode: %v", err)
		}
	})
}
