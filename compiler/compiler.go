// Package compiler turns parsed .recon files into the plan recond runs. It
// is the stage after dsl (syntax only): it loads includes, resolves
// constants and references, applies defaults, validates every module's
// attributes against its spec, type-checks rule expressions against the
// sample columns (design §3.1) and the aggregates' signatures, and emits a
// deterministic plan.
package compiler

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
)

// Options configure a compilation. The zero value uses the catalog's
// modules, the process environment and the file system.
type Options struct {
	// Registry holds the module specs; nil means catalog.Default().
	Registry *module.Registry
	// LookupEnv reads env("X") at compile time; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads the root file and its includes; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

func (o *Options) fill() {
	if o.Registry == nil {
		o.Registry = catalog.Default()
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
}

// Compile reads filename (through opts.ReadFile), the files it includes,
// and compiles them into a plan. The diagnostics are sorted, at most one
// error per line; the plan is nil when any of them is an error.
func Compile(filename string, opts Options) (*plan.Plan, diag.Diagnostics) {
	opts.fill()
	src, err := opts.ReadFile(filename)
	if err != nil {
		return nil, diag.Diagnostics{{Severity: diag.Error, Summary: fmt.Sprintf("cannot read %s: %v", filename, unwrapPath(err))}}
	}
	return CompileSource(filename, src, opts)
}

// CompileSource compiles src as the root file named filename; includes are
// read through opts.ReadFile relative to filename's directory.
func CompileSource(filename string, src []byte, opts Options) (*plan.Plan, diag.Diagnostics) {
	opts.fill()
	c := newCompiler(filename, opts)
	c.load(filename, src, nil, nil)
	if c.diags.HasErrors() {
		// Syntax and include errors only: a file that did not parse
		// declares nothing, and checking the rest would report every
		// reference to its declarations as unknown.
		return nil, c.diags.RemoveMultiples()
	}
	p := c.compile()
	ds := c.diags.RemoveMultiples()
	if ds.HasErrors() {
		return nil, ds
	}
	return p, ds
}

// unwrapPath drops the *PathError wrapper, whose path the message repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// compiler holds the state of one compilation.
type compiler struct {
	opts    Options
	rootDir string
	diags   diag.Diagnostics

	files    []string // as read, in include order
	included map[string]diag.Range

	pipeline *dsl.Pipeline
	consts   map[string]*constDecl
	defaults []*dsl.Attr
	sources  []*dsl.Source
	streams  []*dsl.Stream
	rules    []*dsl.Rule
	sinks    []*dsl.Sink

	// Declarations by name, for references and duplicate checks.
	sourceByName map[string]*dsl.Source
	streamByName map[string]*dsl.Stream
	sinkByName   map[string]*dsl.Sink
	ruleByName   map[string]*dsl.Rule
	// sinkKinds maps each valid sink name to its module.
	sinkKinds map[string]string
	// fieldSets caches the attributes each module accepts.
	fieldSets map[*module.Spec]*fieldSet
}

func newCompiler(filename string, opts Options) *compiler {
	return &compiler{
		opts:         opts,
		rootDir:      filepath.Dir(filename),
		included:     map[string]diag.Range{},
		consts:       map[string]*constDecl{},
		sourceByName: map[string]*dsl.Source{},
		streamByName: map[string]*dsl.Stream{},
		sinkByName:   map[string]*dsl.Sink{},
		ruleByName:   map[string]*dsl.Rule{},
		sinkKinds:    map[string]string{},
		fieldSets:    map[*module.Spec]*fieldSet{},
	}
}

func (c *compiler) errorf(r diag.Range, format string, args ...any) *diag.Diagnostic {
	d := diag.Errorf(r, format, args...)
	c.diags = c.diags.Append(d)
	return d
}

func (c *compiler) warnf(r diag.Range, format string, args ...any) *diag.Diagnostic {
	d := diag.Warningf(r, format, args...)
	c.diags = c.diags.Append(d)
	return d
}

// pos returns the plan position of r: file:line:col with the file relative
// to the root file's directory, in slash form.
func (c *compiler) pos(r diag.Range) string {
	return fmt.Sprintf("%s:%d:%d", c.relPath(r.Filename), r.Start.Line, r.Start.Column)
}

func (c *compiler) relPath(name string) string {
	rel, err := filepath.Rel(c.rootDir, name)
	if err != nil {
		rel = filepath.Base(name)
	}
	return filepath.ToSlash(rel)
}

// load parses one file and, depth first, the files it includes. chain is
// the include chain leading to it, for cycle messages; at is the include
// that named it.
func (c *compiler) load(name string, src []byte, chain []string, at *dsl.Include) {
	key := filepath.Clean(name)
	c.included[key] = diag.Range{}
	if at != nil {
		c.included[key] = at.Range()
	}
	c.files = append(c.files, name)
	f, ds := dsl.Parse(name, src)
	c.diags = c.diags.Extend(ds)
	if f == nil {
		return
	}
	chain = append(chain, key)
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *dsl.Include:
			c.include(name, d, chain)
		default:
			c.declare(d)
		}
	}
}

