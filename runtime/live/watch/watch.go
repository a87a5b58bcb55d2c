// Package watch implements `reconc watch`: it asks recond for an ad-hoc
// clone of each source, streams the clones' samples, and shows one line per
// metric with its latest value and a sparkline, redrawn in place on a
// terminal (plain lines otherwise, NDJSON with JSON set). Leaving ends the
// clones.
package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/live"
)

// Defaults of Options.
const (
	DefaultEvery = time.Second
	// DefaultTTL bounds clones of a watch without For: they end earlier
	// when the watch leaves.
	DefaultTTL = time.Hour
	history    = 40 // values in a sparkline
)

// Options configure a watch.
type Options struct {
	Client  *control.Client
	Sources []string
	// Metrics limits the metrics shown (empty: all).
	Metrics []string
	// Every is the clones' period (default 1s); For ends the watch (0:
	// until ctx ends).
	Every, For time.Duration
	// JSON prints the stream as NDJSON, one sample per line.
	JSON bool
	// TTY redraws the table in place (ANSI escapes); otherwise each sample
	// is printed as a plain line.
	TTY bool
	Out io.Writer
}

// Run watches until o.For elapsed, ctx ended or every clone ended. Names
// of declared streams are watched without a new clone.
func Run(ctx context.Context, o Options) error {
	if len(o.Sources) == 0 {
		return errors.New("watch: name at least one source")
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	ttl := o.For
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if o.For > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.For)
		defer cancel()
	}
	var clones []live.Info
	defer func() {
		// The clones also end as the stream closes (last viewer left);
		// stopping them explicitly covers a stream that never opened.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, c := range clones {
			if err := o.Client.StopClone(sctx, c.ID); err != nil && !control.IsAPIError(err, 404) {
				fmt.Fprintf(o.Out, "watch: ending clone %s: %v\n", c.ID, err)
			}
		}
	}()
	// A declared stream (a clone the plan runs) is watched as it is; any
	// other name is a source to clone.
	running, err := o.Client.ListClones(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	declared := map[string]bool{}
	for _, c := range running {
		if c.Declared {
			declared[c.Name] = true
		}
	}
	var streams []string
	for _, src := range o.Sources {
		if declared[src] {
			streams = append(streams, src)
			continue
		}
		info, err := o.Client.StartClone(ctx, live.Request{Source: src, Period: plan.Duration(o.Every), TTL: plan.Duration(ttl)})
		if err != nil {
			return fmt.Errorf("watch %s: %w", src, err)
		}
		clones = append(clones, info)
	}
	q := url.Values{}
	ids := make([]string, len(clones))
	for i, c := range clones {
		ids[i] = c.ID
	}
	if len(ids) > 0 {
		q.Set("clone", strings.Join(ids, ","))
	}
	if len(streams) > 0 {
		q.Set("source", strings.Join(streams, ","))
	}
	if len(o.Metrics) > 0 {
		q.Set("metric", strings.Join(o.Metrics, ","))
	}
	body, err := o.Client.Stream(ctx, q)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer body.Close()
	v := newView(o, clones)
	v.streams = len(streams) > 0
	err = v.read(ctx, body)
	if ctx.Err() != nil {
		return nil // --for elapsed or interrupted: a normal end
	}
	return err
}

// message is one line of the stream: a sample or a control message.
type message struct {
	Event   string   `json:"event"`
	Clone   string   `json:"clone"`
	Message string   `json:"message"`
	Ts      string   `json:"ts"`
	Source  string   `json:"source"`
	Target  string   `json:"target"`
	Metric  string   `json:"metric"`
	Value   *float64 `json:"value"`
	Text    *string  `json:"text"`
	Unit    *string  `json:"unit"`
}

type series struct {
	source, target, metric string
	last                   string
	values                 []float64 // the last `history` values, NaN for texts
}

type view struct {
	o     Options
	names map[string]string // clone name → source watched
	live  int               // clones not ended
	// streams is set when declared streams are watched too: the watch
	// goes on after the clones ended.
	streams bool
	rows    map[string]*series
	order   []*series
	drawn   int // lines drawn by the last redraw
	dirty   bool
	lastAt  time.Time
}

func newView(o Options, clones []live.Info) *view {
	v := &view{o: o, names: map[string]string{}, rows: map[string]*series{}, live: len(clones)}
	for _, c := range clones {
		v.names[c.Name] = c.Source
	}
	return v
}

