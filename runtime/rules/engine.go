// Package rules is Recon's fault-detection engine: it reads sample batches
// (from the bus, a test script or the archive), keeps event-time windows per
// rule and group, evaluates severity clauses at every window end, runs the
// alert state machine (for, clear, absent, patterns, flapping, repeat) and
// emits alert events. State is persisted atomically under the data dir and
// restored on restart; see docs/rules.md for the semantics.
package rules

import (
	"cmp"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
)

// Options configure an Engine.
type Options struct {
	// Plan holds the rules (and the pipeline name events carry).
	Plan *plan.Plan
	// DataDir is where the state snapshot lives (StateFile); "" keeps state
	// in memory only.
	DataDir string
	Logger  *slog.Logger
	// Metrics, when set, receives the engine's counters (recond's
	// /metrics); it may outlive the engine.
	Metrics *Metrics
	// DefaultLateness applies to rules that set no lateness. Live runs want
	// a few seconds (the batcher and bus delay samples); tests and
	// backtests use 0.
	DefaultLateness time.Duration
	// Workers bounds the goroutines that work on rules in parallel
	// (default GOMAXPROCS).
	Workers int

	// The rest is for Run.

	// Samples is the samples topic consumer; Run checkpoints it only after
	// the state (and the alert events it produced) is durable.
	Samples bus.Consumer
	// Alerts receives every alert event as an Arrow record of alert.Schema;
	// nil: not published.
	Alerts bus.Producer
	// Notifiers are the notification sinks by name (a rule's `notify`).
	Notifiers map[string]alert.Notifier
	// Clock is the wall clock Run passes to Eval, so that windows close and
	// absent() fires while no samples arrive; nil: event time only.
	Clock func() time.Time
	// CheckpointEvery bounds the time between snapshots while samples flow
	// (default 5s); a batch that produced alerts is checkpointed at once.
	CheckpointEvery time.Duration
	// TickEvery is how often Run evaluates while no samples arrive
	// (default 1s).
	TickEvery time.Duration
}

// Engine evaluates a plan's rules. Ingest, Eval, Save and Stats must not be
// called concurrently; Run calls them itself.
type Engine struct {
	opts    Options
	log     *slog.Logger
	rules   []*rule
	routes  map[string]map[string][]*rule
	sel     [][]int32
	active  []*rule
	workers int
	b       batch
	schema  *arrow.Schema

	// Bus positions reflected in the state: a replayed message at or before
	// them is skipped, so at-least-once input never counts twice.
	applied map[int32]int64
	outbox  []*pending
	nextID  uint64
	// reported is what report last added to opts.Metrics, by rule.
	reported []ruleCounters
}

// pending is an alert event not yet published and notified everywhere.
type pending struct {
	seq       uint64
	Event     alert.Event
	Published bool
	Sinks     []string // notifiers still to deliver to
}

// Stats are counters of one rule.
type Stats struct {
	Rule string
	// Samples were accepted into windows; Late arrived behind the watermark
	// (event time older than the newest time seen minus the lateness) and
	// were dropped from evaluation.
	Samples, Late uint64
	Groups        int
}

// New compiles the plan's rules and restores the state saved under
// opts.DataDir: rules with an unchanged definition keep their windows and
// alert states; firing groups of rules that were removed or changed are
// resolved (queued for Run to publish).
func New(opts Options) (*Engine, error) {
	if opts.Plan == nil {
		return nil, fmt.Errorf("rules: no plan")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 5 * time.Second
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	e := &Engine{
		opts: opts, log: opts.Logger.With("component", "rules"),
		routes: map[string]map[string][]*rule{}, applied: map[int32]int64{}, workers: opts.Workers,
	}
	names := map[string]bool{}
	for i := range opts.Plan.Rules {
		pr := &opts.Plan.Rules[i]
		if names[pr.Name] {
			return nil, fmt.Errorf("rule %s (%s): declared twice", pr.Name, pr.Pos)
		}
		names[pr.Name] = true
		r, err := compileRule(i, opts.Plan.Pipeline, pr, opts.DefaultLateness)
		if err != nil {
			return nil, fmt.Errorf("rule %s (%s): %w", pr.Name, pr.Pos, err)
		}
		e.rules = append(e.rules, r)
	}
	e.sel = make([][]int32, len(e.rules))
	if opts.DataDir != "" {
		if err := e.restore(); err != nil {
			return nil, err
		}
	}
	// Restored counts were reported by the process that counted them.
	e.reported = make([]ruleCounters, len(e.rules))
	for i, r := range e.rules {
		e.reported[i] = ruleCounters{samples: r.seen, late: r.late}
	}
	return e, nil
}

// Ingest adds a batch of sample.Schema rows to the windows of the rules that
// select them. Samples behind a rule's watermark are counted as late and
// dropped. Windows are evaluated by Eval.
func (e *Engine) Ingest(rec arrow.RecordBatch) error {
	if err := e.bind(rec); err != nil {
		return err
	}
	b := &e.b
	n := int(rec.NumRows())
	var routes []*rule
	prevSrc, prevMod := "", ""
	for i := 0; i < n; i++ {
		src, mod := b.source.Value(i), b.module.Value(i)
		if i == 0 || src != prevSrc || mod != prevMod {
			routes = e.route(src, mod)
			prevSrc, prevMod = src, mod
		}
		for _, r := range routes {
			e.sel[r.idx] = append(e.sel[r.idx], int32(i))
		}
	}
	e.active = e.active[:0]
	for k, r := range e.rules {
		if len(e.sel[k]) > 0 {
			e.active = append(e.active, r)
		}
	}
	e.parallel(e.active, n >= parallelRows, func(r *rule) {
		r.ingestRows(b, e.sel[r.idx])
		e.sel[r.idx] = e.sel[r.idx][:0]
	})
	return nil
}

// parallelRows is the batch size from which rules are worked on in
// parallel.
const parallelRows = 4096

// parallel runs f for every rule, spread over the workers when worth it.
// Rules are independent: each is touched by one goroutine.
func (e *Engine) parallel(rules []*rule, worth bool, f func(r *rule)) {
	w := min(e.workers, len(rules))
	if !worth || w < 2 {
		for _, r := range rules {
			f(r)
		}
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < len(rules); i += w {
				f(rules[i])
			}
		}()
	}
	wg.Wait()
}

