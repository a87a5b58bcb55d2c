package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
)

// Defaults of CloneOptions.
const (
	DefaultMinPeriod = time.Second
	DefaultTTL       = 10 * time.Minute
	DefaultMaxTTL    = 24 * time.Hour
	DefaultGrace     = 15 * time.Second
)

// Errors of Clones.Start and Clones.Attach; the API maps them to statuses.
var (
	ErrUnknownSource = errors.New("unknown source")
	ErrNotClonable   = errors.New("source cannot be cloned")
	ErrBadRequest    = errors.New("invalid clone request")
	ErrNoClone       = errors.New("no such clone")
	ErrClosed        = errors.New("clones: closed")
)

// Remote forwards clones of sources this node does not run to the nodes
// that do (the Kafka control topic).
type Remote interface {
	// Start asks the collectors that run info.Source to run the clone.
	Start(ctx context.Context, info Info) error
	// Stop ends the clone id on every collector.
	Stop(ctx context.Context, id string) error
}

// CloneOptions configure Clones.
type CloneOptions struct {
	// Registry builds the checks (catalog.Default()).
	Registry *module.Registry
	// Node names this recond in the rows' node column.
	Node    string
	DataDir string
	// Archive receives the rows of archived clones: the samples bus, behind
	// a Tap so that viewers see them too.
	Archive bus.Producer
	// Hub receives the rows of clones with archive = false.
	Hub *Hub
	// MinPeriod is the shortest clone period accepted (default 1s).
	MinPeriod time.Duration
	// DefaultTTL applies to ad-hoc clones that ask for none (default 10m);
	// MaxTTL bounds the ttl they may ask for (default 24h).
	DefaultTTL, MaxTTL time.Duration
	// Grace is how long an ad-hoc clone waits for its first viewer before
	// it ends (default 15s).
	Grace time.Duration
	// Remote, when set, takes clones of sources not in the local plan.
	Remote Remote
	Logger *slog.Logger
}

// Request asks for an ad-hoc clone.
type Request struct {
	Source string        `json:"source"`
	Period plan.Duration `json:"period"`
	TTL    plan.Duration `json:"ttl,omitempty"`
	// Archive defaults to true: clone samples are archived like any other.
	Archive *bool `json:"archive,omitempty"`
}

// Info describes a running clone.
type Info struct {
	ID string `json:"id"`
	// Name is the source name of the clone's samples.
	Name    string        `json:"name"`
	Source  string        `json:"source"`
	Period  plan.Duration `json:"period"`
	TTL     plan.Duration `json:"ttl,omitempty"`
	Expires time.Time     `json:"expires,omitzero"`
	Archive bool          `json:"archive"`
	// Declared clones come from the plan's streams; the others are ad hoc.
	Declared bool `json:"declared"`
	// Remote clones run on the collectors that run their source.
	Remote  bool `json:"remote,omitempty"`
	Viewers int  `json:"viewers"`
}

type clone struct {
	info Info
	// def identifies what the clone runs (a declared stream: stream +
	// source; others: the source), to keep it running across a deploy that
	// does not change it.
	def string
	// adhoc clones end when their last viewer leaves; remote-requested
	// ones (run for another node) only at their ttl or a stop message.
	adhoc  bool
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop returned
	ended  chan struct{} // closed when the clone ended
	timers []*time.Timer
	seen   bool // a viewer attached at least once
}

// Clones runs clones: the plan's streams and ad-hoc clones requested over
// the API. A clone runs its source's check with the same attributes at its
// own period under its own name; the source keeps its own schedule.
type Clones struct {
	opts CloneOptions
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	accepted atomic.Int64 // rows of archived clones the bus accepted

	mu       sync.Mutex
	pipeline string
	sources  map[string]plan.Source
	byID     map[string]*clone
	closed   bool
}

