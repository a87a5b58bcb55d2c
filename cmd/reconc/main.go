// Command reconc is Recon's compiler and toolbox: it checks, formats and
// compiles .recon files into the plans recond runs.
//
// Exit status: 0 success, 1 diagnostics (or a failed operation), 2 usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit statuses shared by every subcommand.
const (
	exitOK    = 0
	exitDiag  = 1
	exitUsage = 2
)

// command is one reconc subcommand. To add one, write a file with its run
// function and add an entry to commands.
type command struct {
	name    string
	summary string
	// usage is the synopsis line(s) after "reconc".
	usage string
	// help is the long description with examples.
	help string
	run  func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order `reconc --help` shows them.
var commands []*command

func init() {
	commands = []*command{compileCmd, checkCmd, fmtCmd, testCmd, backtestCmd, importCmd, archiveCmd, tailCmd, watchCmd, deployCmd, helpCmd}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "reconc: unknown command %q\n", args[0])
		fmt.Fprintln(stderr, "Run 'reconc --help' for the list of commands.")
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `reconc compiles, checks and formats Recon pipelines (.recon files) and
works with a running recond.

Usage:
  reconc COMMAND [ARGUMENTS]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Examples:
  reconc check examples/quickstart.recon
  reconc compile examples/quickstart.recon -o plan.json
  reconc fmt -w examples/*.recon

Run 'reconc help COMMAND' for a command's options. Exit status: 0 ok,
1 diagnostics (errors in a file) or a failed operation, 2 usage error.
`)
}

// newFlags returns the flag set of the command name, printing its help on
// -h and on a parse error.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("reconc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { commandHelp(stderr, lookup(name), fs) }
	return fs
}

func commandHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n")
	for _, line := range strings.Split(c.usage, "\n") {
		fmt.Fprintf(w, "  reconc %s\n", line)
	}
	fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	var has bool
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintf(w, "\nOptions:\n")
		fs.PrintDefaults()
	}
}

// parseFlags parses args allowing flags after positional arguments
// (`reconc compile FILE -o plan.json`) and returns the positional ones. When
// ok is false the command must stop with exit status code: exitOK after -h,
// exitUsage after a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, exitOK, true
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), exitOK, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

var helpCmd = &command{
	name:    "help",
	summary: "show help for a command",
	usage:   "help [COMMAND]",
	help: `Shows the usage, options and examples of COMMAND, or the list of commands.

Example:
  reconc help compile`,
	run: func(args []string, stdout, stderr io.Writer) int {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			commandHelp(stdout, lookup("help"), flag.NewFlagSet("help", flag.ContinueOnError))
			return exitOK
		}
		switch len(args) {
		case 0:
			usage(stdout)
			return exitOK
		case 1:
			c := lookup(args[0])
			if c == nil {
				fmt.Fprintf(stderr, "reconc help: unknown command %q\n", args[0])
				return exitUsage
			}
			// Every command prints its help on -h to its error stream.
			c.run([]string{"-h"}, stdout, stdout)
			return exitOK
		}
		fmt.Fprintln(stderr, "usage: reconc help [COMMAND]")
		return exitUsage
	},
}
