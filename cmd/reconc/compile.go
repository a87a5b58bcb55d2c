package main

import (
	"fmt"
	"io"

	"github.com/reconmon/recon/internal/atomicfile"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/plan"
)

var compileCmd = &command{
	name:    "compile",
	summary: "compile a .recon file into a plan (JSON)",
	usage:   "compile FILE [-o plan.json]",
	help: `Compiles FILE (and the files it includes) into the plan recond runs: JSON,
deterministic (the same input gives the same bytes), with a format version and a
content hash. The plan goes to standard output, or to -o's file (written
atomically). Errors and warnings go to standard error; any error means no plan.

Examples:
  reconc compile examples/quickstart.recon
  reconc compile site.recon -o plan.json`,
	run: runCompile,
}

func runCompile(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("compile", stderr)
	out := fs.String("o", "", "write the plan to `file` instead of standard output")
	files, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(files) != 1 {
		fs.Usage()
		return exitUsage
	}
	p, ds, srcs := compileFile(files[0])
	printDiagnostics(stderr, ds, srcs)
	if ds.HasErrors() {
		return exitDiag
	}
	data, err := p.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "reconc compile: %v\n", err)
		return exitDiag
	}
	if *out == "" {
		if _, err := stdout.Write(data); err != nil {
			fmt.Fprintf(stderr, "reconc compile: %v\n", err)
			return exitDiag
		}
		return exitOK
	}
	if err := atomicfile.WriteFile(*out, data); err != nil {
		fmt.Fprintf(stderr, "reconc compile: %v\n", err)
		return exitDiag
	}
	return exitOK
}

// compileFile compiles path with the default options, recording the files
// read so that diagnostics can show their source lines.
func compileFile(path string) (*plan.Plan, diag.Diagnostics, compiler.Sources) {
	srcs := compiler.Sources{}
	p, ds := compiler.Compile(path, compiler.Options{ReadFile: srcs.Reader(nil)})
	return p, ds, srcs
}

// printDiagnostics renders ds as text with source lines and carets.
func printDiagnostics(w io.Writer, ds diag.Diagnostics, srcs compiler.Sources) {
	if len(ds) == 0 {
		return
	}
	diag.Text(w, ds, srcs)
}