// NewClones returns a clone manager; give it a plan with SetPlan.
func NewClones(opts CloneOptions) (*Clones, error) {
	if opts.Registry == nil || opts.Archive == nil || opts.Hub == nil {
		return nil, errors.New("clones: Registry, Archive and Hub are required")
	}
	if opts.MinPeriod <= 0 {
		opts.MinPeriod = DefaultMinPeriod
	}
	if opts.DefaultTTL <= 0 {
		opts.DefaultTTL = DefaultTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Clones{
		opts: opts, log: opts.Logger,
		ctx: ctx, cancel: cancel,
		sources: map[string]plan.Source{}, byID: map[string]*clone{},
	}, nil
}

// SetPlan makes p the plan clones are taken from and runs its streams:
// new streams start, removed ones stop, changed ones (stream or cloned
// source) restart, unchanged ones keep running untouched. A stream whose
// check cannot be built is reported and the others still run.
func (c *Clones) SetPlan(p *plan.Plan) error {
	sources := make(map[string]plan.Source, len(p.Sources))
	for _, s := range p.Sources {
		sources[s.Name] = s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.pipeline, c.sources = p.Pipeline, sources
	want := map[string]plan.Stream{}
	for _, st := range p.Streams {
		want[st.Name] = st
	}
	for id, cl := range c.byID {
		if !cl.info.Declared {
			if src, ok := sources[cl.info.Source]; !cl.info.Remote && (!ok || sourceDef(src) != cl.def) {
				c.endLocked(cl, "its source was removed or changed by a new plan")
			}
			continue
		}
		st, ok := want[id]
		if ok && c.streamDef(st) == cl.def {
			delete(want, id) // unchanged: keeps running
			continue
		}
		c.endLocked(cl, "stream removed or changed by a new plan")
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		st := want[n]
		src, ok := sources[st.Clone]
		if !ok {
			errs = append(errs, fmt.Errorf("stream %s (%s): clones %q: %w", st.Name, st.Pos, st.Clone, ErrUnknownSource))
			continue
		}
		info := Info{ID: st.Name, Name: st.Name, Source: st.Clone, Period: st.Period, TTL: st.TTL,
			Archive: st.Archive, Declared: true}
		if _, err := c.startLocked(info, src, c.streamDef(st), false); err != nil {
			errs = append(errs, fmt.Errorf("stream %s (%s): %w", st.Name, st.Pos, err))
		}
	}
	return errors.Join(errs...)
}

// sourceDef identifies a source's definition, without its position.
func sourceDef(src plan.Source) string {
	src.Pos = ""
	b, _ := json.Marshal(src)
	return string(b)
}

// streamDef identifies a declared stream's definition: the stream and the
// source it clones, without positions.
func (c *Clones) streamDef(st plan.Stream) string {
	st.Pos = ""
	b, _ := json.Marshal(st)
	return string(b) + sourceDef(c.sources[st.Clone])
}

// Start starts an ad-hoc clone; it ends at its ttl, when its last viewer
// leaves, or when no viewer attached within the grace period.
func (c *Clones) Start(ctx context.Context, req Request) (Info, error) {
	info, err := c.check(req)
	if err != nil {
		return Info{}, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Info{}, ErrClosed
	}
	src, local := c.sources[req.Source]
	if local {
		info, err = c.startLocked(info, src, sourceDef(src), true)
		c.mu.Unlock()
		return info, err
	}
	if c.opts.Remote == nil {
		c.mu.Unlock()
		return Info{}, fmt.Errorf("%w %q: not in the running plan", ErrUnknownSource, req.Source)
	}
	info.Remote = true
	cl := c.registerLocked(info, "", true)
	close(cl.done) // nothing runs here
	info = cl.info
	c.mu.Unlock()
	if err := c.opts.Remote.Start(ctx, info); err != nil {
		c.end(info.ID, "forwarding the request failed")
		return Info{}, fmt.Errorf("clone %s of %s: %w", info.ID, info.Source, err)
	}
	return info, nil
}

// check validates req and fills in the defaults and the clone's identity.
func (c *Clones) check(req Request) (Info, error) {
	if req.Source == "" {
		return Info{}, fmt.Errorf("%w: source is required", ErrBadRequest)
	}
	period := req.Period.D()
	if period < c.opts.MinPeriod {
		return Info{}, fmt.Errorf("%w: period %v is shorter than the minimum %v", ErrBadRequest, period, c.opts.MinPeriod)
	}
	ttl := req.TTL.D()
	if ttl == 0 {
		ttl = c.opts.DefaultTTL
	}
	if ttl < 0 || ttl > c.opts.MaxTTL {
		return Info{}, fmt.Errorf("%w: ttl %v is outside (0, %v]", ErrBadRequest, ttl, c.opts.MaxTTL)
	}
	archive := req.Archive == nil || *req.Archive
	id := newID()
	return Info{ID: id, Name: AdHocName(req.Source, id), Source: req.Source, Period: plan.Duration(period),
		TTL: plan.Duration(ttl), Archive: archive}, nil
}

// RunFor runs a clone another node asked for (over the control topic) if
// this node runs its source; it ends at its ttl or on Stop. It reports
// whether the source is here.
func (c *Clones) RunFor(info Info) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, ErrClosed
	}
	src, ok := c.sources[info.Source]
	if !ok {
		return false, nil
	}
	if _, dup := c.byID[info.ID]; dup {
		return true, nil
	}
	if info.Period.D() < c.opts.MinPeriod || info.TTL.D() <= 0 || info.TTL.D() > c.opts.MaxTTL {
		return true, fmt.Errorf("%w: period %v (minimum %v), ttl %v (at most %v)", ErrBadRequest,
			info.Period.D(), c.opts.MinPeriod, info.TTL.D(), c.opts.MaxTTL)
	}
	info.Remote, info.Declared = false, false
	_, err := c.startLocked(info, src, sourceDef(src), false)
	return true, err
}

