// Package engine wires recond's pipeline on one machine: plan → sources
// (scheduler) → batcher → embedded journal → consumers (the Parquet
// archiver, and any others recond starts: rule engine, live stream), with
// the HTTP listener for /healthz and /metrics.
//
// Shutdown order (Run's context cancelled): sources stop, the batcher
// flushes and publishes what it holds, consumers drain everything the
// journal accepted, then the journal closes. A sample accepted by the bus
// is archived before Run returns.
package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/graphpage"
	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkarole"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livekafka"
	"github.com/reconmon/recon/runtime/metrics"
	"github.com/reconmon/recon/runtime/rules"
	"github.com/reconmon/recon/runtime/scheduler"
	"github.com/reconmon/recon/runtime/server"
	kafkasink "github.com/reconmon/recon/sinks/kafka"
	"github.com/reconmon/recon/sinks/parquet"
)

// ArchiverConsumer is the journal consumer name of the samples archiver.
const ArchiverConsumer = "archiver"

// Consumer is a reader of the samples topic started beside the archiver
// (rule engine, live stream …). Run reads until ctx is cancelled; the
// engine cancels it only once the consumer's journal lag is zero, so it
// sees every accepted batch.
type Consumer struct {
	// Name keys the consumer's checkpoint in the journal.
	Name string
	Run  func(ctx context.Context, c bus.Consumer) error
}

// Options configure an Engine.
type Options struct {
	// DataDir holds the journal (DATA/journal/samples), the archive (the
	// parquet sink's path, default DATA/archive) and module state.
	DataDir string
	// Node names this recond in every sample (default: the host name).
	Node string
	// Listen is the listener address (default server.DefaultAddr).
	Listen string
	// TLSCertFile and TLSKeyFile, both set, make the listener serve HTTPS.
	TLSCertFile, TLSKeyFile string
	Registry                *module.Registry
	Logger                  *slog.Logger
	Version                 string
	Batch                   batch.Options
	Journal                 journal.Options
	// Concurrency bounds the checks running at once (scheduler default).
	Concurrency int
	// Consumers start beside the archiver (and the rule engine, which the
	// engine starts itself when the plan has rules).
	Consumers []Consumer
	// Token authorises the control API (plan deploys, ad-hoc clones); ""
	// leaves it off.
	Token string
	// AlertOutput receives the alerts of the plan's stdout sinks (default
	// os.Stdout).
	AlertOutput io.Writer
	// DrainTimeout bounds how long shutdown waits for consumers to catch up
	// with the journal (default 2 min); what is left stays in the journal
	// and is archived at the next start.
	DrainTimeout time.Duration
	// Role is the process' role in a Kafka deployment (docs/kafka.md); the
	// zero value is kafkarole.RoleAll. A collector runs the sources and
	// forwards its journal to the plan's kafka sink instead of archiving it
	// and running the rules (archivers and rule engines read Kafka).
	Role kafkarole.Role
	// Ready, when set, is called once everything runs, with the listener's
	// address.
	Ready func(addr string)
}

// Engine runs one plan.
type Engine struct {
	mu    sync.Mutex // guards plan after Run started
	plan  *plan.Plan
	opts  Options
	log   *slog.Logger
	start time.Time

	journal *journal.Journal
	// alerts is the alerts topic (DATA/journal/alerts) when the plan has
	// rules: the rule engine publishes every transition there and an
	// archiver writes it to the archive's alerts table.
	alerts   *journal.Journal
	plane    *control.Plane
	batcher  *batch.Batcher
	sched    *scheduler.Scheduler
	metrics  *metrics.Runtime
	server   *server.Server
	archiver *parquet.Archiver
	// rules runs the rule engine (nil until the plan has rules; never in
	// a collector).
	rules *ruleRunner
	// consumers holds what startConsumers started with, for the rule
	// engine a deploy starts later.
	consumers consumerGroup
	// names are the journal consumers shutdown waits for; fetched holds
	// each one's last fetched offset. Both are guarded by mu.
	names   []string
	fetched map[string]*atomic.Int64
}

// consumerGroup is where journal consumers run: their context (cancelled
// once they drained the journal at shutdown), the group they are waited
// for with, and where they report a failure.
type consumerGroup struct {
	ctx  context.Context
	wg   *sync.WaitGroup
	errs chan<- error
}

