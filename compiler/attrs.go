package compiler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
)

// defaultAttr is one attribute of the defaults blocks, evaluated once.
type defaultAttr struct {
	attr *dsl.Attr
	val  value
	ok   bool
	// used is set when some source's module accepts the attribute.
	used bool
}

func (c *compiler) evalDefaults() map[string]*defaultAttr {
	out := map[string]*defaultAttr{}
	for _, a := range c.defaults {
		if first, dup := out[a.Name.Name]; dup {
			c.dup("default", a.Name.Range(), first.attr.Name.Range(), "default %q set twice", a.Name.Name)
			continue
		}
		v, ok := c.eval(a.Value, nil)
		out[a.Name.Name] = &defaultAttr{attr: a, val: v, ok: ok}
	}
	return out
}

// warnUnusedDefaults warns about defaults that no source's module accepts.
func (c *compiler) warnUnusedDefaults(defaults map[string]*defaultAttr) {
	var accepted []string
	seen := map[*fieldSet]bool{}
	for _, s := range c.sources {
		if spec, ok := c.opts.Registry.Lookup(module.KindSource, s.Module.Name); ok {
			fs := c.sourceFields(spec)
			if !seen[fs] {
				seen[fs] = true
				accepted = append(accepted, fs.names...)
			}
		}
	}
	for _, a := range c.defaults {
		d := defaults[a.Name.Name]
		if d == nil || d.attr != a || d.used {
			continue
		}
		c.warnf(a.Name.Range(), "default %q is not accepted by any source of this pipeline%s", a.Name.Name, didYouMean(a.Name.Name, accepted))
	}
}

// fieldSet is the attributes a declaration accepts, indexed; built once
// per module and kind of declaration.
type fieldSet struct {
	fields []module.Field
	byName map[string]bool
	names  []string
}

func newFieldSet(fields []module.Field) *fieldSet {
	fs := &fieldSet{fields: fields, byName: make(map[string]bool, len(fields)), names: make([]string, len(fields))}
	for i, f := range fields {
		fs.byName[f.Name] = true
		fs.names[i] = f.Name
	}
	return fs
}

// sourceFields returns the attributes a source of spec accepts: the common
// ones (none for passive sources; not target when the module declares its
// own) and the module's.
func (c *compiler) sourceFields(spec *module.Spec) *fieldSet {
	if fs, ok := c.fieldSets[spec]; ok {
		return fs
	}
	var fields []module.Field
	if !spec.Passive {
		_, ownTarget := spec.Field(AttrTarget)
		for _, f := range CommonSourceFields() {
			switch {
			case f.Name == AttrTarget && ownTarget:
				continue
			case f.Name == AttrTarget && spec.DefaultTarget == nil:
				f = f.Req()
			}
			fields = append(fields, f)
		}
	}
	fs := newFieldSet(append(fields, spec.Fields...))
	c.fieldSets[spec] = fs
	return fs
}

// sinkFields returns the attributes a sink of spec accepts.
func (c *compiler) sinkFields(spec *module.Spec) *fieldSet {
	if fs, ok := c.fieldSets[spec]; ok {
		return fs
	}
	fs := newFieldSet(spec.Fields)
	c.fieldSets[spec] = fs
	return fs
}

// typedAttrs are a block's attribute values converted to their field types,
// with the range each came from (missing for module defaults).
type typedAttrs struct {
	vals   module.Attrs
	ranges map[string]diag.Range
}