func (c *compiler) include(from string, inc *dsl.Include, chain []string) {
	rel, ok := inc.Path.Literal()
	if !ok {
		c.errorf(inc.Path.Range(), "include path must be a plain string, without ${…}")
		return
	}
	if rel == "" {
		c.errorf(inc.Path.Range(), "include path is empty")
		return
	}
	target := filepath.Join(filepath.Dir(from), filepath.FromSlash(rel))
	key := filepath.Clean(target)
	for i, k := range chain {
		if k == key {
			cycle := make([]string, 0, len(chain)-i+1)
			for _, p := range chain[i:] {
				cycle = append(cycle, c.relPath(p))
			}
			cycle = append(cycle, c.relPath(key))
			c.errorf(inc.Path.Range(), "include cycle: %s", strings.Join(cycle, " → "))
			return
		}
	}
	if first, seen := c.included[key]; seen {
		if first.Filename == "" {
			c.errorf(inc.Path.Range(), "%s is the root file; it cannot be included", c.relPath(key))
		} else {
			c.errorf(inc.Path.Range(), "%s is already included (at %s)", c.relPath(key), first)
		}
		return
	}
	src, err := c.opts.ReadFile(target)
	if err != nil {
		c.errorf(inc.Path.Range(), "cannot read included file %s: %v", c.relPath(target), unwrapPath(err))
		return
	}
	c.load(target, src, chain, inc)
}

// declare records a top-level declaration, refusing duplicate names.
func (c *compiler) declare(d dsl.Decl) {
	switch d := d.(type) {
	case *dsl.Pipeline:
		if c.pipeline != nil {
			c.dup("pipeline", d.Range(), c.pipeline.Range(), "pipeline declared twice")
			return
		}
		c.pipeline = d
	case *dsl.Const:
		if first, ok := c.consts[d.Name.Name]; ok {
			c.dup("constant", d.Name.Range(), first.decl.Name.Range(), "constant %q declared twice", d.Name.Name)
			return
		}
		c.consts[d.Name.Name] = &constDecl{decl: d}
	case *dsl.Defaults:
		c.defaults = append(c.defaults, d.Body.Attrs...)
	case *dsl.Source:
		if first := c.sourceOrStream(d.Name.Name); first != nil {
			c.dup("source", d.Name.Range(), first.Range(), "source %q declared twice", d.Name.Name)
			return
		}
		c.sourceByName[d.Name.Name] = d
		c.sources = append(c.sources, d)
	case *dsl.Stream:
		if first := c.sourceOrStream(d.Name.Name); first != nil {
			c.dup("stream", d.Name.Range(), first.Range(), "stream %q declared twice (sources and streams share names)", d.Name.Name)
			return
		}
		c.streamByName[d.Name.Name] = d
		c.streams = append(c.streams, d)
	case *dsl.Rule:
		if first, ok := c.ruleByName[d.Name.Name]; ok {
			c.dup("rule", d.Name.Range(), first.Name.Range(), "rule %q declared twice", d.Name.Name)
			return
		}
		c.ruleByName[d.Name.Name] = d
		c.rules = append(c.rules, d)
	case *dsl.Sink:
		if first, ok := c.sinkByName[d.Name.Name]; ok {
			c.dup("sink", d.Name.Range(), first.Name.Range(), "sink %q declared twice", d.Name.Name)
			return
		}
		c.sinkByName[d.Name.Name] = d
		c.sinks = append(c.sinks, d)
	}
}