// New checks the plan against the registry and returns an engine; Run
// starts it.
func New(p *plan.Plan, opts Options) (*Engine, error) {
	if opts.Registry == nil {
		return nil, errors.New("engine: no module registry")
	}
	if opts.DataDir == "" {
		opts.DataDir = "data"
	}
	if opts.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("engine: node name: %w", err)
		}
		opts.Node = h
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AlertOutput == nil {
		opts.AlertOutput = os.Stdout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 2 * time.Minute
	}
	for _, s := range p.Sources {
		spec, ok := opts.Registry.Lookup(module.KindSource, s.Module)
		if !ok {
			return nil, fmt.Errorf("source %q (%s): unknown module %q", s.Name, s.Pos, s.Module)
		}
		if spec.NewCheck == nil && spec.NewListener == nil {
			return nil, fmt.Errorf("source %q (%s): module %s has no runtime in this build", s.Name, s.Pos, s.Module)
		}
	}
	return &Engine{plan: p, opts: opts, log: opts.Logger}, nil
}

// Run runs the pipeline until ctx is cancelled, then stops cleanly (see the
// package doc). It returns an error if the pipeline cannot start or a
// consumer failed.
func (e *Engine) Run(ctx context.Context) (err error) {
	e.start = time.Now()
	o := e.opts
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	jopts := o.Journal
	if jopts.Logger == nil {
		jopts.Logger = e.log.With("component", "journal")
	}
	jdir := filepath.Join(o.DataDir, "journal", bus.TopicSamples)
	e.journal, err = journal.Open(jdir, jopts)
	if err != nil {
		return fmt.Errorf("open journal %s: %w", jdir, err)
	}
	defer func() {
		if cerr := e.journal.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close journal: %w", cerr))
		}
	}()

	if o.Role != kafkarole.RoleCollector {
		// Opened whether or not the plan has rules: a deploy may add some.
		adir := filepath.Join(o.DataDir, "journal", bus.TopicAlerts)
		aopts := jopts
		aopts.Logger = e.log.With("component", "journal", "topic", bus.TopicAlerts)
		if e.alerts, err = journal.Open(adir, aopts); err != nil {
			return fmt.Errorf("open journal %s: %w", adir, err)
		}
		defer func() {
			if cerr := e.alerts.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close alerts journal: %w", cerr))
			}
		}()
	}

	e.metrics = metrics.New(time.Second)
	bopts := o.Batch
	bopts.Logger = e.log.With("component", "batcher")
	bopts.OnPublish = e.metrics.Published
	// The live/control plane: the plan's streams (clones), live stream
	// viewers (who see exactly the accepted batches: the plane taps the
	// journal) and, with a token, deploys and ad-hoc clones.
	// With a kafka sink, clones of sources other nodes run go over the
	// control topic, and their samples come back on the samples topic.
	lk, err := e.newLiveKafka()
	if err != nil {
		return err
	}
	var remote live.Remote
	if lk != nil {
		remote = lk.ctl
		defer lk.close()
	}
	plane, err := control.NewPlane(control.PlaneOptions{
		Plan: e.plan, Registry: o.Registry, Node: o.Node, DataDir: o.DataDir, Samples: e.journal,
		Token: o.Token, Sources: e, Remote: remote, Logger: e.log.With("component", "control"),
	})
	if err != nil {
		return fmt.Errorf("live/control plane: %w", err)
	}
	e.plane = plane
	planeOpen := true
	defer func() {
		if planeOpen {
			lk.stop()
			plane.Close()
		}
	}()
	if err := lk.start(plane); err != nil {
		return err
	}
	if o.Token == "" {
		e.log.Info("no control token: deploys and ad-hoc clones are refused (set RECON_TOKEN or --token-file)")
	}
	e.batcher = batch.New(plane.Tap(e.journal), bopts)
	e.metrics.WatchBatcher(e.batcher)
	e.metrics.WatchJournal(e.journal.Stats)

	// Consumers run on their own context: they are stopped only after the
	// batcher has published everything and they have drained it.
	cctx, cancelConsumers := context.WithCancel(context.Background())
	defer cancelConsumers()
	var cwg sync.WaitGroup
	// Room for a failure of each: the extra consumers, the archiver, the
	// alerts archiver, the rule engine (a rule engine failing beyond that
	// is logged: recond is already stopping).
	cerrs := make(chan error, len(o.Consumers)+3)
	e.consumers = consumerGroup{ctx: cctx, wg: &cwg, errs: cerrs}
	names, err := e.startConsumers(cctx, &cwg, cerrs)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.names = append(e.names, names...)
	e.mu.Unlock()
	if e.opts.Role != kafkarole.RoleCollector && len(e.plan.Rules) > 0 {
		if err := e.startRules(e.plan); err != nil {
			cancelConsumers()
			cwg.Wait()
			return err
		}
	}

	e.sched = scheduler.New(scheduler.Options{
		Concurrency: o.Concurrency,
		Observer:    e.metrics,
		Logger:      e.log.With("component", "scheduler"),
	})
	if err := e.addSources(); err != nil {
		cancelConsumers()
		cwg.Wait()
		return err
	}

	e.server = server.New(server.Options{Addr: o.Listen, Gatherer: e.metrics.Registry, Health: e.health,
		TLSCertFile: o.TLSCertFile, TLSKeyFile: o.TLSKeyFile, Logger: e.log.With("component", "listener")})
	plane.Register(e.server)
	if err := e.registerGraphPage(); err != nil {
		cancelConsumers()
		cwg.Wait()
		return err
	}
	if err := e.server.Start(); err != nil {
		cancelConsumers()
		cwg.Wait()
		return err
	}

	e.batcher.Start()
	sctx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	sdone := make(chan error, 1)
	go func() { sdone <- e.sched.Run(sctx) }()
	e.log.Info("recond running", "pipeline", e.plan.Pipeline, "sources", len(e.plan.Sources),
		"node", o.Node, "data", o.DataDir, "listen", e.server.Addr())
	if o.Ready != nil {
		o.Ready(e.server.Addr())
	}

	var consumerErr error
	select {
	case <-ctx.Done():
	case consumerErr = <-cerrs:
		e.log.Error("a consumer failed; stopping", "err", consumerErr)
	}
	e.log.Info("stopping: sources first")
	stopSources()
	lk.stop()     // no more clones asked for by other nodes
	plane.Close() // clones end and publish their last runs; streams end
	planeOpen = false
	if serr := <-sdone; serr != nil {
		err = errors.Join(err, serr)
	}
	e.log.Info("stopping: flushing batches")
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	if berr := e.batcher.Close(fctx); berr != nil {
		err = errors.Join(err, fmt.Errorf("flush batches: %w", berr))
	}
	cancel()
	e.log.Info("stopping: consumers drain the journal")
	e.drain()
	cancelConsumers()
	cwg.Wait()
	close(cerrs)
	for cerr := range cerrs {
		err = errors.Join(err, cerr)
	}
	err = errors.Join(err, consumerErr)
	shctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := e.server.Shutdown(shctx); serr != nil {
		e.log.Warn("listener shutdown", "err", serr)
	}
	if e.archiver != nil {
		e.log.Info("recond stopped", "samples_accepted", e.accepted(), "samples_archived", e.archiver.Stats().RowsWritten)
	} else { // a collector forwards to Kafka instead
		e.log.Info("recond stopped", "samples_accepted", e.accepted())
	}
	return err
}

