package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/rules"
)

var testCmd = &command{
	name:    "test",
	summary: "run rule unit tests (samples at times → expected alerts)",
	usage:   "test FILE.txtar…",
	help: `Runs rule test scripts: each gives the rules (a .recon file or a plan),
input samples at event times, and the alert transitions expected; the rule
engine replays them deterministically. Prints PASS, or FAIL with the
differences. The script format is described in docs/rules.md.

Examples:
  reconc test rules/*.txtar`,
	run: func(args []string, stdout, stderr io.Writer) int {
		if helpRequested("test", args, stderr) {
			return exitOK
		}
		return rules.TestCommand(args, stdout, stderr, loadRulesSource)
	},
}

var backtestCmd = &command{
	name:    "backtest",
	summary: "replay archived samples through a file's rules",
	usage:   "backtest FILE --archive DIR --from T --to T [--format table|json]",
	help: `Replays the archived samples of a time range, in event-time order, through
the rules of FILE (.recon or plan JSON) and prints the alert transitions they
would have produced: "when would this rule have fired in the last seven
months?". T is RFC 3339 or YYYY-MM-DD; --to is exclusive.

Examples:
  reconc backtest site.recon --archive data/archive --from 2026-05-01 --to 2026-11-01`,
	run: func(args []string, stdout, stderr io.Writer) int {
		if helpRequested("backtest", args, stderr) {
			return exitOK
		}
		return rules.BacktestCommand(args, stdout, stderr, func(path string) (*plan.Plan, error) {
			if !strings.HasSuffix(path, ".recon") {
				return plan.Load(path)
			}
			p, ds, srcs := compileFile(path)
			if ds.HasErrors() {
				printDiagnostics(stderr, ds, srcs)
				return nil, fmt.Errorf("%s does not compile", path)
			}
			return p, nil
		})
	},
}

// loadRulesSource compiles the rules a test script names, from a .recon
// source or a plan JSON.
func loadRulesSource(name string, src []byte) (*plan.Plan, error) {
	if !strings.HasSuffix(name, ".recon") {
		return rules.LoadJSON(name, src)
	}
	srcs := compiler.Sources{name: src}
	p, ds := compiler.CompileSource(name, src, compiler.Options{ReadFile: srcs.Reader(nil)})
	if ds.HasErrors() {
		var b bytes.Buffer
		printDiagnostics(&b, ds, srcs)
		return nil, fmt.Errorf("%s", strings.TrimSpace(b.String()))
	}
	return p, nil
}
