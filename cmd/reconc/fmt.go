package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/reconmon/recon/internal/atomicfile"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
)

var fmtCmd = &command{
	name:    "fmt",
	summary: "print .recon files in canonical form (or rewrite them)",
	usage:   "fmt [-w | -d] FILE...",
	help: `Formats each FILE in the canonical layout (two-space indent, one attribute per
line, aligned '=', comments kept). Without flags the result is printed; -w
rewrites the files that change (atomically); -d prints a unified diff instead.
Formatting is idempotent. A file with a syntax error is reported and left alone.

Examples:
  reconc fmt site.recon
  reconc fmt -d examples/*.recon
  reconc fmt -w site.recon`,
	run: runFmt,
}

func runFmt(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fmt", stderr)
	write := fs.Bool("w", false, "rewrite the files in place")
	showDiff := fs.Bool("d", false, "print a unified diff of the changes")
	files, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 || (*write && *showDiff) {
		fs.Usage()
		return exitUsage
	}
	status := exitOK
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "reconc fmt: %v\n", err)
			status = exitDiag
			continue
		}
		f, ds := dsl.Parse(path, src)
		if ds.HasErrors() {
			diag.Text(stderr, ds, map[string][]byte{path: src})
			status = exitDiag
			continue
		}
		out := dsl.Format(f)
		switch {
		case *write:
			if bytes.Equal(src, out) {
				continue
			}
			if err := atomicfile.WriteFile(path, out); err != nil {
				fmt.Fprintf(stderr, "reconc fmt: %v\n", err)
				status = exitDiag
			}
		case *showDiff:
			if _, err := io.WriteString(stdout, unifiedDiff(path, src, out)); err != nil {
				fmt.Fprintf(stderr, "reconc fmt: %v\n", err)
				return exitDiag
			}
		default:
			if _, err := stdout.Write(out); err != nil {
				fmt.Fprintf(stderr, "reconc fmt: %v\n", err)
				return exitDiag
			}
		}
	}
	return status
}