// startConsumers opens the archiver and the extra consumers on the
// journal and starts them; it returns the consumer names.
func (e *Engine) startConsumers(ctx context.Context, wg *sync.WaitGroup, errs chan<- error) ([]string, error) {
	if e.opts.Role == kafkarole.RoleCollector {
		return e.startForwarder(ctx, wg, errs)
	}
	cfg, name, err := e.archiveConfig()
	if err != nil {
		return nil, err
	}
	e.fetched = map[string]*atomic.Int64{}
	jc, err := e.journal.Consumer(name)
	if err != nil {
		return nil, fmt.Errorf("archiver consumer: %w", err)
	}
	ac := e.track(name, jc)
	e.archiver, err = parquet.NewArchiver(archiverOptions(cfg, parquet.SamplesTable, ac, e.log.With("component", "archiver")))
	if err != nil {
		ac.Close()
		return nil, fmt.Errorf("archiver: %w", err)
	}
	e.metrics.WatchArchiver(e.archiver.Stats)
	e.log.Info("archive", "dir", cfg.Dir)
	type run struct {
		name string
		c    bus.Consumer
		fn   func(context.Context, bus.Consumer) error
	}
	runs := []run{{name, ac, func(ctx context.Context, _ bus.Consumer) error { return e.archiver.Run(ctx) }}}
	extra := e.opts.Consumers
	{
		// The alerts table is archived like the samples, from the alerts
		// topic, with its own checkpoint.
		aj, err := e.alerts.Consumer(name)
		if err != nil {
			ac.Close()
			return nil, fmt.Errorf("alerts archiver consumer: %w", err)
		}
		alertArchiver, err := parquet.NewArchiver(archiverOptions(cfg, parquet.AlertsTable, aj, e.log.With("component", "archiver")))
		if err != nil {
			ac.Close()
			aj.Close()
			return nil, fmt.Errorf("alerts archiver: %w", err)
		}
		runs = append(runs, run{"alerts-" + name, aj, func(ctx context.Context, _ bus.Consumer) error { return alertArchiver.Run(ctx) }})
	}
	for _, c := range extra {
		jc, err := e.journal.Consumer(c.Name)
		if err != nil {
			for _, r := range runs {
				r.c.Close()
			}
			return nil, fmt.Errorf("consumer %s: %w", c.Name, err)
		}
		runs = append(runs, run{c.Name, e.track(c.Name, jc), c.Run})
	}

	names := make([]string, 0, len(runs))
	for _, r := range runs {
		names = append(names, r.name)
		wg.Go(func() {
			defer r.c.Close()
			if err := r.fn(ctx, r.c); err != nil {
				errs <- fmt.Errorf("consumer %s: %w", r.name, err)
			}
		})
	}
	return names, nil
}

