// Package scheduler runs sources: checks on their period, listeners as
// long-lived goroutines.
//
// Each check runs at slots k·period + offset, where the offset is a
// deterministic hash of the source name spread over the period, so that
// sources of the same period do not all start at second 0. A run gets its
// timeout as a context deadline and never overlaps the previous run of the
// same source: a slot that comes while the source is still running is
// skipped and counted. At most Concurrency checks run at once. Every run
// writes status, available and duration rows besides the module's own.
//
// Sources are added, replaced and removed while the scheduler runs.
package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

// Writer is the sample writer of one source. SetTime sets the timestamp
// of rows written with Ts 0 (the run's start); *batch.Writer implements it.
type Writer interface {
	sample.Writer
	SetTime(t time.Time)
}

// Source is one scheduled or passive source.
type Source struct {
	Name   string
	Module string
	// Period and Timeout of a check; a check's Timeout defaults to its
	// Period.
	Period  time.Duration
	Timeout time.Duration
	// Exactly one of Check and Listener is set.
	Check    module.Check
	Listener module.Listener
	Writer   Writer
}

// Observer receives the scheduler's figures (for /metrics). Methods are
// called concurrently.
type Observer interface {
	// RunStarted reports a check run's start lateness behind its slot.
	RunStarted(module string, late time.Duration)
	// RunDone reports a finished run.
	RunDone(module string, status sample.Status, took time.Duration)
	// RunSkipped reports a slot skipped because the previous run was still
	// going.
	RunSkipped(module string)
	// Panicked reports a check or listener that panicked.
	Panicked(module string)
	// ListenerFailed reports a listener that returned an error and will be
	// restarted.
	ListenerFailed(module string)
}

// Clock is the scheduler's time source; tests inject their own.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives after d and a stop function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Options configure a Scheduler.
type Options struct {
	// Concurrency bounds the checks running at once (default 256).
	Concurrency int
	// LateAfter: a run starting this long after its slot counts as late
	// (default 1 s). Lateness is observed for every run regardless.
	LateAfter time.Duration
	// ListenerBackoff is the first wait before restarting a failed
	// listener (default 1 s, doubling up to ListenerBackoffMax, default 1 min).
	ListenerBackoff, ListenerBackoffMax time.Duration
	Observer                            Observer
	Clock                               Clock
	Logger                              *slog.Logger
}

// ErrDuplicate is returned by Add for a name already scheduled.
var ErrDuplicate = errors.New("scheduler: source already exists")

// Offset returns the start offset of a source within its period.
func Offset(name string, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(period))
}

// nextSlot returns the first slot of (period, offset) strictly after t.
func nextSlot(t time.Time, period, offset time.Duration) time.Time {
	ns := t.UnixNano() - int64(offset)
	k := ns / int64(period)
	if ns < 0 && ns%int64(period) != 0 {
		k--
	}
	return time.Unix(0, (k+1)*int64(period)+int64(offset))
}

// entry is one source in the scheduler.
type entry struct {
	src    Source
	offset time.Duration
	next   time.Time
	index  int // heap index, -1 when not queued
	// running is set while a run is going; guarded by Scheduler.mu.
	running bool
	removed bool
	// done is closed when the current run (or the listener) ends.
	done   chan struct{}
	cancel context.CancelFunc // listeners only
}

// Scheduler runs sources. Create it with New, start it with Run.
type Scheduler struct {
	opts Options
	sem  chan struct{}

	mu      sync.Mutex
	entries map[string]*entry
	queue   entryHeap
	wake    chan struct{}
	ctx     context.Context // set by Run
	wg      sync.WaitGroup
}

// New returns a scheduler; sources may be added before or after Run.
func New(opts Options) *Scheduler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 256
	}
	if opts.LateAfter <= 0 {
		opts.LateAfter = time.Second
	}
	if opts.ListenerBackoff <= 0 {
		opts.ListenerBackoff = time.Second
	}
	if opts.ListenerBackoffMax <= 0 {
		opts.ListenerBackoffMax = time.Minute
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Scheduler{
		opts:    opts,
		sem:     make(chan struct{}, opts.Concurrency),
		entries: map[string]*entry{},
		wake:    make(chan struct{}, 1),
	}
}

// Add schedules src. A check's first run is at its next slot.
func (s *Scheduler) Add(src Source) error {
	if err := validate(src); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[src.Name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicate, src.Name)
	}
	s.addLocked(src)
	return nil
}

