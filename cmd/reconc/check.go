package main

import (
	"fmt"
	"io"

	"github.com/reconmon/recon/diag"
)

var checkCmd = &command{
	name:    "check",
	summary: "report every error and warning in .recon files",
	usage:   "check [--format text|json] FILE...",
	help: `Compiles each FILE without writing a plan and reports every error and warning,
sorted by position, one per line: as text with the source line and a caret (to
standard error), or as one JSON array for editors and CI (to standard output).
Exit status 1 when any file has an error; warnings alone exit 0.

Examples:
  reconc check examples/*.recon
  reconc check --format json site.recon | jq '.[].summary'`,
	run: runCheck,
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	files, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 || (*format != "text" && *format != "json") {
		fs.Usage()
		return exitUsage
	}
	var all diag.Diagnostics
	failed := false
	for _, f := range files {
		_, ds, srcs := compileFile(f)
		failed = failed || ds.HasErrors()
		if *format == "text" {
			printDiagnostics(stderr, ds, srcs)
		}
		all = append(all, ds...)
	}
	if *format == "json" {
		if all == nil {
			all = diag.Diagnostics{}
		}
		if err := diag.JSON(stdout, all); err != nil {
			fmt.Fprintf(stderr, "reconc check: %v\n", err)
			return exitDiag
		}
	}
	if failed {
		return exitDiag
	}
	return exitOK
}
