package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

func TestStdoutFormats(t *testing.T) {
	at := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	ev := &alert.Event{ID: "x", Time: at, Rule: "slow", Severity: alert.Critical, Previous: alert.Warning,
		Group: map[string]string{"target": "a"}, Value: math.NaN(), Message: "absent(3m0s): no samples", Since: at}
	var text, js bytes.Buffer
	if err := New(module.Attrs{FieldFormat: FormatText}, &text).Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := "2026-11-24T13:00:00Z CRITICAL slow {target=a} (was warning): absent(3m0s): no samples\n"
	if text.String() != want {
		t.Errorf("text line\n got %q\nwant %q", text.String(), want)
	}
	if err := New(module.Attrs{FieldFormat: FormatJSON}, &js).Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatalf("json line: %v: %s", err, js.Bytes())
	}
	if m["severity"] != "critical" || m["previous"] != "warning" || m["value"] != nil || m["rule"] != "slow" {
		t.Errorf("json line %s", js.Bytes())
	}
}