// AdHocName is the source name of the samples of ad-hoc clone id of
// source: "SOURCE~ID".
func AdHocName(source, id string) string { return source + "~" + id }

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// registerLocked records a clone and arms its ttl (and, for ad-hoc ones,
// the grace period).
func (c *Clones) registerLocked(info Info, def string, adhoc bool) *clone {
	cl := &clone{info: info, def: def, adhoc: adhoc, cancel: func() {},
		done: make(chan struct{}), ended: make(chan struct{})}
	if ttl := info.TTL.D(); ttl > 0 {
		cl.info.Expires = time.Now().Add(ttl).UTC()
		cl.timers = append(cl.timers, time.AfterFunc(ttl, func() { c.end(info.ID, "ttl reached") }))
	}
	if adhoc {
		cl.timers = append(cl.timers, time.AfterFunc(c.opts.Grace, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if cur := c.byID[info.ID]; cur == cl && !cl.seen {
				c.endLocked(cl, "no viewer attached")
			}
		}))
	}
	c.byID[info.ID] = cl
	return cl
}

func (c *Clones) startLocked(info Info, src plan.Source, def string, adhoc bool) (Info, error) {
	if src.Period == 0 {
		return Info{}, fmt.Errorf("%w: %q is a passive source (module %s); only checks run on a period", ErrNotClonable, src.Name, src.Module)
	}
	if _, dup := c.byID[info.ID]; dup {
		return Info{}, fmt.Errorf("%w: clone %q already runs", ErrBadRequest, info.ID)
	}
	check, err := c.build(info, src)
	if err != nil {
		return Info{}, err
	}
	cl := c.registerLocked(info, def, adhoc)
	ctx, cancel := context.WithCancel(c.ctx)
	cl.cancel = cancel
	prod := c.opts.Archive
	if !info.Archive {
		prod = c.opts.Hub
	}
	w := newRowWriter(c.pipeline, info.Name, src.Module, src.Target, c.opts.Node)
	timeout := src.Timeout.D()
	if timeout <= 0 || timeout > info.Period.D() {
		timeout = info.Period.D()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(cl.done)
		c.run(ctx, info, check, w, prod, timeout)
	}()
	c.log.Info("clone started", "clone", info.Name, "source", info.Source, "period", info.Period.D(),
		"ttl", info.TTL.D(), "archive", info.Archive, "declared", info.Declared)
	return cl.info, nil
}

func (c *Clones) build(info Info, src plan.Source) (module.Check, error) {
	spec, ok := c.opts.Registry.Lookup(module.KindSource, src.Module)
	if !ok || spec.NewCheck == nil {
		return nil, fmt.Errorf("%w: %q: module %q has no check", ErrNotClonable, src.Name, src.Module)
	}
	attrs, err := module.DecodeAttrs(spec, src.Attrs)
	if err != nil {
		return nil, fmt.Errorf("clone of %s: %w", src.Name, err)
	}
	check, err := spec.NewCheck(module.Env{
		Pipeline: c.pipeline, Source: info.Name, Node: c.opts.Node, Target: src.Target,
		Period: info.Period.D(), Timeout: src.Timeout.D(), Attrs: attrs, DataDir: c.opts.DataDir,
		Logger: c.opts.Logger.With("source", info.Name, "module", src.Module),
	})
	if err != nil {
		return nil, fmt.Errorf("clone of %s: %w", src.Name, err)
	}
	return check, nil
}

