package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/plan"
)

const cliScript = `-- rules.recon --
pipeline "t"
source web generator { target = "127.0.0.1" }
rule slow {
  from    = web where metric == "duration"
  window  = tumbling(1m)
  warning when avg(value) > 1
}
-- script --
series web duration target=a start=0s step=10s: 2x11
expect 1m slow warning previous=ok value=2
`

// reconc test: PASS and exit 0 for a passing file; for a failing one exit 1
// with the missing and unexpected transitions and the timeline.
func TestTestCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txtar")
	bad := filepath.Join(dir, "bad.txtar")
	if err := os.WriteFile(good, []byte(cliScript), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(cliScript, "expect 1m", "expect 2m", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := TestCommand([]string{good}, &out, &errb, loadRules); code != 0 || out.String() != "PASS "+good+"\n" {
		t.Errorf("good: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	code := TestCommand([]string{good, bad}, &out, &errb, loadRules)
	o := out.String()
	if code != 1 || !strings.Contains(o, "FAIL "+bad) || !strings.Contains(o, "bad.txtar:11: missing: 2m0s slow warning previous=ok value=2 {}") ||
		!strings.Contains(o, "unexpected: 1m0s slow warning previous=ok value=2 {}") {
		t.Errorf("bad: exit %d, stdout:\n%s", code, o)
	}
	if code := TestCommand(nil, &out, &errb, loadRules); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code := TestCommand([]string{filepath.Join(dir, "none.txtar")}, &out, &errb, loadRules); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
}

// reconc backtest refuses incomplete or malformed arguments with exit 2.
func TestBacktestCommandUsage(t *testing.T) {
	var out, errb strings.Builder
	for _, args := range [][]string{
		nil,
		{"r.recon", "--archive", "a", "--from", "2026-01-01"},
		{"r.recon", "--archive", "a", "--from", "yesterday", "--to", "2026-01-02"},
		{"r.recon", "--archive", "a", "--from", "2026-01-01", "--to", "2026-01-02", "--format", "xml"},
	} {
		if code := BacktestCommand(args, &out, &errb, plan.Load); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if !strings.Contains(errb.String(), "usage: reconc backtest") {
		t.Errorf("no usage line in %q", errb.String())
	}
}
