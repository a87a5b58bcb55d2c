// Package control is recond's control plane on its listener: plan deploys
// (validated, then swapped in place), the current plan, and ad-hoc clones.
// Mutating endpoints need the bearer token recond was started with.
package control

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/rules"
)

// Validate returns every reason p cannot run on this build (nil when it
// can): a wrong hash, unknown modules, attributes that do not match their
// module's spec, duplicate names, streams of unknown or passive sources or
// with a period under minPeriod, rules that do not compile, unknown sinks.
func Validate(p *plan.Plan, reg *module.Registry, minPeriod time.Duration) []string {
	var reasons []string
	add := func(pos, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if pos != "" {
			msg = pos + ": " + msg
		}
		reasons = append(reasons, msg)
	}
	if p.Format != plan.FormatVersion {
		add("", "plan format %d is not supported (this recond runs format %d)", p.Format, plan.FormatVersion)
	}
	if p.Hash != "" {
		cp := *p
		if _, err := cp.Marshal(); err != nil {
			add("", "plan cannot be encoded: %v", err)
		} else if cp.Hash != p.Hash {
			add("", "hash %s does not match the plan's content (%s): was it edited after `reconc compile`?", p.Hash, cp.Hash)
		}
	}
	names := map[string]string{} // source and stream names → kind
	sources := map[string]plan.Source{}
	for _, s := range p.Sources {
		if prev, dup := names[s.Name]; dup {
			add(s.Pos, "source %q: name already used by a %s", s.Name, prev)
			continue
		}
		names[s.Name] = "source"
		sources[s.Name] = s
		spec, ok := reg.Lookup(module.KindSource, s.Module)
		if !ok {
			add(s.Pos, "source %q: unknown module %q (this recond has %s)", s.Name, s.Module, strings.Join(reg.Names(module.KindSource), ", "))
			continue
		}
		attrs, err := module.DecodeAttrs(spec, s.Attrs)
		if err != nil {
			add(s.Pos, "source %q: %v", s.Name, err)
			continue
		}
		if spec.Validate != nil {
			if err := spec.Validate(attrs); err != nil {
				add(s.Pos, "source %q: %v", s.Name, err)
			}
		}
		switch {
		case spec.Passive && s.Period != 0:
			add(s.Pos, "source %q: module %s is passive and takes no period", s.Name, s.Module)
		case !spec.Passive && s.Period.D() <= 0:
			add(s.Pos, "source %q: a %s check needs a period > 0", s.Name, s.Module)
		}
	}
	for _, st := range p.Streams {
		if prev, dup := names[st.Name]; dup {
			add(st.Pos, "stream %q: name already used by a %s", st.Name, prev)
			continue
		}
		names[st.Name] = "stream"
		src, ok := sources[st.Clone]
		switch {
		case !ok:
			add(st.Pos, "stream %q: clones unknown source %q", st.Name, st.Clone)
		case src.Period == 0:
			add(st.Pos, "stream %q: source %q is passive and cannot be cloned", st.Name, st.Clone)
		}
		if st.Period.D() < minPeriod {
			add(st.Pos, "stream %q: period %v is shorter than this recond's minimum %v", st.Name, st.Period.D(), minPeriod)
		}
		if st.TTL < 0 {
			add(st.Pos, "stream %q: negative ttl %v", st.Name, st.TTL.D())
		}
	}
	sinks := map[string]bool{}
	for _, s := range p.Sinks {
		if sinks[s.Name] {
			add(s.Pos, "sink %q: declared twice", s.Name)
		}
		sinks[s.Name] = true
		if _, ok := reg.Lookup(module.KindSink, s.Kind); !ok {
			add(s.Pos, "sink %q: unknown kind %q (this recond has %s)", s.Name, s.Kind, strings.Join(reg.Names(module.KindSink), ", "))
		}
	}
	for _, r := range p.Rules {
		for _, n := range r.Notify {
			if !sinks[n] {
				add(r.Pos, "rule %q: notifies unknown sink %q", r.Name, n)
			}
		}
	}
	if e, err := rules.New(rules.Options{Plan: p}); err != nil {
		add("", "%v", err)
	} else {
		_ = e.Close()
	}
	sort.SliceStable(reasons, func(i, j int) bool { return reasons[i] < reasons[j] })
	return reasons
}

// Delta lists the names of one kind of plan element by what a deploy does
// to them.
type Delta struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged []string `json:"unchanged"`
}

// Empty reports whether nothing was added, removed or changed.
func (d Delta) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// Change is what a deploy changes. An element is changed when anything
// but its declaration position differs.
type Change struct {
	From    string `json:"from"` // hash of the plan replaced
	To      string `json:"to"`
	Sources Delta  `json:"sources"`
	Streams Delta  `json:"streams"`
	Rules   Delta  `json:"rules"`
	Sinks   Delta  `json:"sinks"`
}

// Diff compares two plans; old may be nil (everything is added).
func Diff(old, new *plan.Plan) Change {
	if old == nil {
		old = &plan.Plan{}
	}
	source := func(s plan.Source) (string, any) { s.Pos = ""; return s.Name, s }
	stream := func(s plan.Stream) (string, any) { s.Pos = ""; return s.Name, s }
	rule := func(r plan.Rule) (string, any) { r.Pos = ""; return r.Name, r }
	sink := func(s plan.Sink) (string, any) { s.Pos = ""; return s.Name, s }
	return Change{
		From:    old.Hash,
		To:      new.Hash,
		Sources: delta(defs(old.Sources, source), defs(new.Sources, source)),
		Streams: delta(defs(old.Streams, stream), defs(new.Streams, stream)),
		Rules:   delta(defs(old.Rules, rule), defs(new.Rules, rule)),
		Sinks:   delta(defs(old.Sinks, sink), defs(new.Sinks, sink)),
	}
}

// defs maps each element's name to its definition; key returns the name
// and the element without what does not count (its position).
func defs[T any](items []T, key func(T) (string, any)) map[string]string {
	out := make(map[string]string, len(items))
	for _, it := range items {
		name, def := key(it)
		b, err := json.Marshal(def)
		if err != nil {
			b = []byte(fmt.Sprintf("%#v", def))
		}
		out[name] = string(b)
	}
	return out
}

func delta(old, new map[string]string) Delta {
	d := Delta{Added: []string{}, Removed: []string{}, Changed: []string{}, Unchanged: []string{}}
	for n, def := range new {
		switch prev, ok := old[n]; {
		case !ok:
			d.Added = append(d.Added, n)
		case prev != def:
			d.Changed = append(d.Changed, n)
		default:
			d.Unchanged = append(d.Unchanged, n)
		}
	}
	for n := range old {
		if _, ok := new[n]; !ok {
			d.Removed = append(d.Removed, n)
		}
	}
	for _, l := range [][]string{d.Added, d.Removed, d.Changed, d.Unchanged} {
		sort.Strings(l)
	}
	return d
}

// String summarises d as "+added -removed ~changed (N unchanged)".
func (d Delta) String() string {
	var parts []string
	for _, n := range d.Added {
		parts = append(parts, "+"+n)
	}
	for _, n := range d.Removed {
		parts = append(parts, "-"+n)
	}
	for _, n := range d.Changed {
		parts = append(parts, "~"+n)
	}
	parts = append(parts, fmt.Sprintf("(%d unchanged)", len(d.Unchanged)))
	return strings.Join(parts, " ")
}

// String summarises the change, one line per kind of element.
func (c Change) String() string {
	return fmt.Sprintf("sources: %s\nstreams: %s\nrules:   %s\nsinks:   %s\n", c.Sources, c.Streams, c.Rules, c.Sinks)
}