// Replace swaps the source of the same name for src (or adds it). A run of
// the old source that is going finishes first; the new one starts at its
// next slot after that.
func (s *Scheduler) Replace(src Source) error {
	if err := validate(src); err != nil {
		return err
	}
	old := s.detach(src.Name)
	if old != nil {
		<-old.done
		closeSource(old.src, s.opts.Logger)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[src.Name]; dup {
		return fmt.Errorf("%w: %q (added concurrently)", ErrDuplicate, src.Name)
	}
	s.addLocked(src)
	return nil
}

// Remove stops src's future runs, waits for a running one (or the
// listener) to end and closes the module. It reports whether name existed.
func (s *Scheduler) Remove(name string) bool {
	e := s.detach(name)
	if e == nil {
		return false
	}
	<-e.done
	closeSource(e.src, s.opts.Logger)
	return true
}

// Names returns the names of the sources scheduled.
func (s *Scheduler) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.entries))
	for n := range s.entries {
		out = append(out, n)
	}
	return out
}

func validate(src Source) error {
	switch {
	case src.Name == "":
		return errors.New("scheduler: source without a name")
	case src.Writer == nil:
		return fmt.Errorf("scheduler: source %q: no writer", src.Name)
	case (src.Check == nil) == (src.Listener == nil):
		return fmt.Errorf("scheduler: source %q: exactly one of check and listener must be set", src.Name)
	case src.Check != nil && src.Period <= 0:
		return fmt.Errorf("scheduler: source %q: period must be positive", src.Name)
	}
	return nil
}

func (s *Scheduler) addLocked(src Source) {
	if src.Check != nil && src.Timeout <= 0 {
		src.Timeout = src.Period
	}
	e := &entry{src: src, index: -1, done: make(chan struct{})}
	close(e.done) // nothing running yet
	s.entries[src.Name] = e
	if src.Listener != nil {
		if s.ctx != nil && s.ctx.Err() == nil {
			s.startListenerLocked(e)
		}
		return
	}
	e.offset = Offset(src.Name, src.Period)
	e.next = nextSlot(s.opts.Clock.Now(), src.Period, e.offset)
	heap.Push(&s.queue, e)
	s.poke()
}

// detach removes name from the scheduler and returns its entry, whose done
// channel closes when nothing of it runs any more.
func (s *Scheduler) detach(name string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[name]
	if e == nil {
		return nil
	}
	delete(s.entries, name)
	e.removed = true
	if e.index >= 0 {
		heap.Remove(&s.queue, e.index)
	}
	if e.cancel != nil {
		e.cancel()
	}
	s.poke()
	return e
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches runs until ctx is cancelled, then waits for the runs and
// listeners going to end (their contexts are cancelled too) and closes
// every module. A Scheduler runs once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return errors.New("scheduler: already running")
	}
	s.ctx = ctx
	for _, e := range s.entries {
		if e.src.Listener != nil {
			s.startListenerLocked(e)
		}
	}
	s.mu.Unlock()

	for {
		s.mu.Lock()
		var wait time.Duration = -1
		now := s.opts.Clock.Now()
		for s.queue.Len() > 0 {
			e := s.queue[0]
			if e.next.After(now) {
				wait = e.next.Sub(now)
				break
			}
			slot := e.next
			e.next = nextSlot(now, e.src.Period, e.offset)
			heap.Fix(&s.queue, 0)
			if e.running {
				s.opts.Observer.RunSkipped(e.src.Module)
				s.opts.Logger.Debug("run skipped: the previous run is still going", "source", e.src.Name, "slot", slot)
				continue
			}
			e.running = true
			e.done = make(chan struct{})
			s.wg.Add(1)
			go s.runCheck(ctx, e, slot)
		}
		s.mu.Unlock()

		var timer <-chan time.Time
		stop := func() bool { return false }
		if wait >= 0 {
			timer, stop = s.opts.Clock.NewTimer(wait)
		}
		select {
		case <-ctx.Done():
			stop()
			s.wg.Wait()
			s.mu.Lock()
			entries := make([]*entry, 0, len(s.entries))
			for _, e := range s.entries {
				entries = append(entries, e)
			}
			s.mu.Unlock()
			for _, e := range entries {
				closeSource(e.src, s.opts.Logger)
			}
			return nil
		case <-s.wake:
			stop()
		case <-timer:
		}
	}
}