// startForwarder starts a collector's only journal consumer: the forwarder
// to the samples topic of the plan's kafka sink.
func (e *Engine) startForwarder(ctx context.Context, wg *sync.WaitGroup, errs chan<- error) ([]string, error) {
	log := e.log.With("component", "kafka")
	sink, err := kafkarole.SamplesSink(e.plan)
	if err != nil {
		return nil, err
	}
	origin, err := kafkarole.LoadOrigin(e.opts.DataDir)
	if err != nil {
		return nil, err
	}
	col, err := kafkarole.NewCollector(kafkarole.CollectorOptions{Journal: e.journal, Kafka: sink.SamplesOptions(log), Origin: origin, Logger: log})
	if err != nil {
		return nil, err
	}
	e.metrics.Registry.MustRegister(col)
	e.fetched = map[string]*atomic.Int64{}
	jc, err := e.journal.Consumer(col.Name())
	if err != nil {
		return nil, fmt.Errorf("forwarder consumer: %w", err)
	}
	c := e.track(col.Name(), jc)
	wg.Go(func() {
		defer c.Close()
		if err := col.Forward(ctx, c); err != nil {
			errs <- fmt.Errorf("consumer %s: %w", col.Name(), err)
		}
	})
	log.Info("forwarding to Kafka", "topic", sink.SamplesTopic, "brokers", sink.Conn.Brokers)
	return []string{col.Name()}, nil
}

