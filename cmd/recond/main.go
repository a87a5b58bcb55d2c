// Command recond runs a Recon pipeline on one machine: it schedules the
// plan's sources, batches their samples into the embedded journal and
// archives them to Parquet, until SIGINT or SIGTERM stops it cleanly.
//
//	recond run plan.json|FILE.recon [--data DIR] [--listen ADDR] [--node NAME]
//	           [--role all|collector|archiver|rules]
//	           [--log-level debug|info|warn|error] [--log-format text|json] [--token-file F]
//	recond version
//
// The scale-out roles run over the plan's kafka sink (docs/kafka.md); every
// role serves /healthz and /metrics on --listen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/engine"
	"github.com/reconmon/recon/runtime/kafkarole"
	"github.com/reconmon/recon/runtime/server"
)

const usage = `recond runs a Recon pipeline on this machine.

Usage:
  recond run plan.json|FILE.recon [flags]   run until SIGINT/SIGTERM (a second signal forces exit)
  recond version                           print the version
  recond --help                            this help

Flags of run:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		runFlags(stderr).PrintDefaults()
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		runFlags(stdout).PrintDefaults()
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "recond", version())
		return 0
	case "run":
		return runCmd(args[1:], stderr)
	}
	fmt.Fprintf(stderr, "recond: unknown command %q (try recond --help)\n", args[0])
	return 2
}

type runOptions struct {
	data, listen, node, level, format, tokenFile, role string
	memoryLimit, tlsCert, tlsKey                       string
}

// DefaultMemoryLimit is recond's soft memory limit unless GOMEMLIMIT or
// --memory-limit says otherwise: the garbage collector works harder near it
// instead of letting the heap double (allocations never fail because of it).
const DefaultMemoryLimit = "256MiB"

func runFlags(out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("recond run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.String("data", "data", "data directory: journal, archive, module state")
	fs.String("listen", server.DefaultAddr, "listener address for /healthz and /metrics")
	fs.String("node", "", "node name stamped on every sample (default: the host name)")
	fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("role", string(kafkarole.RoleAll), "all (one machine), or a scale-out role over the plan's kafka sink: collector, archiver, rules")
	fs.String("log-format", "text", "log format: text or json")
	fs.String("token-file", "", "file holding the bearer token of the control API (deploys, clones); default $RECON_TOKEN, none: API off")
	fs.String("tls-cert", "", "PEM certificate `file`: the listener serves HTTPS (with --tls-key; reloaded when the file changes)")
	fs.String("tls-key", "", "PEM private key `file` of --tls-cert")
	fs.String("memory-limit", DefaultMemoryLimit, "soft memory limit of the Go runtime (e.g. 1GiB; 0: none); GOMEMLIMIT, when set, wins")
	return fs
}

func runCmd(args []string, stderr io.Writer) int {
	fs := runFlags(stderr)
	// Accept the plan file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != file) {
		fmt.Fprintln(stderr, "recond run: exactly one plan.json or .recon file is required")
		return 2
	}
	o := runOptions{
		data: fs.Lookup("data").Value.String(), listen: fs.Lookup("listen").Value.String(),
		node: fs.Lookup("node").Value.String(), level: fs.Lookup("log-level").Value.String(),
		format: fs.Lookup("log-format").Value.String(), tokenFile: fs.Lookup("token-file").Value.String(),
		role: fs.Lookup("role").Value.String(), memoryLimit: fs.Lookup("memory-limit").Value.String(),
		tlsCert: fs.Lookup("tls-cert").Value.String(), tlsKey: fs.Lookup("tls-key").Value.String(),
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		fmt.Fprintln(stderr, "recond run: --tls-cert and --tls-key go together")
		return 2
	}
	logger, err := newLogger(stderr, o.level, o.format)
	if err != nil {
		fmt.Fprintf(stderr, "recond run: %v\n", err)
		return 2
	}
	slog.SetDefault(logger)
	if err := setMemoryLimit(o.memoryLimit, logger); err != nil {
		fmt.Fprintf(stderr, "recond run: --memory-limit: %v\n", err)
		return 2
	}
	role, err := kafkarole.ParseRole(o.role)
	if err != nil {
		fmt.Fprintf(stderr, "recond run: --role: %v\n", err)
		return 2
	}

	token := ""
	if o.tokenFile != "" || os.Getenv(control.TokenEnv) != "" {
		if token, err = control.LoadToken(o.tokenFile); err != nil {
			fmt.Fprintf(stderr, "recond run: %v\n", err)
			return 2
		}
	}
	reg := catalog.Default()
	p, err := loadPlan(file, reg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "recond run: %v\n", err)
		return 1
	}
	run, err := runner(p, role, o, reg, logger, token)
	if err != nil {
		fmt.Fprintf(stderr, "recond run: %v\n", err)
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		logger.Info("signal: stopping cleanly (a second signal forces exit)", "signal", s.String())
		cancel()
		s = <-sigs
		logger.Error("second signal: exiting now; accepted samples stay in the journal and are archived at the next start", "signal", s.String())
		os.Exit(1)
	}()
	if err := run(ctx); err != nil {
		logger.Error("recond failed", "err", err)
		return 1
	}
	return 0
}

// setMemoryLimit applies --memory-limit unless GOMEMLIMIT is set (the
// runtime has read it already).
func setMemoryLimit(flagValue string, log *slog.Logger) error {
	limit, err := dsl.ParseSize(flagValue)
	if err != nil {
		return err
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Debug("memory limit from GOMEMLIMIT", "GOMEMLIMIT", env)
		return nil
	}
	if limit == 0 {
		limit = math.MaxInt64 // the runtime's "no limit"
	}
	debug.SetMemoryLimit(limit)
	return nil
}

// runner returns what recond runs in its role: the pipeline (all,
// collector), or a consumer of Kafka (archiver, rules), which runs no
// sources and has no journal (docs/kafka.md).
func runner(p *plan.Plan, role kafkarole.Role, o runOptions, reg *module.Registry, logger *slog.Logger, token string) (func(context.Context) error, error) {
	if !role.Runs() {
		r, err := kafkarole.New(kafkarole.Options{Role: role, Plan: p, DataDir: o.data, Out: os.Stdout, Logger: logger})
		if err != nil {
			return nil, err
		}
		if obs, ok := r.(kafkarole.Observed); ok {
			return serveRole(obs, p, role, o, logger), nil
		}
		return r.Run, nil
	}
	eng, err := engine.New(p, engine.Options{
		DataDir: o.data, Node: o.node, Listen: o.listen, TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, Registry: reg, Logger: logger, Version: version(), Token: token, Role: role,
	})
	if err != nil {
		return nil, err
	}
	return eng.Run, nil
}

// serveRole runs a Kafka consumer role (archiver, rules) behind the
// listener: /healthz and /metrics (the role's figures, the Go runtime and
// the process).
func serveRole(r kafkarole.Observed, p *plan.Plan, role kafkarole.Role, o runOptions, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		reg := prometheus.NewRegistry()
		reg.MustRegister(r, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		node := o.node
		if node == "" {
			node, _ = os.Hostname()
		}
		srv := server.New(server.Options{Addr: o.listen, Gatherer: reg, Logger: logger,
			TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, Health: func() server.Health {
				h := r.Health()
				h.Pipeline, h.Node, h.Version = p.Pipeline, node, version()
				return h
			}})
		if err := srv.Start(); err != nil {
			return fmt.Errorf("%s role: %w", role, err)
		}
		err := r.Run(ctx)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			logger.Warn("listener shutdown", "err", serr)
		}
		return err
	}
}

// loadPlan reads a compiled plan, or compiles a .recon file.
func loadPlan(file string, reg *module.Registry, stderr io.Writer) (*plan.Plan, error) {
	if !strings.HasSuffix(file, ".recon") {
		return plan.Load(file)
	}
	srcs := compiler.Sources{}
	p, ds := compiler.Compile(file, compiler.Options{Registry: reg, ReadFile: srcs.Reader(nil)})
	if len(ds) > 0 {
		if err := diag.Text(stderr, ds, srcs); err != nil {
			return nil, fmt.Errorf("print diagnostics: %w", err)
		}
	}
	if ds.HasErrors() || p == nil {
		return nil, fmt.Errorf("%s does not compile", file)
	}
	return p, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// version is the module version of the build, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
