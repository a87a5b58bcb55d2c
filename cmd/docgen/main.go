// Command docgen writes the module reference (docs/modules.md) from the
// module specs registered in the catalog.
//
//	docgen                       print the reference to standard output
//	docgen -o docs/modules.md    write it (atomically)
//	docgen -check docs/modules.md  exit 1 when the file is stale
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
		if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
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

// writeFileAtomic writes data to a temporary file next to path, syncs it,
// renames it over path and syncs the directory: readers see the old or the
// new file, never a partial one.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	err = errors.Join(d.Sync(), d.Close())
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}