// liveKafka carries temporal streaming across machines over the plan's
// kafka sink (runtime/live/livekafka): clone requests on the control topic,
// and the samples topic followed into the live hub. Its methods do nothing
// on a nil *liveKafka (no kafka sink).
type liveKafka struct {
	ctl *livekafka.Control
	fol *livekafka.Follower
	// samples is the samples topic the follower reads.
	samples kafkabus.Options
	node    string
	log     *slog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// liveRetry is the pause before a control or follower loop that failed
// reads its topic again.
const liveRetry = 2 * time.Second

// newLiveKafka connects the control topic of the plan's kafka sink that
// carries samples; nil when the plan has none.
func (e *Engine) newLiveKafka() (*liveKafka, error) {
	cs, err := kafkasink.Configs(e.plan)
	if err != nil {
		return nil, fmt.Errorf("live over Kafka: %w", err)
	}
	for _, c := range cs {
		if !c.Samples {
			continue
		}
		log := e.log.With("component", "live-kafka")
		ctlOpts := c.Conn
		ctlOpts.Topic = livekafka.DefaultTopic
		ctl, err := livekafka.New(livekafka.Options{Kafka: ctlOpts, Node: e.opts.Node, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("live over Kafka (sink %s): %w", c.Name, err)
		}
		samples := c.Conn
		samples.Topic = c.SamplesTopic
		return &liveKafka{ctl: ctl, samples: samples, node: e.opts.Node, log: log}, nil
	}
	return nil, nil
}

// start runs the control loop (clones other nodes ask for) and the follower
// of the samples topic (samples of remote clones and sources for this
// node's viewers) until stop.
func (lk *liveKafka) start(p *control.Plane) error {
	if lk == nil {
		return nil
	}
	fol, err := livekafka.NewFollower(livekafka.FollowerOptions{Kafka: lk.samples, Node: lk.node, Hub: p.Hub, Logger: lk.log})
	if err != nil {
		return fmt.Errorf("live over Kafka: follow %s: %w", lk.samples.Topic, err)
	}
	lk.fol = fol
	ctx, cancel := context.WithCancel(context.Background())
	lk.cancel = cancel
	lk.wg.Go(func() {
		lk.loop(ctx, "control topic", func(ctx context.Context) error { return lk.ctl.Run(ctx, p.Clones) })
	})
	lk.wg.Go(func() { lk.loop(ctx, "samples topic (follower)", lk.fol.Run) })
	lk.log.Info("live over Kafka", "control_topic", livekafka.DefaultTopic, "samples_topic", lk.samples.Topic)
	return nil
}

// loop runs fn until ctx ends, reading the topic again after a failure.
func (lk *liveKafka) loop(ctx context.Context, what string, fn func(context.Context) error) {
	for {
		err := fn(ctx)
		if ctx.Err() != nil || err == nil { // stopped, or its reader closed
			return
		}
		lk.log.Error("live over Kafka: reading the "+what+" failed; retrying", "retry_in", liveRetry, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(liveRetry):
		}
	}
}

// stop ends both loops and waits for them; the control topic stays open
// for the stop messages of the clones this node asked for.
func (lk *liveKafka) stop() {
	if lk == nil || lk.cancel == nil {
		return
	}
	lk.cancel()
	lk.wg.Wait()
}

// close stops the loops and closes the topics.
func (lk *liveKafka) close() {
	if lk == nil {
		return
	}
	lk.once.Do(func() {
		lk.stop()
		var errs []error
		if lk.fol != nil {
			errs = append(errs, lk.fol.Close())
		}
		if err := errors.Join(append(errs, lk.ctl.Close())...); err != nil {
			lk.log.Warn("live over Kafka: closing the topics", "err", err)
		}
	})
}

// RulesConsumer is the journal consumer name of the rule engine.
const RulesConsumer = "rules"

// ruleRunner runs the plan's rules on the samples topic, notifying the
// plan's webhook, stdout and exec sinks; the state lives in DATA/rules.
//
// A deploy that changes the rules or the notification sinks restarts the
// rule engine on the new plan: the stopped engine saves its state and
// commits its position; the new one restores that state (rules.New:
// unchanged rules keep their windows and pending `for` timers, changed
// ones start afresh, firing groups of removed ones are resolved) and reads
// on from the same journal consumer, so no sample is skipped or counted
// twice, and the next alert goes to the new sinks.
type ruleRunner struct {
	e   *Engine
	c   bus.Consumer
	log *slog.Logger
	// metrics outlive the engines a deploy replaces.
	metrics *rules.Metrics

	mu     sync.Mutex
	cancel context.CancelFunc // of the running engine; nil when none runs
	done   chan struct{}
}

// startRules runs p's rules, opening the rule engine's journal consumer the
// first time; with a rule engine running, it is stopped first. The caller
// holds e.mu or runs before the listener serves.
func (e *Engine) startRules(p *plan.Plan) error {
	notifiers, err := rules.BuildNotifiers(p, e.opts.AlertOutput, e.log.With("component", "rules"))
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	if e.rules == nil {
		jc, err := e.journal.Consumer(RulesConsumer)
		if err != nil {
			closeNotifiers(notifiers, e.log)
			return fmt.Errorf("consumer %s: %w", RulesConsumer, err)
		}
		r := &ruleRunner{e: e, c: e.track(RulesConsumer, jc), log: e.log.With("component", "rules"), metrics: rules.NewMetrics()}
		e.metrics.Registry.MustRegister(r.metrics)
		e.names = append(e.names, RulesConsumer)
		e.rules = r
		g := e.consumers
		g.wg.Go(func() {
			<-g.ctx.Done() // the journal is drained: the last engine stops
			r.stop()
			if err := r.c.Close(); err != nil {
				r.log.Warn("closing the rule engine's journal consumer", "err", err)
			}
		})
	}
	e.rules.stop()
	return e.rules.start(p, notifiers)
}

// start runs a rule engine on p with notifiers (closed when it stops).
func (r *ruleRunner) start(p *plan.Plan, notifiers map[string]alert.Notifier) error {
	g := r.e.consumers
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.ctx.Err() != nil {
		closeNotifiers(notifiers, r.log)
		return errors.New("rules: recond is stopping")
	}
	eng, err := rules.New(rules.Options{
		Plan: p, DataDir: filepath.Join(r.e.opts.DataDir, "rules"), Logger: r.e.log, // rules.New names its component
		DefaultLateness: r.e.lateness(p), Samples: r.c, Alerts: r.e.plane.AlertTap(r.e.alerts),
		Notifiers: notifiers, Clock: time.Now, Metrics: r.metrics,
	})
	if err != nil {
		closeNotifiers(notifiers, r.log)
		return err
	}
	ctx, cancel := context.WithCancel(g.ctx)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	g.wg.Go(func() {
		defer close(done)
		defer closeNotifiers(notifiers, r.log)
		defer eng.Close()
		if err := eng.Run(ctx); err != nil {
			select {
			case g.errs <- fmt.Errorf("consumer %s: %w", RulesConsumer, err):
			default: // the engine is stopping on an earlier failure
				r.log.Error("rule engine failed", "err", err)
			}
		}
	})
	return nil
}

// stop ends the running rule engine (it saves its state and commits its
// position) and waits for it.
func (r *ruleRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel, r.done = nil, nil
}

// closeNotifiers closes the notifiers that hold resources.
func closeNotifiers(ns map[string]alert.Notifier, log *slog.Logger) {
	for name, n := range ns {
		if cl, ok := n.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				log.Warn("closing alert sink", "sink", name, "err", err)
			}
		}
	}
}

