package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

// tempPrefix names state files being written.
const tempPrefix = ".state-"

// State is what the generator keeps durable under the data directory.
type State struct {
	// Next is the first sequence number not reserved yet: a restarted
	// generator starts there.
	Next uint64 `json:"next"`
	// Accepted is the highest sequence number known accepted by the bus,
	// -1 when none.
	Accepted int64 `json:"accepted"`
}

// StatePath returns where the generator of pipeline/source keeps its state.
func StatePath(dataDir, pipeline, source string) string {
	return filepath.Join(dataDir, "generator", pipeline, source+".json")
}

// ReadState reads a generator state file; a missing file is the zero state.
func ReadState(path string) (State, error) {
	st := State{Accepted: -1}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("generator state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return State{Accepted: -1}, fmt.Errorf("generator state %s: %w", path, err)
	}
	if st.Accepted < -1 || (st.Accepted >= 0 && uint64(st.Accepted) >= st.Next) {
		return State{Accepted: -1}, fmt.Errorf("generator state %s: accepted %d not below next %d", path, st.Accepted, st.Next)
	}
	return st, nil
}

// progress is implemented by the runtime's batch writer: rows written and
// rows the bus accepted, in write order.
type progress interface {
	Written() int64
	Accepted() int64
}

type mark struct {
	written int64
	lastSeq int64
}

// Generator is the generator check.
type Generator struct {
	env      module.Env
	rate     float64
	series   []string
	metrics  []string
	pattern  string
	path     string
	block    uint64
	rng      *rand.Rand
	next     uint64  // next sequence number to write
	reserved uint64  // first number not reserved
	carry    float64 // fraction of a sample owed from the last run
	lastRun  time.Time
	marks    []mark
	accepted atomic.Int64
	row      sample.Row
}

// New builds a generator from its attributes, resuming its sequence from
// the state file.
func New(env module.Env) (*Generator, error) {
	a := env.Attrs
	g := &Generator{
		env:     env,
		rate:    a.Float(FieldRate),
		pattern: a.String(FieldPattern),
		path:    StatePath(env.DataDir, env.Pipeline, env.Source),
		rng:     rand.New(rand.NewPCG(1, 2)),
	}
	if g.pattern == "" {
		g.pattern = PatternSeq
	}
	nSeries, nMetrics := max(a.Int(FieldSeries), 1), max(a.Int(FieldMetrics), 1)
	g.series = make([]string, nSeries)
	for i := range g.series {
		g.series[i] = "series-" + strconv.Itoa(i)
	}
	g.metrics = []string{MetricSeq}
	if nMetrics > 1 {
		g.metrics = make([]string, nMetrics)
		for i := range g.metrics {
			g.metrics[i] = "m" + strconv.Itoa(i)
		}
	}
	period := env.Period
	if period <= 0 {
		period = time.Second
	}
	g.block = max(uint64(g.rate*period.Seconds()*4), 1024)
	st, err := ReadState(g.path)
	if err != nil {
		return nil, fmt.Errorf("generator %q: %w", env.Source, err)
	}
	// A crash between creating and renaming a state file leaves a temp
	// file behind; it is never read, only removed.
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(g.path), tempPrefix+"*")); len(tmps) > 0 {
		for _, tmp := range tmps {
			if err := os.Remove(tmp); err != nil {
				logger(env).Warn("removing a leftover generator state temp file", "path", tmp, "err", err)
			}
		}
	}
	g.next, g.reserved = st.Next, st.Next
	g.accepted.Store(st.Accepted)
	return g, nil
}

// Accepted returns the highest sequence number known accepted, -1 if none.
func (g *Generator) Accepted() int64 { return g.accepted.Load() }

// Run writes the samples owed since the last run.
func (g *Generator) Run(ctx context.Context, w sample.Writer) sample.Result {
	now := time.Now()
	g.updateAccepted(w)
	elapsed := g.env.Period
	if !g.lastRun.IsZero() {
		elapsed = now.Sub(g.lastRun)
	}
	g.lastRun = now
	owed := g.rate*elapsed.Seconds() + g.carry
	n := uint64(owed)
	g.carry = owed - float64(n)
	if err := g.reserve(g.next + n); err != nil {
		g.carry += float64(n)
		return sample.Result{Status: sample.Critical, Message: err.Error()}
	}
	step := int64(0)
	if n > 0 {
		step = elapsed.Nanoseconds() / int64(n)
	}
	base := now.Add(-elapsed).UnixNano()
	r := &g.row
	r.Reset()
	r.HasValue = true
	var written uint64
	for ; written < n; written++ {
		if written%4096 == 0 && ctx.Err() != nil {
			break
		}
		seq := g.next
		r.Ts = base + int64(written+1)*step
		r.Target = g.series[seq%uint64(len(g.series))]
		r.Metric = g.metrics[(seq/uint64(len(g.series)))%uint64(len(g.metrics))]
		r.Value = g.value(seq, r.Ts)
		w.Write(r)
		g.next++
	}
	if p, ok := w.(progress); ok && written > 0 {
		g.marks = append(g.marks, mark{written: p.Written(), lastSeq: int64(g.next) - 1})
	}
	if err := g.saveState(); err != nil {
		return sample.Result{Status: sample.Warning, Available: true, Message: err.Error()}
	}
	if written < n {
		g.carry += float64(n - written)
		return sample.Result{Status: sample.Warning, Available: true,
			Message: fmt.Sprintf("behind: wrote %d of %d samples before the timeout", written, n)}
	}
	return sample.Result{Status: sample.OK, Available: true, Message: fmt.Sprintf("%d samples, next seq %d", written, g.next)}
}

func (g *Generator) value(seq uint64, ts int64) float64 {
	switch g.pattern {
	case PatternConstant:
		return 1
	case PatternSine:
		return math.Sin(2 * math.Pi * float64(ts%int64(time.Minute)) / float64(time.Minute))
	case PatternSawtooth:
		return float64(seq % 100)
	case PatternRandom:
		return g.rng.Float64()
	}
	return float64(seq)
}

// updateAccepted advances the accepted sequence number past every run whose
// rows the bus has accepted.
func (g *Generator) updateAccepted(w sample.Writer) {
	p, ok := w.(progress)
	if !ok {
		return
	}
	acc := p.Accepted()
	i := 0
	for ; i < len(g.marks) && g.marks[i].written <= acc; i++ {
		g.accepted.Store(g.marks[i].lastSeq)
	}
	g.marks = append(g.marks[:0], g.marks[i:]...)
}

// reserve makes sure numbers below upTo are reserved durably.
func (g *Generator) reserve(upTo uint64) error {
	if upTo <= g.reserved {
		return nil
	}
	prev := g.reserved
	g.reserved = upTo + g.block
	if err := g.saveState(); err != nil {
		g.reserved = prev
		return err
	}
	return nil
}

// saveState writes the state file: temp file, fsync, rename, fsync dir.
func (g *Generator) saveState() error {
	data, err := json.Marshal(State{Next: g.reserved, Accepted: g.accepted.Load()})
	if err != nil {
		return fmt.Errorf("generator state: %w", err)
	}
	dir := filepath.Dir(g.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("generator state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("generator state: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), g.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("generator state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("generator state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("generator state: sync %s: %w", dir, err)
	}
	return nil
}

func logger(env module.Env) *slog.Logger {
	if env.Logger != nil {
		return env.Logger
	}
	return slog.Default()
}