// attrs checks a block against fields: unknown and duplicate attributes,
// types, allowed values, ranges, required attributes and deprecations. A
// missing attribute comes from defaults (when not nil), else from the
// field's default. what describes the declaration in messages
// (`source "ssh" (tcp)`), at its name's range.
func (c *compiler) attrs(body *dsl.Block, fs *fieldSet, owner, what string, at diag.Range,
	defaults map[string]*defaultAttr, unknownDetail string) (typedAttrs, bool) {
	out := typedAttrs{vals: make(module.Attrs, len(fs.fields)), ranges: make(map[string]diag.Range, len(body.Attrs))}
	ok := true
	set := make(map[string]*dsl.Attr, len(body.Attrs))
	// misspelled holds the fields unknown attributes were probably meant
	// to be: their "needs attribute" error would only repeat the point.
	var misspelled map[string]bool
	for _, a := range body.Attrs {
		name := a.Name.Name
		if first, dup := set[name]; dup {
			c.dup("one", a.Name.Range(), first.Name.Range(), "attribute %q set twice", name)
			ok = false
			continue
		}
		set[name] = a
		if !fs.byName[name] {
			d := c.errorf(a.Name.Range(), "unknown attribute %q of %s%s", name, owner, didYouMean(name, fs.names))
			d.Detail = unknownDetail
			if misspelled == nil {
				misspelled = map[string]bool{}
			}
			misspelled[diag.Suggest(name, fs.names)] = true
			ok = false
		}
	}
	for _, f := range fs.fields {
		var (
			v      value
			vok    bool
			origin diag.Range
		)
		def := defaults[f.Name]
		if def != nil {
			def.used = true
		}
		switch a := set[f.Name]; {
		case a != nil:
			v, vok = c.eval(a.Value, nil)
			origin = a.Value.Range()
			if f.Deprecated != "" {
				c.warnf(a.Name.Range(), "attribute %q of %s is deprecated: %s", f.Name, owner, f.Deprecated)
			}
		case def != nil:
			v, vok = def.val, def.ok
			origin = def.attr.Value.Range()
		case f.Default != nil:
			out.vals[f.Name] = f.Default
			continue
		case f.Required:
			if !misspelled[f.Name] {
				c.errorf(at, "%s needs attribute %q", what, f.Name)
			}
			ok = false
			continue
		default:
			continue
		}
		if !vok {
			ok = false
			continue
		}
		typed, ds := convert(owner, f, v)
		if len(ds) > 0 {
			c.diags = c.diags.Extend(ds)
			ok = false
			continue
		}
		out.vals[f.Name] = typed
		out.ranges[f.Name] = origin
	}
	return out, ok
}

// validate runs the module's cross-attribute checks; a FieldError is
// reported at that attribute's value.
func (c *compiler) validate(spec *module.Spec, attrs module.Attrs, ranges map[string]diag.Range, what string, at diag.Range) bool {
	if spec.Validate == nil {
		return true
	}
	err := spec.Validate(attrs)
	if err == nil {
		return true
	}
	var fe *module.FieldError
	if errors.As(err, &fe) {
		if r, ok := ranges[fe.Field]; ok {
			c.errorf(r, "attribute %q of %s: %s", fe.Field, spec.Name, fe.Msg)
		} else {
			c.errorf(at, "%s: %s: %s", what, fe.Field, fe.Msg)
		}
		return false
	}
	c.errorf(at, "%s: %v", what, err)
	return false
}

func (c *compiler) source(s *dsl.Source, defaults map[string]*defaultAttr) (plan.Source, bool) {
	spec, ok := c.opts.Registry.Lookup(module.KindSource, s.Module.Name)
	if !ok {
		d := c.errorf(s.Module.Range(), "unknown source module %q%s", s.Module.Name,
			didYouMean(s.Module.Name, c.opts.Registry.Names(module.KindSource)))
		if _, isSink := c.opts.Registry.Lookup(module.KindSink, s.Module.Name); isSink {
			d.Detail = fmt.Sprintf("%s is a sink module: declare it with `sink NAME %s { … }`", s.Module.Name, s.Module.Name)
		}
		return plan.Source{}, false
	}
	what := fmt.Sprintf("source %q (%s)", s.Name.Name, spec.Name)
	detail := ""
	if spec.Passive {
		detail = fmt.Sprintf("%s is a passive source (a listener): it has no target, period or timeout", spec.Name)
	}
	t, ok := c.attrs(s.Body, c.sourceFields(spec), spec.Name, what, s.Name.Range(), defaults, detail)
	if !ok {
		return plan.Source{}, false
	}
	_, ownTarget := spec.Field(AttrTarget)
	ps := plan.Source{Name: s.Name.Name, Module: spec.Name, Target: t.vals.String(AttrTarget), Pos: c.pos(s.Range())}
	modAttrs := module.Attrs{}
	for k, v := range t.vals {
		switch {
		case k == AttrTarget && !ownTarget, k == AttrPeriod, k == AttrTimeout:
		default:
			modAttrs[k] = v
		}
	}
	if !spec.Passive {
		period, timeout := t.vals.Duration(AttrPeriod), t.vals.Duration(AttrTimeout)
		r, explicit := t.ranges[AttrTimeout]
		if !explicit {
			// The default timeout leaves room for the next run.
			timeout = min(DefaultTimeout, period/2)
		}
		if timeout >= period {
			d := c.errorf(r, "timeout %s must be less than period %s", FormatDuration(timeout), FormatDuration(period))
			d.Detail = fmt.Sprintf("set a shorter timeout, e.g. timeout = %s", FormatDuration(period/2))
			return plan.Source{}, false
		}
		ps.Period, ps.Timeout = plan.Duration(period), plan.Duration(timeout)
	}
	if !c.validate(spec, modAttrs, t.ranges, what, s.Name.Range()) {
		return plan.Source{}, false
	}
	if !spec.Passive && !ownTarget && ps.Target == "" {
		if spec.DefaultTarget != nil {
			ps.Target = spec.DefaultTarget(modAttrs)
		}
		switch r, set := t.ranges[AttrTarget]; {
		case ps.Target != "":
		case set:
			c.errorf(r, "attribute %q of %s must not be empty", AttrTarget, spec.Name)
			return plan.Source{}, false
		default:
			c.errorf(s.Name.Range(), "%s needs attribute %q", what, AttrTarget)
			return plan.Source{}, false
		}
	}
	raw, err := module.MarshalAttrs(modAttrs)
	if err != nil {
		c.errorf(s.Name.Range(), "%s: encode attributes: %v", what, err)
		return plan.Source{}, false
	}
	ps.Attrs = raw
	return ps, true
}