// accepted counts the samples accepted by the bus: the sources' batches and
// the clones' (which publish their own).
func (e *Engine) accepted() int64 {
	return e.batcher.Accepted() + e.plane.Clones.Accepted()
}

// lateness is how late a sample may reach the rule engine and still count:
// a check's samples carry its start time and are published after it ends
// and the batcher flushes, so the longest timeout plus the flush interval
// plus a margin (rules may set their own, larger, lateness).
func (e *Engine) lateness(p *plan.Plan) time.Duration {
	longest := time.Duration(0)
	for _, s := range p.Sources {
		longest = max(longest, s.Timeout.D())
	}
	flush := e.opts.Batch.MaxDelay
	if flush <= 0 {
		flush = batch.DefaultMaxDelay
	}
	return longest + flush + time.Second
}

// archiveConfig returns the archive settings of the plan's parquet sink
// (the implied default when it declares none) and its consumer name.
func (e *Engine) archiveConfig() (parquet.Config, string, error) {
	for _, s := range e.plan.Sinks {
		if s.Kind != parquet.Spec.Name {
			continue
		}
		attrs, err := module.DecodeAttrs(parquet.Spec, s.Attrs)
		if err != nil {
			return parquet.Config{}, "", fmt.Errorf("sink %q (%s): %w", s.Name, s.Pos, err)
		}
		return parquet.ConfigFromAttrs(attrs, e.opts.DataDir), ArchiverConsumer, nil
	}
	return parquet.DefaultConfig(filepath.Join(e.opts.DataDir, parquet.DefaultPath)), ArchiverConsumer, nil
}

// registerGraphPage serves the graph page and its history API
// (runtime/graphpage) over the plan's archive.
func (e *Engine) registerGraphPage() error {
	cfg, _, err := e.archiveConfig()
	if err != nil {
		return err
	}
	arch, err := history.New(history.Options{Dir: cfg.Dir, Logger: e.log.With("component", "history")})
	if err != nil {
		return fmt.Errorf("graph page: %w", err)
	}
	page, err := graphpage.New(graphpage.Options{Archive: arch, Logger: e.log.With("component", "graphpage")})
	if err != nil {
		return fmt.Errorf("graph page: %w", err)
	}
	page.Register(e.server)
	return nil
}

// addSources builds every source of the plan and schedules it.
func (e *Engine) addSources() error {
	for _, ps := range e.plan.Sources {
		src, err := e.buildSource(e.plan.Pipeline, ps)
		if err != nil {
			return err
		}
		if err := e.sched.Add(src); err != nil {
			return err
		}
	}
	return nil
}

