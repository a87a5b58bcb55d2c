package nagiosimport

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/reconmon/recon/internal/atomicfile"
)

// Main runs `reconc import nagios [flags] FILE…` and returns the exit code:
// 0 when converted (warnings go to stderr), 1 when the input could not be
// read or the output written, 2 on a usage error.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reconc import nagios", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the .recon file to `FILE` (default: standard output)")
	pipeline := fs.String("pipeline", "nagios", "pipeline `NAME` of the generated file")
	resource := fs.String("resource", "", "resource.cfg with $USERn$ macros (nagios.cfg's resource_file is read too)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reconc import nagios [-o FILE] [--pipeline NAME] [--resource FILE] nagios.cfg|objects.cfg…")
		fmt.Fprintln(stderr, "Converts a Nagios/Icinga 1 object configuration into a .recon file.")
		fs.PrintDefaults()
	}
	// Accept flags after the files too.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) == 0 {
		fs.Usage()
		return 2
	}
	text, warnings, err := Convert(files, Options{Pipeline: *pipeline, Resource: *resource})
	if err != nil {
		fmt.Fprintf(stderr, "reconc import nagios: %v\n", err)
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "reconc import nagios: %s\n", w)
	}
	if *out == "" {
		if _, err := stdout.Write(text); err != nil {
			fmt.Fprintf(stderr, "reconc import nagios: %v\n", err)
			return 1
		}
		return 0
	}
	if err := atomicfile.WriteFile(*out, text); err != nil {
		fmt.Fprintf(stderr, "reconc import nagios: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "reconc import nagios: wrote %s; check it with: reconc check %s\n", *out, *out)
	return 0
}
