package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/reconmon/recon/internal/httpclient"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/watch"
)

var watchCmd = &command{
	name:    "watch",
	summary: "watch sources live through ad-hoc clones",
	usage:   "watch SOURCE… [--every 1s] [--for DURATION] [--server URL] [--metric LIST] [--json]",
	help: `Asks recond for an ad-hoc clone of each SOURCE running every --every (the sources
keep their own schedule), and shows one line per metric with its latest value and a
sparkline, redrawn in place on a terminal (plain lines when the output is not a
terminal; NDJSON with --json). Leaving (Ctrl-C, or --for elapsed) ends the clones.
A SOURCE that names a declared stream is watched as it runs, without a clone.
Clones are a change to recond: the token comes from --token-file or RECON_TOKEN.

Examples:
  reconc watch homepage --every 1s
  reconc watch homepage gw --for 10m --json | jq .
  reconc watch core --metric ifInOctets --server http://10.0.0.9:43191`,
	run: runWatch,
}

func runWatch(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("watch", stderr)
	every := fs.Duration("every", watch.DefaultEvery, "clone `period`")
	forD := fs.Duration("for", 0, "stop after this `duration` (default: until interrupted)")
	server := fs.String("server", control.DefaultURL, "recond's `URL`")
	metrics := fs.String("metric", "", "only these metrics (comma-separated `list`)")
	asJSON := fs.Bool("json", false, "print NDJSON, one sample per line")
	tokFile := fs.String("token-file", "", "read the token from `file` (default: RECON_TOKEN)")
	caFile := fs.String("ca-file", "", "PEM `file` of the certificates trusted for an https --server (default: the system's)")
	sources, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(sources) == 0 {
		fs.Usage()
		return exitUsage
	}
	// Declared streams are watched without a token; cloning needs one
	// (recond answers 401 without it, and the error says so).
	token, err := control.LoadToken(*tokFile)
	if err != nil && *tokFile != "" {
		fmt.Fprintf(stderr, "reconc watch: %v\n", err)
		return exitUsage
	}
	client, err := httpclient.New(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "reconc watch: --ca-file: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = watch.Run(ctx, watch.Options{
		Client:  &control.Client{URL: *server, Token: token, HTTP: client},
		Sources: sources, Metrics: live.ParseList(*metrics),
		Every: *every, For: *forD, JSON: *asJSON, TTY: isTerminal(stdout), Out: stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "reconc %v\n", err)
		return exitDiag
	}
	return exitOK
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