// buildSource builds the check or listener of one plan source.
func (e *Engine) buildSource(pipeline string, s plan.Source) (scheduler.Source, error) {
	spec, ok := e.opts.Registry.Lookup(module.KindSource, s.Module)
	if !ok || (spec.NewCheck == nil && spec.NewListener == nil) {
		return scheduler.Source{}, fmt.Errorf("source %q (%s): module %q has no runtime in this build", s.Name, s.Pos, s.Module)
	}
	attrs, err := module.DecodeAttrs(spec, s.Attrs)
	if err != nil {
		return scheduler.Source{}, fmt.Errorf("source %q (%s): %w", s.Name, s.Pos, err)
	}
	target := s.Target
	if target == "" {
		// Modules that declare their own target attribute (selfcheck).
		target = attrs.String("target")
	}
	env := module.Env{
		Pipeline: pipeline, Source: s.Name, Node: e.opts.Node, Target: target,
		Period: s.Period.D(), Timeout: s.Timeout.D(), Attrs: attrs, DataDir: e.opts.DataDir,
		Logger: e.log.With("source", s.Name, "module", s.Module),
	}
	src := scheduler.Source{
		Name: s.Name, Module: s.Module, Period: env.Period, Timeout: env.Timeout,
		Writer: e.batcher.Writer(batch.Identity{Pipeline: pipeline, Source: s.Name, Module: s.Module, Target: target, Node: e.opts.Node}),
	}
	if spec.NewListener != nil && (spec.Passive || spec.NewCheck == nil) {
		src.Listener, err = spec.NewListener(env)
	} else {
		src.Check, err = spec.NewCheck(env)
	}
	if err != nil {
		return scheduler.Source{}, fmt.Errorf("source %q (%s): %w", s.Name, s.Pos, err)
	}
	return src, nil
}

// Apply swaps a deployed plan in while recond runs (control.Applier):
// added sources start, removed ones stop, changed ones are replaced after
// their running run ends, unchanged ones keep their schedule; when the
// rules or the notification sinks change, the rule engine restarts on the
// new plan with its saved state (see ruleRunner). Every new source is built
// first, so a failure changes nothing. What cannot change in place is
// refused (control.ErrRefused): the pipeline name, the archive (parquet)
// sink and the kafka sink.
func (e *Engine) Apply(_ context.Context, p *plan.Plan, c control.Change) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.refuse(p, c); err != nil {
		return err
	}
	byName := map[string]plan.Source{}
	for _, s := range p.Sources {
		byName[s.Name] = s
	}
	var built []scheduler.Source
	for _, name := range append(append([]string(nil), c.Sources.Added...), c.Sources.Changed...) {
		ps, ok := byName[name]
		if !ok {
			return fmt.Errorf("deploy: source %q is not in the plan", name)
		}
		src, err := e.buildSource(p.Pipeline, ps)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		built = append(built, src)
	}
	if e.opts.Role != kafkarole.RoleCollector && (!c.Rules.Empty() || !c.Sinks.Empty()) &&
		(e.rules != nil || len(p.Rules) > 0) {
		if err := e.startRules(p); err != nil {
			// The previous rules run on: a deploy changes all or nothing.
			if rerr := e.startRules(e.plan); rerr != nil {
				e.log.Error("deploy: the previous rules could not restart", "err", rerr)
				err = errors.Join(err, fmt.Errorf("restarting the previous rules: %w", rerr))
			}
			return fmt.Errorf("deploy: %w", err)
		}
	}
	for _, name := range c.Sources.Removed {
		e.sched.Remove(name)
	}
	for _, src := range built {
		if err := e.sched.Replace(src); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
	}
	e.plan = p
	e.log.Info("plan deployed", "hash", p.Hash, "sources", c.Sources.String(), "rules", c.Rules.String(), "sinks", c.Sinks.String())
	return nil
}

