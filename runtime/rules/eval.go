package rules

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/reconmon/recon/runtime/alert"
)

// Nagios flap detection: the last flapHistory states, changes weighted
// linearly from flapLow (oldest) to flapHigh (newest).
const (
	flapHistory = 21
	flapLow     = 0.75
	flapHigh    = 1.25
)

// maxCatchUp bounds the window ends one Eval works through for a rule.
const maxCatchUp = 1_000_000

// ingestRows appends the rows sel of b that pass the rule's filter to their
// groups.
func (r *rule) ingestRows(b *batch, sel []int32) {
	vals := r.vals
	var last *group
	hasFlags := r.patterns > 0
	for _, i32 := range sel {
		i := int(i32)
		if r.where != nil && !r.where(b, i) {
			continue
		}
		ts := int64(b.ts[i])
		if r.frozen != none {
			if ts < r.frozen {
				r.late++
				continue
			}
		} else if wm := max(r.maxSeen, r.evalMax); wm != none && ts < wm-r.lateness {
			r.late++
			continue
		}
		r.seen++
		if ts > r.maxSeen {
			r.maxSeen = ts
		}
		if r.start == none || ts < r.start && r.next == none {
			r.start = ts
		}
		// Group key: the group-by values joined by NUL. The map lookup
		// with string(bytes) does not allocate.
		key := r.keyBuf[:0]
		for k, gc := range r.groupBy {
			if k > 0 {
				key = append(key, 0)
			}
			v, _ := gc.get(b, i)
			key = append(key, v...)
		}
		r.keyBuf = key
		g := last
		if g == nil || g.key != string(key) {
			g = r.groups[string(key)]
			if g == nil {
				g = r.newGroup(string(key), r.groupLabels(b, i))
				r.groups[g.key] = g
			}
			last = g
		}
		for k, in := range r.inputs {
			v, ok := in(b, i)
			if !ok {
				v = nan
			}
			vals[k] = v
		}
		var flags uint8
		if hasFlags {
			for _, c := range r.clauses {
				if c.kind != clausePattern {
					continue
				}
				if c.first(b, i) {
					flags |= 1 << (2 * c.pat)
				}
				if c.then(b, i) {
					flags |= 2 << (2 * c.pat)
				}
			}
		}
		g.insert(ts, vals, flags, hasFlags)
	}
}

// watermark is the time up to which the rule's windows are complete.
func (r *rule) watermark() int64 {
	wm := r.maxSeen
	if r.evalMax > wm {
		wm = r.evalMax
	}
	if wm == none {
		return none
	}
	return wm - r.lateness
}