// bind points the batch view at rec's columns.
func (e *Engine) bind(rec arrow.RecordBatch) error {
	if s := rec.Schema(); s != e.schema {
		if err := checkSchema(s); err != nil {
			return err
		}
		e.schema = s
	}
	b := &e.b
	b.ts = rec.Column(sample.IdxTs).(*array.Timestamp).TimestampValues()
	str := func(i int) *array.String { return rec.Column(i).(*array.String) }
	b.pipeline, b.source, b.module = str(sample.IdxPipeline), str(sample.IdxSource), str(sample.IdxModule)
	b.target, b.metric, b.node = str(sample.IdxTarget), str(sample.IdxMetric), str(sample.IdxNode)
	b.text, b.unit = str(sample.IdxText), str(sample.IdxUnit)
	b.value = rec.Column(sample.IdxValue).(*array.Float64)
	b.labels = rec.Column(sample.IdxLabels).(*array.Map)
	b.lkeys = b.labels.Keys().(*array.String)
	b.litems = b.labels.Items().(*array.String)
	b.loffs = b.labels.Offsets()
	return nil
}

func checkSchema(s *arrow.Schema) error {
	if s.NumFields() != sample.Schema.NumFields() {
		return fmt.Errorf("rules: batch has %d columns, want the %d of %s", s.NumFields(), sample.Schema.NumFields(), sample.SchemaVersion)
	}
	for i, f := range sample.Schema.Fields() {
		g := s.Field(i)
		if g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return fmt.Errorf("rules: batch column %d is %s %s, want %s %s (%s)", i, g.Name, g.Type, f.Name, f.Type, sample.SchemaVersion)
		}
	}
	return nil
}

func (e *Engine) route(src, mod string) []*rule {
	bySrc := e.routes[src]
	if rs, ok := bySrc[mod]; ok {
		return rs
	}
	var rs []*rule
	for _, r := range e.rules {
		if r.selects(src, mod) {
			rs = append(rs, r)
		}
	}
	// The keys are copied: src and mod point into the batch's buffers.
	if bySrc == nil {
		bySrc = map[string][]*rule{}
		e.routes[strings.Clone(src)] = bySrc
	}
	bySrc[strings.Clone(mod)] = rs
	return rs
}

// Eval evaluates every window that ended at or before each rule's
// watermark: the newest event time it accepted, or now when later, minus
// its lateness. A zero now uses event time only (tests, backtests). It
// returns the alert events in time order.
func (e *Engine) Eval(now time.Time) []alert.Event {
	e.active = e.active[:0]
	for _, r := range e.rules {
		if !now.IsZero() {
			t := now.UnixNano()
			if t > r.evalMax {
				r.evalMax = t
			}
			if r.start == none {
				r.start = t
			}
		}
		if wm := r.watermark(); wm != none && (r.next == none || r.next <= wm) {
			e.active = append(e.active, r)
		}
	}
	e.parallel(e.active, len(e.active) > 1, func(r *rule) { r.out = r.advance(r.out[:0]) })
	var out []alert.Event
	for _, r := range e.active {
		out = append(out, r.out...)
	}
	slices.SortStableFunc(out, func(a, b alert.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
	return out
}

// Stats returns the counters of every rule, in plan order.
func (e *Engine) Stats() []Stats {
	out := make([]Stats, len(e.rules))
	for i, r := range e.rules {
		out[i] = Stats{Rule: r.name, Samples: r.seen, Late: r.late, Groups: len(r.groups)}
	}
	return out
}

// Close releases the engine. It does not save: Run saves before it
// returns, and a caller driving Ingest/Eval calls Save itself.
func (e *Engine) Close() error {
	e.rules, e.routes, e.outbox = nil, nil, nil
	return nil
}

// maxTime is the largest event or evaluation time any rule has seen.
func (e *Engine) maxTime() time.Time {
	t := int64(none)
	for _, r := range e.rules {
		t = max(t, r.maxSeen, r.evalMax)
	}
	if t == none {
		return time.Time{}
	}
	return time.Unix(0, t)
}