// refuse says why p cannot be swapped in (wrapping control.ErrRefused), or
// nil. The archive and the Kafka bus stay as recond started: the archiver
// holds open files and its journal checkpoint under the archive's path, and
// the Kafka forwarder, the control topic and the live follower hold
// connections and consumer groups of one cluster; swapping them would risk
// samples archived twice or not at all, so they change with a restart.
func (e *Engine) refuse(p *plan.Plan, c control.Change) error {
	if p.Pipeline != e.plan.Pipeline {
		return fmt.Errorf("%w: the pipeline name changes (%q → %q): restart recond with the new plan", control.ErrRefused, e.plan.Pipeline, p.Pipeline)
	}
	fixed := map[string]bool{kafkasink.Spec.Name: true}
	if e.opts.Role != kafkarole.RoleCollector { // a collector archives nothing
		fixed[parquet.Spec.Name] = true
	}
	sinks := func(p *plan.Plan) map[string]plan.Sink {
		m := make(map[string]plan.Sink, len(p.Sinks))
		for _, s := range p.Sinks {
			m[s.Name] = s
		}
		return m
	}
	was, now := sinks(e.plan), sinks(p)
	var reasons []string
	for _, name := range slices.Concat(c.Sinks.Added, c.Sinks.Removed, c.Sinks.Changed) {
		o, n := was[name], now[name]
		switch {
		case !fixed[o.Kind] && !fixed[n.Kind]:
		case o.Kind == "":
			reasons = append(reasons, fmt.Sprintf("sink %q (%s) is added", name, n.Kind))
		case n.Kind == "":
			reasons = append(reasons, fmt.Sprintf("sink %q (%s) is removed", name, o.Kind))
		case o.Kind != n.Kind:
			reasons = append(reasons, fmt.Sprintf("sink %q changes kind (%s → %s)", name, o.Kind, n.Kind))
		default:
			reasons = append(reasons, fmt.Sprintf("sink %q (%s): attribute %s changes", name, n.Kind, strings.Join(changedAttrs(o.Attrs, n.Attrs), ", ")))
		}
	}
	if len(reasons) > 0 {
		return fmt.Errorf("%w: %s; the archive (parquet) and kafka sinks change only with a restart of recond", control.ErrRefused, strings.Join(reasons, "; "))
	}
	return nil
}

// changedAttrs names the attributes that differ between two attribute
// objects (sorted).
func changedAttrs(was, now json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(was, &a) // validated plans: objects
	_ = json.Unmarshal(now, &b)
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !jsonEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// trackedConsumer records the offset of the last message fetched, so that
// shutdown knows when a consumer has read everything.
type trackedConsumer struct {
	bus.Consumer
	fetched *atomic.Int64
}

func (c trackedConsumer) Fetch(ctx context.Context) (bus.Message, error) {
	m, err := c.Consumer.Fetch(ctx)
	if err == nil {
		c.fetched.Store(m.Offset)
	}
	return m, err
}

func (e *Engine) track(name string, c bus.Consumer) bus.Consumer {
	f := new(atomic.Int64)
	f.Store(-1)
	e.fetched[name] = f
	return trackedConsumer{Consumer: c, fetched: f}
}

// drain waits until every consumer has fetched (or committed) everything
// the journal holds, or DrainTimeout passed. Cancelled consumers then write
// out and commit what they hold.
func (e *Engine) drain() {
	deadline := time.Now().Add(e.opts.DrainTimeout)
	for {
		st := e.journal.Stats()
		lag := int64(0)
		e.mu.Lock()
		for _, cs := range st.Consumers {
			for _, n := range e.names {
				if cs.Name == n && cs.Lag > 0 && e.fetched[n].Load() < st.LastOffset {
					lag += cs.Lag
				}
			}
		}
		e.mu.Unlock()
		if lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.log.Warn("consumers did not drain the journal in time; the rest is processed at the next start", "lag_batches", lag, "timeout", e.opts.DrainTimeout)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *Engine) health() server.Health {
	e.mu.Lock()
	pipeline := e.plan.Pipeline
	e.mu.Unlock()
	h := server.Health{
		Status: "ok", Pipeline: pipeline, Node: e.opts.Node, Version: e.opts.Version,
		Uptime: time.Since(e.start).Seconds(), Sources: len(e.sched.Names()), Accepted: e.accepted(),
	}
	if e.archiver != nil { // a collector forwards to Kafka instead
		st := e.archiver.Stats()
		h.Archived = st.RowsWritten
		if st.LastError != "" && st.LastErrorAt.After(st.LastFlushAt) {
			h.Status = "degraded"
			h.Reason = "archive: " + st.LastError
		}
	}
	return h
}

// Scheduler returns the running scheduler (for plan deploys and clones).
// Valid once Ready was called.
func (e *Engine) Scheduler() *scheduler.Scheduler { return e.sched }

// Server returns the listener, for other parts of recond to add routes.
// Valid once Ready was called.
func (e *Engine) Server() *server.Server { return e.server }

// archiverOptions configures an archiver of a node's journal. One writer,
// waited for: on one node the batcher, the journal and the sources share
// the cores with the archiver, and encoding while Run fetches the next
// range gained no rate but held twice the rows (docs/benchmarks.md).
func archiverOptions(cfg parquet.Config, table parquet.Table, c bus.Consumer, log *slog.Logger) parquet.Options {
	return parquet.Options{Config: cfg, Table: table, Consumer: c, Writers: 1, WaitForWriters: true, Logger: log}
}