// sourceOrStream returns the name node of the source or stream called name.
func (c *compiler) sourceOrStream(name string) dsl.Node {
	if s, ok := c.sourceByName[name]; ok {
		return s.Name
	}
	if s, ok := c.streamByName[name]; ok {
		return s.Name
	}
	return nil
}

// declaredAs says what else name is declared as, for the detail of an
// unknown reference ("pager is a sink, declared at x.recon:9:6"); "" when
// it is nothing.
func (c *compiler) declaredAs(name string) string {
	var what string
	var at diag.Range
	switch {
	case c.sourceByName[name] != nil:
		what, at = "a source", c.sourceByName[name].Name.Range()
	case c.streamByName[name] != nil:
		what, at = "a stream", c.streamByName[name].Name.Range()
	case c.sinkByName[name] != nil:
		what, at = "a sink", c.sinkByName[name].Name.Range()
	case c.ruleByName[name] != nil:
		what, at = "a rule", c.ruleByName[name].Name.Range()
	case c.consts[name] != nil:
		what, at = "a constant", c.consts[name].decl.Name.Range()
	default:
		return ""
	}
	return fmt.Sprintf("%s is %s, declared at %s", name, what, at)
}

// dup reports a second declaration at second; the detail points at the
// first one.
func (c *compiler) dup(what string, second, first diag.Range, format string, args ...any) {
	d := c.errorf(second, format, args...)
	d.Detail = fmt.Sprintf("the first %s is declared at %s", what, first)
	d.Context = &first
}

// compile checks every declaration and builds the plan.
func (c *compiler) compile() *plan.Plan {
	p := &plan.Plan{
		Format:  plan.FormatVersion,
		Sources: []plan.Source{},
		Streams: []plan.Stream{},
		Rules:   []plan.Rule{},
		Sinks:   []plan.Sink{},
	}
	for _, f := range c.files {
		p.Files = append(p.Files, c.relPath(f))
	}
	p.Pipeline = c.pipelineName()
	c.resolveConsts()
	defaults := c.evalDefaults()
	for _, s := range c.sources {
		if ps, ok := c.source(s, defaults); ok {
			p.Sources = append(p.Sources, ps)
		}
	}
	c.warnUnusedDefaults(defaults)
	for _, s := range c.streams {
		if ps, ok := c.stream(s); ok {
			p.Streams = append(p.Streams, ps)
		}
	}
	for _, s := range c.sinks {
		if ps, ok := c.sink(s); ok {
			p.Sinks = append(p.Sinks, ps)
		}
	}
	if ps, ok := c.impliedArchive(); ok {
		p.Sinks = append(p.Sinks, ps)
	}
	for _, r := range c.rules {
		if pr, ok := c.rule(r); ok {
			p.Rules = append(p.Rules, pr)
		}
	}
	return p
}

// pipelineName is the declared name, or the root file's base name without
// its extension.
func (c *compiler) pipelineName() string {
	if c.pipeline == nil {
		if len(c.files) == 0 {
			return ""
		}
		base := path.Base(filepath.ToSlash(c.files[0]))
		return strings.TrimSuffix(base, path.Ext(base))
	}
	v, ok := c.eval(c.pipeline.Name, nil)
	if !ok {
		return ""
	}
	if v.str == "" {
		c.errorf(c.pipeline.Name.Range(), "pipeline name is empty")
	}
	return v.str
}

// names returns the sorted keys of m, for suggestions.
func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// didYouMean returns "; did you mean \"x\"?" when a candidate is close.
func didYouMean(name string, candidates []string) string {
	if s := diag.Suggest(name, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}