// Stream attributes.
const (
	streamClone   = "clone"
	streamPeriod  = "period"
	streamTTL     = "ttl"
	streamArchive = "archive"
)

var streamAttrs = []string{streamClone, streamPeriod, streamTTL, streamArchive}

func (c *compiler) stream(s *dsl.Stream) (plan.Stream, bool) {
	ps := plan.Stream{Name: s.Name.Name, Period: plan.Duration(DefaultStreamPeriod), Archive: true, Pos: c.pos(s.Range())}
	ok := true
	set := map[string]*dsl.Attr{}
	for _, a := range s.Body.Attrs {
		name := a.Name.Name
		if first, dup := set[name]; dup {
			c.dup("one", a.Name.Range(), first.Name.Range(), "attribute %q set twice", name)
			ok = false
			continue
		}
		set[name] = a
		switch name {
		case streamClone:
			ok = c.streamClone(s, a, &ps) && ok
		case streamPeriod:
			d, dok := c.duration(a.Value, "stream period")
			switch {
			case !dok:
				ok = false
			case d < minPeriod:
				c.errorf(a.Value.Range(), "stream period must be at least 1s, got %s", FormatDuration(d))
				ok = false
			default:
				ps.Period = plan.Duration(d)
			}
		case streamTTL:
			d, dok := c.duration(a.Value, "ttl")
			switch {
			case !dok:
				ok = false
			case d <= 0:
				c.errorf(a.Value.Range(), "ttl must be positive, got %s (leave it out to run the stream as long as the plan)", FormatDuration(d))
				ok = false
			default:
				ps.TTL = plan.Duration(d)
			}
		case streamArchive:
			v, vok := c.eval(a.Value, nil)
			switch {
			case !vok:
				ok = false
			case v.kind != kBool:
				c.errorf(v.rng, "archive wants a bool, got %s", v.describe())
				ok = false
			default:
				ps.Archive = v.b
			}
		default:
			c.errorf(a.Name.Range(), "unknown attribute %q of stream%s", name, didYouMean(name, streamAttrs))
			ok = false
		}
	}
	if set[streamClone] == nil {
		c.errorf(s.Name.Range(), "stream %q needs attribute %q (the source it clones)", s.Name.Name, streamClone)
		ok = false
	}
	return ps, ok
}

func (c *compiler) streamClone(s *dsl.Stream, a *dsl.Attr, ps *plan.Stream) bool {
	id, isIdent := a.Value.(*dsl.Ident)
	if !isIdent {
		c.errorf(a.Value.Range(), "clone wants the name of a source, like `clone = homepage`")
		return false
	}
	if other, ok := c.streamByName[id.Name]; ok {
		if other == s {
			c.errorf(id.Range(), "stream %q cannot clone itself", s.Name.Name)
		} else {
			c.errorf(id.Range(), "%q is a stream; clone must name a source", id.Name)
		}
		return false
	}
	src, ok := c.sourceByName[id.Name]
	if !ok {
		d := c.errorf(id.Range(), "unknown source %q%s", id.Name, didYouMean(id.Name, names(c.sourceByName)))
		d.Detail = c.declaredAs(id.Name)
		return false
	}
	if spec, known := c.opts.Registry.Lookup(module.KindSource, src.Module.Name); known && spec.Passive {
		c.errorf(id.Range(), "source %q (%s) is passive: only scheduled sources can be cloned", id.Name, spec.Name)
		return false
	}
	ps.Clone = id.Name
	return true
}

