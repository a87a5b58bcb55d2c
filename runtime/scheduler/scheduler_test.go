package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
)

// recWriter records rows and the run start times it was given.
type recWriter struct {
	sampletest.Recorder
	mu     sync.Mutex
	starts []time.Time
}

func (w *recWriter) SetTime(t time.Time) {
	if t.IsZero() {
		return
	}
	w.mu.Lock()
	w.starts = append(w.starts, t)
	w.mu.Unlock()
}

func (w *recWriter) Starts() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.starts...)
}

type checkFunc func(ctx context.Context, w sample.Writer) sample.Result

func (f checkFunc) Run(ctx context.Context, w sample.Writer) sample.Result { return f(ctx, w) }

type countObserver struct {
	started, done, skipped, panics, listenerFails atomic.Int64
}

func (o *countObserver) RunStarted(string, time.Duration)             { o.started.Add(1) }
func (o *countObserver) RunDone(string, sample.Status, time.Duration) { o.done.Add(1) }
func (o *countObserver) RunSkipped(string)                            { o.skipped.Add(1) }
func (o *countObserver) Panicked(string)                              { o.panics.Add(1) }
func (o *countObserver) ListenerFailed(string)                        { o.listenerFails.Add(1) }

// start runs s until the test ends.
func start(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOffsetsSpreadAcrossThePeriod(t *testing.T) {
	const period = time.Minute
	buckets := make([]int, 6)
	for i := range 600 {
		off := Offset(fmt.Sprintf("web%d", i), period)
		if off < 0 || off >= period {
			t.Fatalf("offset %v outside [0, %v)", off, period)
		}
		buckets[off/(10*time.Second)]++
	}
	for i, n := range buckets {
		// 100 expected per 10 s bucket; a bunched schedule would leave some
		// nearly empty.
		if n < 50 {
			t.Errorf("only %d of 600 sources start in second %d..%d of the minute: %v", n, i*10, i*10+10, buckets)
		}
	}
	if a, b := Offset("web1", period), Offset("web"+"1", period); a != b {
		t.Errorf("offset is not deterministic: %v then %v", a, b)
	}
	if got := nextSlot(time.Unix(100, 0), 10*time.Second, 3*time.Second); !got.Equal(time.Unix(103, 0)) {
		t.Errorf("next slot after 100 s of (10 s, +3 s) = %v, want 103 s", got.Unix())
	}
}

// fakeClock fires timers only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), c: ch})
	return ch, func() bool { return true }
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// With an injected clock, a source runs exactly at its slots k·period+offset.
func TestRunsAtItsSlots(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	s := New(Options{Clock: clock})
	w := &recWriter{}
	ok := checkFunc(func(context.Context, sample.Writer) sample.Result { return sample.Result{Available: true} })
	if err := s.Add(Source{Name: "web", Module: "http", Period: 10 * time.Second, Check: ok, Writer: w}); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	off := Offset("web", 10*time.Second)
	for i := range 3 {
		clock.Advance(nextSlot(clock.Now(), 10*time.Second, off).Sub(clock.Now()))
		waitFor(t, "a run", func() bool { return len(w.Metric(sample.MetricStatus)) == i+1 })
	}
	for i, st := range w.Starts() {
		if rel := time.Duration(st.UnixNano()) % (10 * time.Second); rel != off {
			t.Errorf("run %d started at %v into its period, want the offset %v", i, rel, off)
		}
	}
}

func TestNoOverlapAndSkips(t *testing.T) {
	obs := &countObserver{}
	s := New(Options{Observer: obs})
	var running, maxRunning atomic.Int64
	slow := checkFunc(func(ctx context.Context, w sample.Writer) sample.Result {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(35 * time.Millisecond)
		running.Add(-1)
		return sample.Result{Available: true}
	})
	w := &recWriter{}
	if err := s.Add(Source{Name: "slow", Module: "tcp", Period: 10 * time.Millisecond, Timeout: time.Second, Check: slow, Writer: w}); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "5 runs", func() bool { return obs.done.Load() >= 5 })
	if maxRunning.Load() != 1 {
		t.Fatalf("%d runs of one source overlapped", maxRunning.Load())
	}
	if obs.skipped.Load() == 0 {
		t.Fatal("a run longer than the period skipped no slot")
	}
}

func TestTimeoutAndStatusRows(t *testing.T) {
	s := New(Options{})
	w := &recWriter{}
	hang := checkFunc(func(ctx context.Context, w sample.Writer) sample.Result {
		sample.WriteValue(w, "connect", 0.1, "s")
		<-ctx.Done()
		return sample.Result{Status: sample.Critical, Message: "timeout: " + ctx.Err().Error()}
	})
	if err := s.Add(Source{Name: "hang", Module: "tcp", Period: 50 * time.Millisecond, Timeout: 5 * time.Millisecond, Check: hang, Writer: w}); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "a run", func() bool { return len(w.Metric(sample.MetricDuration)) >= 1 })
	st := w.Metric(sample.MetricStatus)[0]
	if st.Value != 2 || st.Text != "critical" {
		t.Errorf("status row %+v, want 2 critical", st)
	}
	if msg, _ := sampletest.Label(st, sample.LabelMessage); !strings.Contains(msg, "deadline exceeded") {
		t.Errorf("status message %q: the run did not get its timeout as a deadline", msg)
	}
	if av := w.Metric(sample.MetricAvailable)[0]; av.Value != 0 {
		t.Errorf("available %v, want 0", av.Value)
	}
	if d := w.Metric(sample.MetricDuration)[0]; d.Unit != "s" || d.Value <= 0 {
		t.Errorf("duration row %+v", d)
	}
	if len(w.Metric("connect")) == 0 {
		t.Error("the module's own rows are missing")
	}
}