func (s *Scheduler) runCheck(ctx context.Context, e *entry, slot time.Time) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		e.running = false
		close(e.done)
		s.mu.Unlock()
	}()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.sem }()
	start := s.opts.Clock.Now()
	late := start.Sub(slot)
	s.opts.Observer.RunStarted(e.src.Module, late)
	if late > s.opts.LateAfter {
		s.opts.Logger.Warn("run started late", "source", e.src.Name, "late", late)
	}
	src := e.src
	src.Writer.SetTime(start)
	res := s.invoke(ctx, src)
	took := s.opts.Clock.Now().Sub(start)
	WriteResult(src.Writer, res, took)
	src.Writer.SetTime(time.Time{})
	s.opts.Observer.RunDone(src.Module, res.Status, took)
}

// invoke runs one check with its timeout, turning a panic into an unknown
// status.
func (s *Scheduler) invoke(ctx context.Context, src Source) (res sample.Result) {
	ctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.opts.Observer.Panicked(src.Module)
			s.opts.Logger.Error("check panicked", "source", src.Name, "module", src.Module, "panic", p, "stack", string(debug.Stack()))
			res = sample.Result{Status: sample.Unknown, Message: fmt.Sprintf("check panicked: %v", p)}
		}
	}()
	return src.Check.Run(ctx, src.Writer)
}

// WriteResult writes the status, available and duration rows of a run.
func WriteResult(w sample.Writer, res sample.Result, took time.Duration) {
	var labels [1]sample.Label
	r := sample.Row{Metric: sample.MetricStatus, Value: float64(res.Status), HasValue: true, Text: res.Status.String(), HasText: true}
	if res.Message != "" {
		labels[0] = sample.Label{Key: sample.LabelMessage, Value: res.Message}
		r.Labels = labels[:]
	}
	w.Write(&r)
	avail := 0.0
	if res.Available {
		avail = 1
	}
	r = sample.Row{Metric: sample.MetricAvailable, Value: avail, HasValue: true}
	w.Write(&r)
	r = sample.Row{Metric: sample.MetricDuration, Value: took.Seconds(), HasValue: true, Unit: "s"}
	w.Write(&r)
}

func (s *Scheduler) startListenerLocked(e *entry) {
	ctx, cancel := context.WithCancel(s.ctx)
	e.cancel = cancel
	e.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(e.done)
		s.listen(ctx, e.src)
	}()
}

// listen runs a listener until ctx ends, restarting it with backoff when it
// fails or panics. A listener that ran for longer than the maximum backoff
// restarts after the first backoff again.
func (s *Scheduler) listen(ctx context.Context, src Source) {
	backoff := s.opts.ListenerBackoff
	for {
		start := s.opts.Clock.Now()
		err := s.listenOnce(ctx, src)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("listener stopped on its own")
		}
		s.opts.Observer.ListenerFailed(src.Module)
		if s.opts.Clock.Now().Sub(start) > s.opts.ListenerBackoffMax {
			backoff = s.opts.ListenerBackoff
		}
		s.opts.Logger.Error("listener failed; restarting", "source", src.Name, "module", src.Module, "retry_in", backoff, "err", err)
		timer, stop := s.opts.Clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-timer:
		}
		backoff = min(backoff*2, s.opts.ListenerBackoffMax)
	}
}

func (s *Scheduler) listenOnce(ctx context.Context, src Source) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.opts.Observer.Panicked(src.Module)
			s.opts.Logger.Error("listener panicked", "source", src.Name, "module", src.Module, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return src.Listener.Listen(ctx, src.Writer)
}

func closeSource(src Source, log *slog.Logger) {
	var c any = src.Check
	if src.Listener != nil {
		c = src.Listener
	}
	if cl, ok := c.(module.Closer); ok {
		if err := cl.Close(); err != nil {
			log.Warn("closing source", "source", src.Name, "err", err)
		}
	}
}

type nopObserver struct{}

func (nopObserver) RunStarted(string, time.Duration)             {}
func (nopObserver) RunDone(string, sample.Status, time.Duration) {}
func (nopObserver) RunSkipped(string)                            {}
func (nopObserver) Panicked(string)                              {}
func (nopObserver) ListenerFailed(string)                        {}

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