func (c *compiler) sink(s *dsl.Sink) (plan.Sink, bool) {
	spec, ok := c.opts.Registry.Lookup(module.KindSink, s.Kind.Name)
	if !ok {
		d := c.errorf(s.Kind.Range(), "unknown sink module %q%s", s.Kind.Name,
			didYouMean(s.Kind.Name, c.opts.Registry.Names(module.KindSink)))
		if _, isSource := c.opts.Registry.Lookup(module.KindSource, s.Kind.Name); isSource {
			d.Detail = fmt.Sprintf("%s is a source module: declare it with `source NAME %s { … }`", s.Kind.Name, s.Kind.Name)
		}
		return plan.Sink{}, false
	}
	c.sinkKinds[s.Name.Name] = spec.Name
	what := fmt.Sprintf("sink %q (%s)", s.Name.Name, spec.Name)
	t, ok := c.attrs(s.Body, c.sinkFields(spec), spec.Name, what, s.Name.Range(), nil, "")
	if !ok || !c.validate(spec, t.vals, t.ranges, what, s.Name.Range()) {
		return plan.Sink{}, false
	}
	raw, err := module.MarshalAttrs(t.vals)
	if err != nil {
		c.errorf(s.Name.Range(), "%s: encode attributes: %v", what, err)
		return plan.Sink{}, false
	}
	return plan.Sink{Name: s.Name.Name, Kind: spec.Name, Attrs: raw, Pos: c.pos(s.Range())}, true
}

// Names of the implied archive.
const (
	archiveKind = "parquet"
	archiveName = "archive"
	archivePath = "path"
)

// impliedArchive returns `sink archive parquet { path = "archive" }` when
// the pipeline declares no parquet sink: nothing is discarded.
func (c *compiler) impliedArchive() (plan.Sink, bool) {
	for _, s := range c.sinks {
		if s.Kind.Name == archiveKind {
			return plan.Sink{}, false
		}
	}
	spec, ok := c.opts.Registry.Lookup(module.KindSink, archiveKind)
	if !ok {
		return plan.Sink{}, false
	}
	if other, taken := c.sinkByName[archiveName]; taken {
		d := c.errorf(other.Name.Range(), "sink %q is a %s sink, but the implied Parquet archive needs that name", archiveName, other.Kind.Name)
		d.Detail = "declare a parquet sink (`sink archive parquet { path = \"archive\" }`) or rename this sink"
		return plan.Sink{}, false
	}
	attrs := module.Attrs{}
	for _, f := range spec.Fields {
		if f.Default != nil {
			attrs[f.Name] = f.Default
		}
	}
	if _, ok := spec.Field(archivePath); ok {
		attrs[archivePath] = archiveName
	}
	at := diag.Range{Filename: c.files[0]}
	if !c.validate(spec, attrs, nil, "implied sink \"archive\" (parquet)", at) {
		return plan.Sink{}, false
	}
	raw, err := module.MarshalAttrs(attrs)
	if err != nil {
		c.errorf(at, "implied archive sink: encode attributes: %v", err)
		return plan.Sink{}, false
	}
	c.sinkKinds[archiveName] = archiveKind
	return plan.Sink{Name: archiveName, Kind: archiveKind, Attrs: raw, Pos: "implied"}, true
}

// sinkNames lists the declared sink names plus the implied archive.
func (c *compiler) sinkNames() []string {
	out := names(c.sinkByName)
	if _, ok := c.sinkByName[archiveName]; !ok && c.sinkKinds[archiveName] == archiveKind {
		out = append(out, archiveName)
	}
	return out
}

// alertSinks are the sink modules a rule may notify.
var alertSinks = []string{"alertmanager", "exec", "kafka", "stdout", "webhook"}

// AlertSinks returns the sink modules a rule may notify (for the docs).
func AlertSinks() []string { return slices.Clone(alertSinks) }

func isAlertSink(kind string) bool {
	for _, k := range alertSinks {
		if k == kind {
			return true
		}
	}
	return false
}