// advance evaluates every window end up to the watermark, appending events.
func (r *rule) advance(out []alert.Event) []alert.Event {
	wm := r.watermark()
	if wm == none {
		return out
	}
	if r.next == none {
		r.next = floorDiv(r.start, r.every)*r.every + r.every
	}
	if behind := (wm - r.next) / r.every; behind > maxCatchUp {
		// After a long gap (an engine stopped for weeks, a hole in the
		// archive) evaluate only the last maxCatchUp window ends.
		r.next += (behind - maxCatchUp) * r.every
	}
	for r.next <= wm {
		out = r.tick(r.next, out)
		r.next += r.every
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// tick evaluates every group at window end t.
func (r *rule) tick(t int64, out []alert.Event) []alert.Event {
	w := &r.win
	if cap(w.slots) < len(r.aggs) {
		w.slots = make([]float64, len(r.aggs))
	}
	w.slots = w.slots[:len(r.aggs)]
	if cap(w.vals) < len(r.inputs) {
		w.vals = make([][]float64, len(r.inputs))
	}
	w.vals = w.vals[:len(r.inputs)]
	if r.hasAbs && len(r.groupBy) == 0 && r.groups[""] == nil {
		// An ungrouped deadman watches its one group before any sample.
		r.groups[""] = r.newGroup("", map[string]string{})
	}
	last := int64(none) // the rule's newest sample before t
	for _, g := range r.groups {
		out = r.evalGroup(g, t, out)
		last = max(last, g.lastSeen)
		if r.idle(g) {
			delete(r.groups, g.key)
		}
	}
	if r.hasAbs && len(r.groupBy) > 0 {
		if r.ruleAbs == nil {
			r.ruleAbs = r.newGroup("", map[string]string{})
		}
		r.ruleAbs.lastSeen = max(r.ruleAbs.lastSeen, last)
		out = r.evalGroup(r.ruleAbs, t, out)
	}
	return out
}

func (r *rule) evalGroup(g *group, t int64, out []alert.Event) []alert.Event {
	w := &r.win
	h := g.head
	hi := h + sort.Search(len(g.ts)-h, func(k int) bool { return g.ts[h+k] >= t })
	// Patterns: apply the samples before t in event-time order.
	if r.patterns > 0 {
		for k := g.cursor; k < hi; k++ {
			f := g.flags[k]
			for p := range g.pend {
				if f&(2<<(2*p)) != 0 {
					g.pend[p] = none
				}
				if f&(1<<(2*p)) != 0 && g.pend[p] == none {
					g.pend[p] = g.ts[k]
				}
			}
		}
	}
	g.cursor = hi
	if hi > h {
		g.lastSeen = max(g.lastSeen, g.ts[hi-1])
	}
	var lo int
	if r.count > 0 {
		lo = max(h, hi-r.count)
	} else {
		from := t - r.size
		lo = h + sort.Search(hi-h, func(k int) bool { return g.ts[h+k] >= from })
	}
	w.ts = g.ts[lo:hi]
	for k := range w.vals {
		w.vals[k] = g.vals[k][lo:hi]
	}
	compute(r.aggs, w)
	out = r.step(g, t, w, g == r.ruleAbs, out)
	// Drop what no later window needs.
	next := t + r.every
	var cut int
	if r.count > 0 {
		cut = hi - r.count
	} else {
		from := next - r.size
		cut = h + sort.Search(len(g.ts)-h, func(k int) bool { return g.ts[h+k] >= from })
		cut = min(cut, hi)
	}
	g.evict(cut - h)
	return out
}

// step runs the state machine of one group at t.
func (r *rule) step(g *group, t int64, w *window, absentOnly bool, out []alert.Event) []alert.Event {
	st := &g.st
	target, raw := alert.OK, alert.OK
	decider := -1
	for i := range r.clauses {
		c := &r.clauses[i]
		var on bool
		switch c.kind {
		case clauseCond:
			on = !absentOnly && c.cond(w)
		case clauseAbsent:
			// Absent: no sample in [t-d, t). Samples at or after t do not
			// count (they are buffered for later windows). A group of a
			// grouped rule begins with its first sample; the rule-level
			// group and an ungrouped rule's group watch the rule from its
			// first known time.
			switch {
			case g.lastSeen != none:
				on = g.lastSeen < t-c.absent
			case len(r.groupBy) > 0 && g != r.ruleAbs:
				on = false
			default:
				on = r.start <= t-c.absent
			}
		case clausePattern:
			on = !absentOnly && g.pend[c.pat] != none && t-g.pend[c.pat] >= c.within
		}
		if !on {
			st.active[i] = none
			continue
		}
		if st.active[i] == none {
			st.active[i] = t
		}
		raw = max(raw, c.sev)
		if t-st.active[i] >= c.forD && (c.sev > target || decider < 0) {
			target, decider = c.sev, i
		}
	}
	cur := st.sev
	next := cur
	switch {
	case target > cur:
		next = target
	case target < cur:
		// Hysteresis: a firing state is left only when clear holds. An
		// empty window gives no evidence to keep firing.
		if r.clear == nil || len(w.ts) == 0 || absentOnly || r.clear(w) {
			next = target
		}
	}
	wasFlapping := st.flapping
	if r.flap != nil {
		r.recordFlap(st, raw)
	}
	if next != cur {
		st.sev, st.since = next, t
		ev := r.event(g, t, cur, next, decider, w)
		if st.flapping {
			ev.Flapping = true
		} else {
			ev.Notify = r.notify
			st.notified, st.lastNotify = next, t
		}
		return append(out, ev)
	}
	if wasFlapping && !st.flapping && st.notified != st.sev {
		// Flapping ended in a state the receivers were not told about.
		ev := r.event(g, t, st.notified, st.sev, decider, w)
		ev.Since = time.Unix(0, st.since).UTC()
		ev.Notify = r.notify
		ev.ID = alert.TransitionID(g.fp, ev.Time, ev.Previous, ev.Severity, false)
		st.notified, st.lastNotify = st.sev, t
		return append(out, ev)
	}
	if r.repeat > 0 && st.sev != alert.OK && !st.flapping && st.lastNotify != none && t-st.lastNotify >= r.repeat {
		ev := r.event(g, t, st.sev, st.sev, decider, w)
		ev.Repeat, ev.Since, ev.Notify = true, time.Unix(0, st.since).UTC(), r.notify
		ev.ID = alert.TransitionID(g.fp, ev.Time, ev.Previous, ev.Severity, true)
		st.lastNotify = t
		return append(out, ev)
	}
	return out
}

// recordFlap appends s to the state history and updates flapping with
// Nagios' weighted percent state change and thresholds.
func (r *rule) recordFlap(st *state, s alert.Severity) {
	if st.nhist < flapHistory {
		st.hist[st.nhist] = uint8(s)
		st.nhist++
	} else {
		copy(st.hist[:], st.hist[1:])
		st.hist[flapHistory-1] = uint8(s)
	}
	if st.nhist < flapHistory {
		return
	}
	pct := flapPercent(&st.hist)
	switch {
	case !st.flapping && pct > r.flap.High:
		st.flapping = true
	case st.flapping && pct < r.flap.Low:
		st.flapping = false
	}
}

// flapPercent is Nagios' curved percent state change over a full history
// (oldest first): change x (1..20) weighs 0.75 + (x-1)·0.5/19.
func flapPercent(h *[flapHistory]uint8) float64 {
	var changes float64
	for x := 1; x < flapHistory; x++ {
		if h[x] != h[x-1] {
			changes += float64(x-1)*(flapHigh-flapLow)/float64(flapHistory-2) + flapLow
		}
	}
	return changes * 100 / float64(flapHistory-1)
}

// event builds the transition of g from prev to sev at t.
func (r *rule) event(g *group, t int64, prev, sev alert.Severity, decider int, w *window) alert.Event {
	ev := alert.Event{
		Time: time.Unix(0, t).UTC(), Rule: r.name, Severity: sev, Previous: prev,
		Group: g.labels, Value: math.NaN(), Pipeline: r.pipeline, Fingerprint: g.fp,
		Since: time.Unix(0, t).UTC(),
	}
	ev.ID = alert.TransitionID(g.fp, ev.Time, prev, sev, false)
	if decider >= 0 {
		c := &r.clauses[decider]
		switch c.kind {
		case clauseCond:
			if c.lhs != nil && len(w.ts) > 0 {
				ev.Value = c.lhs(w)
				ev.Message = fmt.Sprintf("%s: %s = %s", c.text, c.lhsTxt, fmtNum(ev.Value))
			} else {
				ev.Message = c.text
			}
		case clauseAbsent:
			ev.Message = fmt.Sprintf("%s: no samples", c.text)
			if g.lastSeen != none {
				ev.Message += " since " + time.Unix(0, g.lastSeen).UTC().Format(time.RFC3339Nano)
			}
		case clausePattern:
			ev.Message = fmt.Sprintf("%s: first event at %s", c.text, time.Unix(0, g.pend[c.pat]).UTC().Format(time.RFC3339Nano))
		}
		if c.forD > 0 {
			ev.Message += fmt.Sprintf(" (for %s)", time.Duration(c.forD))
		}
		return ev
	}
	if sev == alert.OK {
		ev.Message = "resolved"
		if r.clear != nil && len(w.ts) > 0 {
			ev.Message = "resolved: clear when " + r.clearTxt
		} else if len(w.ts) == 0 {
			ev.Message = "resolved: no samples in the window"
		}
	}
	return ev
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
