package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reconmon/recon/runtime/tail"
	"github.com/reconmon/recon/sinks/parquet"
	"github.com/reconmon/recon/sources/nagios/nagiosimport"
)

var importCmd = &command{
	name:    "import",
	summary: "convert another tool's configuration (nagios) into a .recon file",
	usage:   "import nagios [-o FILE] [--pipeline NAME] [--resource resource.cfg] nagios.cfg|objects.cfg…",
	help: `Converts a Nagios / Icinga 1 object configuration (hosts, services, commands,
templates, host and service groups, intervals) into a .recon file that
compiles, with a comment on everything it could not convert. See
docs/import-nagios.md.

Examples:
  reconc import nagios /etc/nagios4/nagios.cfg -o site.recon
  reconc import nagios --pipeline dc1 objects/*.cfg`,
	run: func(args []string, stdout, stderr io.Writer) int {
		if helpRequested("import", args, stderr) {
			return exitOK
		}
		if len(args) == 0 || args[0] != "nagios" {
			fmt.Fprintln(stderr, "reconc import: the only format is nagios: reconc import nagios FILE…")
			return exitUsage
		}
		return nagiosimport.Main(args[1:], stdout, stderr)
	},
}

var tailCmd = &command{
	name:    "tail",
	summary: "print live samples or alerts from Kafka or from a recond",
	usage:   "tail (--brokers HOST:PORT | --server URL) [--source LIST] [--metric LIST] [--alerts] [--json] [-n N]",
	help: `Prints live samples from the Kafka samples topic (or alert events from the
alerts topic), or from a running recond's live stream with --server, as a
table or as NDJSON. Run 'reconc tail -h' for every flag.

Examples:
  reconc tail --brokers 127.0.0.1:9092 --source homepage --metric duration
  reconc tail --brokers 127.0.0.1:9092 --json --from-beginning -n 100
  reconc tail --brokers 127.0.0.1:9092 --alerts
  reconc tail --server http://127.0.0.1:43191 --source homepage`,
	run: tail.Main,
}

// helpRequested reports whether args ask for a command's help, printing it
// to stderr (where every command prints its help).
func helpRequested(name string, args []string, stderr io.Writer) bool {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		newFlags(name, stderr).Usage()
		return true
	}
	return false
}

var archiveCmd = &command{
	name:    "archive",
	summary: "maintain the Parquet archive (compact)",
	usage:   "archive compact DIR [--closed-before RFC3339]",
	help: `compact merges the small files of each closed hour partition of the archive
at DIR into large sorted files. It is lossless (row count and a content
checksum are verified before any old file is removed) and crash-safe; a
running recond does the same on its own. Nothing is ever deleted otherwise.

Examples:
  reconc archive compact data/archive`,
	run: runArchive,
}

func runArchive(args []string, stdout, stderr io.Writer) int {
	if helpRequested("archive", args, stderr) {
		return exitOK
	}
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(stderr, "usage: reconc archive compact DIR [--closed-before RFC3339]")
		return exitUsage
	}
	fs := newFlags("archive", stderr)
	before := fs.String("closed-before", "", "compact only hours that ended before this `time` (default: now)")
	dirs, code, ok := parseFlags(fs, args[1:])
	if !ok {
		return code
	}
	if len(dirs) != 1 {
		fs.Usage()
		return exitUsage
	}
	var opts parquet.CompactOptions
	if *before != "" {
		t, err := time.Parse(time.RFC3339, *before)
		if err != nil {
			fmt.Fprintf(stderr, "reconc archive compact: --closed-before: %v\n", err)
			return exitUsage
		}
		opts.ClosedBefore = t
	}
	if _, err := os.Stat(dirs[0]); err != nil {
		fmt.Fprintf(stderr, "reconc archive compact: %v\n", err)
		return exitDiag
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := parquet.Compact(ctx, dirs[0], opts)
	if err != nil {
		fmt.Fprintf(stderr, "reconc archive compact: %v\n", err)
		return exitDiag
	}
	fmt.Fprintf(stdout, "compacted %d partitions: %d files → %d files, %d rows\n", res.Partitions, res.FilesIn, res.FilesOut, res.Rows)
	return exitOK
}
