// Command docgen writes the module reference (docs/modules.md) from the
// module specs registered in the catalog.
//
//	docgen                       print the reference to standard output
//	docgen -o docs/modules.md    write it (atomically)
//	docgen -check docs/modules.md  exit 1 when the file is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/reconmon/recon/internal/atomicfile"

	"github.com/reconmon/recon/catalog"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("docgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the reference to `file` instead of standard output")
	check := fs.String("check", "", "compare `file` with the generated reference; exit 1 when it differs")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: docgen [-o FILE | -check FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || (*out != "" && *check != "") {
		fs.Usage()
		return 2
	}
	reg, err := catalog.New()
	if err != nil {
		fmt.Fprintf(stderr, "docgen: %v\n", err)
		return 1
	}
	var buf bytes.Buffer
	if err := Generate(&buf, reg); err != nil {
		fmt.Fprintf(stderr, "docgen: %v\n", err)
		return 1
	}
	switch {
	case *check != "":
		have, err := os.ReadFile(*check)
		if err != nil {
			fmt.Fprintf(stderr, "docgen: %v\n", err)
			return 1
		}
		if !bytes.Equal(have, buf.Bytes()) {
			fmt.Fprintf(stderr, "docgen: %s is stale: regenerate it with `go run ./cmd/docgen -o %s` (make docs)\n", *check, *check)
			return 1
		}
		return 0
	case *out != "":
		if err := atomicfile.WriteFile(*out, buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "docgen: %v\n", err)
			return 1
		}
		return 0
	default:
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "docgen: %v\n", err)
			return 1
		}
		return 0
	}
}