func (v *view) read(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue // keepalive
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("watch: recond sent a line that is not JSON: %w", err)
		}
		if v.o.JSON {
			if _, err := fmt.Fprintf(v.o.Out, "%s\n", line); err != nil {
				return err
			}
		}
		switch m.Event {
		case live.EventEnd:
			v.live--
			if !v.o.JSON {
				v.flush(true)
				fmt.Fprintf(v.o.Out, "clone %s ended: %s\n", m.Clone, m.Message)
				v.drawn = 0
			}
			if v.live == 0 && !v.streams {
				return nil
			}
			continue
		case live.EventDropped:
			v.flush(true)
			return fmt.Errorf("watch: %s", m.Message)
		}
		if !v.o.JSON {
			v.sample(&m)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("watch: reading the stream: %w", err)
	}
	v.flush(true)
	if ctx.Err() == nil {
		return errors.New("watch: recond closed the stream")
	}
	return nil
}

func (v *view) sample(m *message) {
	src := v.names[m.Source]
	if src == "" {
		src = m.Source
	}
	key := src + "\x00" + m.Target + "\x00" + m.Metric
	s := v.rows[key]
	if s == nil {
		s = &series{source: src, target: m.Target, metric: m.Metric}
		v.rows[key] = s
		v.order = append(v.order, s)
		sort.SliceStable(v.order, func(i, j int) bool {
			a, b := v.order[i], v.order[j]
			if a.source != b.source {
				return a.source < b.source
			}
			if a.target != b.target {
				return a.target < b.target
			}
			return a.metric < b.metric
		})
	}
	val := math.NaN()
	switch {
	case m.Value != nil:
		val = *m.Value
		s.last = strconv.FormatFloat(val, 'g', 6, 64)
		if m.Unit != nil {
			s.last += " " + *m.Unit
		}
		if m.Text != nil {
			s.last += " " + *m.Text
		}
	case m.Text != nil:
		s.last = strconv.Quote(*m.Text)
	default:
		s.last = "null"
	}
	s.values = append(s.values, val)
	if len(s.values) > history {
		s.values = s.values[len(s.values)-history:]
	}
	if !v.o.TTY {
		ts := m.Ts
		if t, err := time.Parse(time.RFC3339Nano, m.Ts); err == nil {
			ts = t.Local().Format("15:04:05.000")
		}
		fmt.Fprintf(v.o.Out, "%s  %s  %s  %s  %s  %s\n", ts, s.source, s.target, s.metric, s.last, sparkline(s.values))
		return
	}
	v.dirty = true
	v.flush(false)
}

// flush redraws the table in place, at most every 100 ms unless forced.
func (v *view) flush(force bool) {
	if !v.o.TTY || !v.dirty || !force && time.Since(v.lastAt) < 100*time.Millisecond {
		return
	}
	v.dirty, v.lastAt = false, time.Now()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn) // back to the table's first line
	}
	wSrc, wTgt, wMet := 6, 6, 6
	for _, s := range v.order {
		wSrc, wTgt, wMet = max(wSrc, len(s.source)), max(wTgt, len(s.target)), max(wMet, len(s.metric))
	}
	fmt.Fprintf(&b, "\x1b[2K%-*s  %-*s  %-*s  %-14s  %s\n", wSrc, "SOURCE", wTgt, "TARGET", wMet, "METRIC", "LATEST", "HISTORY")
	for _, s := range v.order {
		fmt.Fprintf(&b, "\x1b[2K%-*s  %-*s  %-*s  %-14s  %s\n", wSrc, s.source, wTgt, s.target, wMet, s.metric, s.last, sparkline(s.values))
	}
	v.drawn = len(v.order) + 1
	_, _ = io.WriteString(v.o.Out, b.String())
}

var bars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws values scaled between their min and max; NaN (a text
// sample) is a blank.
func sparkline(values []float64) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	out := make([]rune, len(values))
	for i, x := range values {
		switch {
		case math.IsNaN(x) || math.IsInf(x, 0):
			out[i] = ' '
		case hi == lo:
			out[i] = bars[len(bars)/2]
		default:
			out[i] = bars[int((x-lo)/(hi-lo)*float64(len(bars)-1)+0.5)]
		}
	}
	return string(out)
}