func TestPanicIsUnknownAndOthersCarryOn(t *testing.T) {
	obs := &countObserver{}
	s := New(Options{Observer: obs})
	bad, good := &recWriter{}, &recWriter{}
	boom := checkFunc(func(context.Context, sample.Writer) sample.Result { panic("nil map") })
	fine := checkFunc(func(context.Context, sample.Writer) sample.Result { return sample.Result{Available: true} })
	for _, src := range []Source{
		{Name: "bad", Module: "http", Period: 10 * time.Millisecond, Check: boom, Writer: bad},
		{Name: "good", Module: "http", Period: 10 * time.Millisecond, Check: fine, Writer: good},
	} {
		if err := s.Add(src); err != nil {
			t.Fatal(err)
		}
	}
	start(t, s)
	waitFor(t, "runs of both", func() bool {
		return len(bad.Metric(sample.MetricStatus)) >= 2 && len(good.Metric(sample.MetricStatus)) >= 2
	})
	st := bad.Metric(sample.MetricStatus)[0]
	msg, _ := sampletest.Label(st, sample.LabelMessage)
	if st.Text != "unknown" || !strings.Contains(msg, "panicked: nil map") {
		t.Errorf("panicking check reported %q %q", st.Text, msg)
	}
	if good.Metric(sample.MetricStatus)[0].Text != "ok" || obs.panics.Load() < 2 {
		t.Errorf("good source status %q, panics counted %d", good.Metric(sample.MetricStatus)[0].Text, obs.panics.Load())
	}
}

type closingCheck struct {
	runs   atomic.Int64
	closed atomic.Bool
	tag    string
}

func (c *closingCheck) Run(_ context.Context, w sample.Writer) sample.Result {
	c.runs.Add(1)
	sample.WriteText(w, "tag", c.tag)
	return sample.Result{Available: true}
}

func (c *closingCheck) Close() error { c.closed.Store(true); return nil }

func TestAddReplaceRemoveWhileRunning(t *testing.T) {
	s := New(Options{})
	start(t, s)
	w := &recWriter{}
	v1 := &closingCheck{tag: "v1"}
	src := Source{Name: "dyn", Module: "http", Period: 5 * time.Millisecond, Check: v1, Writer: w}
	if err := s.Add(src); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(src); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Add of the same name: %v, want ErrDuplicate", err)
	}
	waitFor(t, "runs of v1", func() bool { return v1.runs.Load() >= 2 })
	v2 := &closingCheck{tag: "v2"}
	src.Check = v2
	if err := s.Replace(src); err != nil {
		t.Fatal(err)
	}
	after := v1.runs.Load()
	if !v1.closed.Load() {
		t.Error("replaced check was not closed")
	}
	waitFor(t, "runs of v2", func() bool { return v2.runs.Load() >= 2 })
	if v1.runs.Load() != after {
		t.Error("the replaced check ran again")
	}
	if !s.Remove("dyn") {
		t.Fatal("Remove of a scheduled source reported false")
	}
	n := v2.runs.Load()
	time.Sleep(30 * time.Millisecond)
	if v2.runs.Load() != n || !v2.closed.Load() {
		t.Fatalf("removed source ran %d more times (closed %v)", v2.runs.Load()-n, v2.closed.Load())
	}
	if s.Remove("dyn") {
		t.Error("second Remove reported true")
	}
}

type flakyListener struct {
	calls atomic.Int64
}

func (l *flakyListener) Listen(ctx context.Context, w sample.Writer) error {
	if l.calls.Add(1) == 1 {
		return errors.New("bind: address already in use")
	}
	sample.WriteValue(w, "trap", 1, "")
	<-ctx.Done()
	return nil
}

func TestListenerRestartedAfterFailure(t *testing.T) {
	obs := &countObserver{}
	s := New(Options{Observer: obs, ListenerBackoff: 5 * time.Millisecond})
	l := &flakyListener{}
	w := &recWriter{}
	if err := s.Add(Source{Name: "traps", Module: "snmp_trap", Listener: l, Writer: w}); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	waitFor(t, "the restarted listener's row", func() bool { return len(w.Metric("trap")) == 1 })
	if obs.listenerFails.Load() != 1 || l.calls.Load() != 2 {
		t.Fatalf("failures %d, calls %d; want 1 and 2", obs.listenerFails.Load(), l.calls.Load())
	}
}

func TestConcurrencyBounded(t *testing.T) {
	s := New(Options{Concurrency: 2})
	var running, maxRunning atomic.Int64
	var runs atomic.Int64
	c := checkFunc(func(context.Context, sample.Writer) sample.Result {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(3 * time.Millisecond)
		running.Add(-1)
		runs.Add(1)
		return sample.Result{}
	})
	for i := range 8 {
		if err := s.Add(Source{Name: fmt.Sprintf("c%d", i), Module: "tcp", Period: 5 * time.Millisecond, Check: c, Writer: &recWriter{}}); err != nil {
			t.Fatal(err)
		}
	}
	start(t, s)
	waitFor(t, "40 runs", func() bool { return runs.Load() >= 40 })
	if maxRunning.Load() > 2 {
		t.Fatalf("%d checks ran at once with Concurrency 2", maxRunning.Load())
	}
}
