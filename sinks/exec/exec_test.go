package exec

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

// A real /bin/sh gets the event JSON on stdin and the RECON_* environment;
// a command that fails once is retried.
func TestExecDeliversEventOnStdinAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	marker := filepath.Join(dir, "tried")
	script := `if [ ! -e "$MARK" ]; then touch "$MARK"; exit 3; fi; cat > "$OUT"; printf '%s|%s|%s' "$RECON_RULE" "$RECON_SEVERITY" "$RECON_GROUP" > "$OUT.env"`
	n, err := New("page", module.Attrs{
		FieldCommand: []string{"/bin/sh", "-c", script},
		FieldEnv:     map[string]string{"OUT": out, "MARK": marker},
		FieldTimeout: 10 * time.Second, FieldMaxAttempts: int64(2), FieldBackoff: time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	ev := &alert.Event{ID: "abc", Time: at, Rule: "slow", Severity: alert.Critical, Previous: alert.Warning,
		Group: map[string]string{"target": "a", "ifIndex": "3"}, Value: 2.5, Since: at}
	if err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got alert.Event
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("stdin was not the event JSON: %v: %s", err, data)
	}
	if got.ID != "abc" || got.Severity != alert.Critical || got.Value != 2.5 {
		t.Errorf("stdin event %+v", got)
	}
	env, _ := os.ReadFile(out + ".env")
	if string(env) != "slow|critical|ifIndex=3,target=a" {
		t.Errorf("environment: %q", env)
	}
}

// A command that outlives its timeout is killed and reported.
func TestExecTimeout(t *testing.T) {
	n, err := New("page", module.Attrs{
		FieldCommand: []string{"/bin/sleep", "30"}, FieldTimeout: 100 * time.Millisecond,
		FieldMaxAttempts: int64(1), FieldBackoff: time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(context.Background(), &alert.Event{Rule: "r"})
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v, want a timeout", err)
	}
}
