package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reconmon/recon/internal/httpclient"
	"github.com/reconmon/recon/runtime/control"
)

var deployCmd = &command{
	name:    "deploy",
	summary: "swap a plan into a running recond",
	usage:   "deploy PLAN.json|FILE.recon --to URL [--token TOKEN | --token-file FILE]",
	help: `Sends a plan to a running recond, which validates it (format version, module
specs, streams, rules) and swaps it in place: new sources start, removed ones stop,
changed ones restart, unchanged ones keep running, unchanged rules keep their state.
A .recon file is compiled first. The answer lists what changed. An invalid plan, or a
missing or wrong token, changes nothing (recond answers 422 or 401, and reconc exits 1).

The token comes from --token, --token-file, or the environment variable RECON_TOKEN.

Examples:
  reconc deploy plan.json --to http://127.0.0.1:43191 --token-file /etc/recon/token
  RECON_TOKEN=… reconc deploy site.recon --to https://recond.example.net:43191`,
	run: runDeploy,
}

func runDeploy(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("deploy", stderr)
	to := fs.String("to", control.DefaultURL, "recond's `URL`")
	tok := fs.String("token", "", "bearer `token` (prefer --token-file or RECON_TOKEN: arguments are visible to other users)")
	tokFile := fs.String("token-file", "", "read the token from `file`")
	timeout := fs.Duration("timeout", time.Minute, "give up after this `duration`")
	caFile := fs.String("ca-file", "", "PEM `file` of the certificates trusted for an https URL (default: the system's)")
	files, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(files) != 1 {
		fs.Usage()
		return exitUsage
	}
	body, code := deployBody(files[0], stderr)
	if code != exitOK {
		return code
	}
	token := *tok
	if token == "" {
		t, err := control.LoadToken(*tokFile)
		if err != nil {
			fmt.Fprintf(stderr, "reconc deploy: %v\n", err)
			return exitUsage
		}
		token = t
	}
	client, err := httpclient.New(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "reconc deploy: --ca-file: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := (&control.Client{URL: *to, Token: token, HTTP: client}).Deploy(ctx, body)
	if err != nil {
		fmt.Fprintf(stderr, "reconc deploy: %v\n", err)
		return exitDiag
	}
	if res.Unchanged {
		fmt.Fprintf(stdout, "plan %s is already running: nothing changed\n", res.Hash)
		return exitOK
	}
	fmt.Fprintf(stdout, "deployed %s (was %s)\n%s", res.Hash, res.Change.From, res.Change)
	return exitOK
}

// deployBody reads a plan, compiling a .recon file first.
func deployBody(file string, stderr io.Writer) ([]byte, int) {
	if !strings.HasSuffix(file, ".recon") {
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "reconc deploy: %v\n", err)
			return nil, exitDiag
		}
		return b, exitOK
	}
	p, ds, srcs := compileFile(file)
	printDiagnostics(stderr, ds, srcs)
	if ds.HasErrors() {
		return nil, exitDiag
	}
	b, err := p.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "reconc deploy: %v\n", err)
		return nil, exitDiag
	}
	return b, exitOK
}