// run runs check every period until ctx ends. Runs never overlap: a run
// longer than the period skips the ticks it covered.
func (c *Clones) run(ctx context.Context, info Info, check module.Check, w *rowWriter, prod bus.Producer, timeout time.Duration) {
	defer w.release()
	if cl, ok := check.(module.Closer); ok {
		defer func() {
			if err := cl.Close(); err != nil {
				c.log.Warn("closing a clone's check", "clone", info.Name, "err", err)
			}
		}()
	}
	if info.Declared {
		// Declared streams start spread over their period (by a hash of
		// their name) so that many of them do not run in bursts; ad-hoc
		// clones start at once, for the viewer waiting.
		h := fnv.New64a()
		h.Write([]byte(info.Name))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(h.Sum64() % uint64(info.Period.D()))):
		}
	}
	t := time.NewTicker(info.Period.D())
	defer t.Stop()
	for {
		c.runOnce(ctx, info, check, w, prod, timeout)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOnce runs the check once and publishes its rows as one batch. A run
// under way when the clone ends completes and its rows are published:
// nothing measured is discarded.
func (c *Clones) runOnce(ctx context.Context, info Info, check module.Check, w *rowWriter, prod bus.Producer, timeout time.Duration) {
	base := context.WithoutCancel(ctx)
	start := time.Now()
	w.begin(start)
	rctx, cancel := context.WithTimeout(base, timeout)
	res := safeRun(rctx, check, w)
	cancel()
	w.result(res, time.Since(start))
	rec := w.record()
	defer rec.Release()
	pctx, cancel := context.WithTimeout(base, 30*time.Second)
	defer cancel()
	if err := prod.Publish(pctx, info.Name, rec); err != nil {
		c.log.Error("clone samples not accepted", "clone", info.Name, "rows", rec.NumRows(), "err", err)
		return
	}
	if info.Archive {
		c.accepted.Add(rec.NumRows())
	}
}

// safeRun runs check, turning a panic into an unknown status.
func safeRun(ctx context.Context, check module.Check, w sample.Writer) (res sample.Result) {
	defer func() {
		if p := recover(); p != nil {
			res = sample.Result{Status: sample.Unknown, Message: fmt.Sprintf("check panicked: %v", p)}
		}
	}()
	return check.Run(ctx, w)
}

// Attach counts a viewer of clone id. Call detach when the viewer leaves;
// ended is closed when the clone ends.
func (c *Clones) Attach(id string) (info Info, ended <-chan struct{}, detach func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.byID[id]
	if !ok {
		return Info{}, nil, nil, fmt.Errorf("%w %q", ErrNoClone, id)
	}
	cl.seen = true
	cl.info.Viewers++
	var once sync.Once
	detach = func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			cl.info.Viewers--
			if cl.adhoc && cl.info.Viewers == 0 && c.byID[id] == cl {
				c.endLocked(cl, "last viewer left")
			}
		})
	}
	return cl.info, cl.ended, detach, nil
}

// Stop ends clone id and waits until its last run is published. It
// reports whether the clone existed.
func (c *Clones) Stop(id string) bool {
	c.mu.Lock()
	cl, ok := c.byID[id]
	if ok {
		c.endLocked(cl, "stopped")
	}
	c.mu.Unlock()
	if ok {
		<-cl.done
	}
	return ok
}

func (c *Clones) end(id, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.byID[id]; ok {
		c.endLocked(cl, reason)
	}
}

func (c *Clones) endLocked(cl *clone, reason string) {
	delete(c.byID, cl.info.ID)
	for _, t := range cl.timers {
		t.Stop()
	}
	cl.cancel()
	close(cl.ended)
	c.log.Info("clone ended", "clone", cl.info.Name, "reason", reason)
	if cl.info.Remote {
		id := cl.info.ID
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.opts.Remote.Stop(ctx, id); err != nil {
				c.log.Warn("telling collectors to end a clone failed; it ends at its ttl", "clone", id, "err", err)
			}
		}()
	}
}

// Accepted returns the number of rows of archived clones the bus accepted
// (besides the batcher's: clone runs publish their own batches).
func (c *Clones) Accepted() int64 { return c.accepted.Load() }

// List returns the running clones, by id.
func (c *Clones) List() []Info {
	c.mu.Lock()
	out := make([]Info, 0, len(c.byID))
	for _, cl := range c.byID {
		out = append(out, cl.info)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close ends every clone and waits until their last runs are published.
func (c *Clones) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for _, cl := range c.byID {
			c.endLocked(cl, "shutting down")
		}
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
