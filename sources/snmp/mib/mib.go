// Package mib loads SMI MIB modules (SMIv1 and SMIv2) from directories and
// translates between object names and numeric OIDs: IF-MIB::ifInOctets ↔
// 1.3.6.1.2.1.2.2.1.10.
//
// Only what places names in the OID tree is read: IMPORTS, OBJECT IDENTIFIER
// assignments and the OBJECT-TYPE, OBJECT-IDENTITY, MODULE-IDENTITY,
// NOTIFICATION-TYPE, TRAP-TYPE, group and compliance macros. Types, textual
// conventions and DESCRIPTIONs are skipped.
//
// Modules are loaded by name (plus everything they import), or, when no
// names are given, every MIB file in the directories. Unlike net-snmp's
// MIBS=ALL, an OID defined by several modules is named after the SMIv2 one
// (IF-MIB::ifInOctets, not RFC1213-MIB::ifInOctets).
package mib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Object is one named node of the OID tree.
type Object struct {
	Module string
	Name   string
	OID    string // numeric, no leading dot
	Kind   Kind
	qual   string // MODULE::name, built once by Load
}

// String returns MODULE::name.
func (o Object) String() string {
	if o.qual != "" {
		return o.qual
	}
	return o.Module + "::" + o.Name
}

// Set is a loaded set of modules. It is read-only after Load and safe for
// concurrent use. A nil *Set knows no names: only numeric OIDs resolve.
type Set struct {
	dirs    []string
	modules []string            // loaded module names, sorted
	byQual  map[string]Object   // MODULE::name
	byName  map[string][]Object // name → definitions, preferred first
	byOID   map[string]Object   // OID → preferred name
	smiV2   map[string]bool     // module → has a MODULE-IDENTITY
}

// ErrUnknown is wrapped by Resolve errors about names no loaded module defines.
var ErrUnknown = errors.New("unknown MIB object")

// Load reads the named modules and what they import from dirs (searched in
// order; a file is found by its name, with or without .mib/.txt/.my, or by
// the module name it declares). With no module names, every MIB file in
// dirs is loaded.
func Load(dirs, modules []string) (*Set, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no MIB directories given")
	}
	l := &loader{dirs: dirs, mods: map[string]*module{}, files: map[string]string{}}
	if err := l.index(); err != nil {
		return nil, err
	}
	if len(modules) == 0 {
		if err := l.loadAll(); err != nil {
			return nil, err
		}
	}
	for _, name := range modules {
		if err := l.load(name, ""); err != nil {
			return nil, err
		}
	}
	return l.build(), nil
}

// Modules returns the names of the loaded modules, sorted.
func (s *Set) Modules() []string {
	if s == nil {
		return nil
	}
	return s.modules
}

// Resolve turns an OID written by an operator into a numeric OID (no
// leading dot). Accepted: numeric (.1.3.6.1.2.1.1.3.0), MODULE::name,
// name, either with a numeric instance suffix (sysUpTime.0,
// IF-MIB::ifDescr.2).
func (s *Set) Resolve(text string) (string, error) {
	str := strings.TrimPrefix(strings.TrimSpace(text), ".")
	if str == "" {
		return "", errors.New("empty OID")
	}
	if isDigit(str[0]) {
		if err := checkNumeric(str); err != nil {
			return "", fmt.Errorf("OID %q: %w", text, err)
		}
		return str, nil
	}
	mod, name, qualified := strings.Cut(str, "::")
	if !qualified {
		mod, name = "", str
	}
	name, suffix, _ := strings.Cut(name, ".")
	if suffix != "" {
		if err := checkNumeric(suffix); err != nil {
			return "", fmt.Errorf("OID %q: instance suffix: %w", text, err)
		}
	}
	if s == nil {
		return "", fmt.Errorf("%w %q: no MIBs are loaded (set mib_dirs, or write the numeric OID)", ErrUnknown, text)
	}
	var obj Object
	if qualified {
		o, ok := s.byQual[mod+"::"+name]
		if !ok {
			return "", s.unknown(text, name)
		}
		obj = o
	} else {
		defs := s.byName[name]
		if len(defs) == 0 {
			return "", s.unknown(text, name)
		}
		for _, d := range defs[1:] {
			// An SMIv2 definition wins over SMIv1 ones (IF-MIB::linkDown
			// over RFC-1215::linkDown); two of a kind are ambiguous.
			if d.OID != defs[0].OID && s.smiV2[d.Module] == s.smiV2[defs[0].Module] {
				return "", fmt.Errorf("MIB object %q is ambiguous: %s (%s) and %s (%s); write MODULE::%s",
					text, defs[0], defs[0].OID, d, d.OID, name)
			}
		}
		obj = defs[0]
	}
	if suffix != "" {
		return obj.OID + "." + suffix, nil
	}
	return obj.OID, nil
}

func (s *Set) unknown(text, name string) error {
	hint := ""
	if near := s.nearest(name); near != "" {
		hint = fmt.Sprintf("; did you mean %q?", near)
	}
	return fmt.Errorf("%w %q (modules %s loaded from %s)%s", ErrUnknown, text,
		strings.Join(s.modules, ", "), strings.Join(s.dirs, ", "), hint)
}

// nearest returns the loaded name closest to name (edit distance ≤ 2).
func (s *Set) nearest(name string) string {
	best, bestD := "", 3
	for n := range s.byName {
		if d := distance(name, n, 3); d < bestD || (d == bestD && d < 3 && n < best) {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return s.byName[best][0].String()
}

// Name returns the object whose OID is exactly oid (numeric, no leading dot).
func (s *Set) Name(oid string) (Object, bool) {
	if s == nil {
		return Object{}, false
	}
	o, ok := s.byOID[oid]
	return o, ok
}

// Instance returns the OBJECT-TYPE that oid is an instance of (the longest
// prefix naming an object type) and the instance suffix ("" when oid is the
// object itself): 1.3.6.1.2.1.2.2.1.8.3 → IF-MIB::ifOperStatus, "3".
func (s *Set) Instance(oid string) (Object, string, bool) {
	if s == nil {
		return Object{}, "", false
	}
	for i := len(oid); i > 0; i = strings.LastIndexByte(oid[:i], '.') {
		if o, ok := s.byOID[oid[:i]]; ok {
			if o.Kind != KindObject {
				return Object{}, "", false
			}
			if i == len(oid) {
				return o, "", true
			}
			return o, oid[i+1:], true
		}
	}
	return Object{}, "", false
}

func checkNumeric(s string) error {
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return errors.New("empty component")
		}
		if _, err := strconv.ParseUint(part, 10, 32); err != nil {
			return fmt.Errorf("component %q is not a number below 2^32", part)
		}
	}
	return nil
}

// distance is the Levenshtein distance of a and b, or limit when it is at
// least limit.
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// loader finds, parses and links modules.
type loader struct {
	dirs    []string
	files   map[string]string // file stem → path, first directory wins
	mods    map[string]*module
	scanned bool // every file's declared module names are in headers
	headers map[string]string
}

var mibExts = []string{".mib", ".txt", ".my", ".smi"}

func (l *loader) index() error {
	for _, dir := range l.dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("MIB directory: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			stem := e.Name()
			if ext := filepath.Ext(stem); slices.Contains(mibExts, strings.ToLower(ext)) {
				stem = strings.TrimSuffix(stem, ext)
			}
			if _, ok := l.files[stem]; !ok {
				l.files[stem] = filepath.Join(dir, e.Name())
			}
		}
	}
	return nil
}

// parseFile parses path and registers its modules (the first definition of
// a module name wins, as the first directory does).
func (l *loader) parseFile(path string) ([]*module, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read MIB: %w", err)
	}
	mods, err := parse(path, src)
	if err != nil {
		return nil, fmt.Errorf("parse MIB: %w", err)
	}
	for _, m := range mods {
		if _, ok := l.mods[m.name]; !ok {
			l.mods[m.name] = m
		}
	}
	return mods, nil
}

// loadAll parses every file of the directories that holds a MIB module;
// other files (READMEs, indexes) are skipped.
func (l *loader) loadAll() error {
	paths := make([]string, 0, len(l.files))
	for _, p := range l.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read MIB: %w", err)
		}
		if !strings.Contains(string(src), "DEFINITIONS") {
			continue
		}
		if _, err := l.parseFile(p); err != nil {
			return err
		}
	}
	return l.loadImports()
}

// loadImports loads the modules imported by the loaded ones.
func (l *loader) loadImports() error {
	for {
		var missing [][2]string
		for _, m := range l.mods {
			for _, from := range m.imports {
				if _, ok := l.mods[from]; !ok {
					missing = append(missing, [2]string{from, m.name})
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		slices.SortFunc(missing, func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) })
		for _, mm := range missing {
			if err := l.load(mm[0], mm[1]); err != nil {
				return err
			}
		}
	}
}

// load loads module name (imported by importer, "" when asked for) and its
// imports.
func (l *loader) load(name, importer string) error {
	if _, ok := l.mods[name]; ok {
		return nil
	}
	if path, ok := l.files[name]; ok {
		if _, err := l.parseFile(path); err != nil {
			return err
		}
	}
	if _, ok := l.mods[name]; !ok {
		if err := l.scanHeaders(); err != nil {
			return err
		}
		if path, ok := l.headers[name]; ok {
			if _, err := l.parseFile(path); err != nil {
				return err
			}
		}
	}
	if _, ok := l.mods[name]; !ok {
		what := fmt.Sprintf("MIB module %s", name)
		if importer != "" {
			what += " (imported by " + importer + ")"
		}
		return fmt.Errorf("%s not found in %s", what, strings.Join(l.dirs, ", "))
	}
	return l.loadImports()
}

// scanHeaders maps the module names every file declares to the file, for
// modules whose file is not named after them.
func (l *loader) scanHeaders() error {
	if l.scanned {
		return nil
	}
	l.scanned = true
	l.headers = map[string]string{}
	for _, path := range l.files {
		src, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read MIB: %w", err)
		}
		toks, err := lex(src)
		if err != nil {
			continue // not a MIB file
		}
		for i := 0; i+1 < len(toks); i++ {
			if toks[i].kind == tokIdent && toks[i+1].is(tokIdent, "DEFINITIONS") {
				if prev, ok := l.headers[toks[i].text]; !ok || path < prev {
					l.headers[toks[i].text] = path
				}
			}
		}
	}
	return nil
}

// roots are the arcs no module defines.
var roots = map[string][]uint32{"ccitt": {0}, "iso": {1}, "joint-iso-ccitt": {2}, "joint-iso-itu-t": {2}}

// build resolves every definition to its numeric OID and builds the indexes.
// A definition whose parent no loaded module defines is left out.
func (l *loader) build() *Set {
	s := &Set{dirs: l.dirs, byQual: map[string]Object{}, byName: map[string][]Object{}, byOID: map[string]Object{}}
	r := &resolver{mods: l.mods, done: map[*def][]uint32{}, busy: map[*def]bool{}, byName: map[*module]map[string]*def{}}
	s.smiV2 = map[string]bool{}
	for name, m := range l.mods {
		s.modules = append(s.modules, name)
		s.smiV2[name] = m.smiV2
	}
	slices.Sort(s.modules)
	r.order = s.modules
	for _, name := range s.modules {
		m := l.mods[name]
		for i := range m.defs {
			d := &m.defs[i]
			arcs, ok := r.resolve(m, d)
			if !ok {
				continue
			}
			o := Object{Module: m.name, Name: d.name, OID: formatOID(arcs), Kind: d.kind, qual: m.name + "::" + d.name}
			if _, dup := s.byQual[o.String()]; dup {
				continue
			}
			s.byQual[o.String()] = o
			s.byName[d.name] = append(s.byName[d.name], o)
			if prev, ok := s.byOID[o.OID]; !ok || better(l.mods, o, prev) {
				s.byOID[o.OID] = o
			}
		}
	}
	for name, defs := range s.byName {
		slices.SortStableFunc(defs, func(a, b Object) int {
			if better(l.mods, a, b) {
				return -1
			}
			if better(l.mods, b, a) {
				return 1
			}
			return 0
		})
		s.byName[name] = defs
	}
	return s
}

// better reports whether a names an OID better than b: an SMIv2 module over
// an SMIv1 one (IF-MIB over RFC1213-MIB), a specific kind over a plain
// node, then the module name.
func better(mods map[string]*module, a, b Object) bool {
	av, bv := mods[a.Module].smiV2, mods[b.Module].smiV2
	if av != bv {
		return av
	}
	if (a.Kind == KindNode) != (b.Kind == KindNode) {
		return a.Kind != KindNode
	}
	return a.Module < b.Module
}

type resolver struct {
	mods   map[string]*module
	order  []string
	done   map[*def][]uint32
	busy   map[*def]bool
	byName map[*module]map[string]*def
}

func (r *resolver) defsOf(m *module) map[string]*def {
	if t, ok := r.byName[m]; ok {
		return t
	}
	t := make(map[string]*def, len(m.defs))
	for i := range m.defs {
		if _, ok := t[m.defs[i].name]; !ok {
			t[m.defs[i].name] = &m.defs[i]
		}
	}
	r.byName[m] = t
	return t
}

// find looks name up in m, then along m's imports.
func (r *resolver) find(m *module, name string, hops int) (*module, *def) {
	if d, ok := r.defsOf(m)[name]; ok {
		return m, d
	}
	if hops > 8 {
		return nil, nil
	}
	if from, ok := m.imports[name]; ok {
		if fm, ok := r.mods[from]; ok {
			return r.find(fm, name, hops+1)
		}
	}
	return nil, nil
}

func (r *resolver) resolve(m *module, d *def) ([]uint32, bool) {
	if arcs, ok := r.done[d]; ok {
		return arcs, arcs != nil
	}
	if r.busy[d] {
		return nil, false // a cycle
	}
	r.busy[d] = true
	defer delete(r.busy, d)
	var base []uint32
	if d.parent != "" {
		pm, pd := r.find(m, d.parent, 0)
		if pd == nil {
			// Old MIBs use names they do not import (RFC-1215's snmp):
			// take the first loaded module that defines it.
			for _, name := range r.order {
				if cand, ok := r.defsOf(r.mods[name])[d.parent]; ok {
					pm, pd = r.mods[name], cand
					break
				}
			}
		}
		switch {
		case pd != nil:
			arcs, ok := r.resolve(pm, pd)
			if !ok {
				r.done[d] = nil
				return nil, false
			}
			base = arcs
		case roots[d.parent] != nil:
			base = roots[d.parent]
		default:
			r.done[d] = nil
			return nil, false
		}
	}
	arcs := make([]uint32, 0, len(base)+len(d.arcs))
	arcs = append(append(arcs, base...), d.arcs...)
	r.done[d] = arcs
	return arcs, true
}

func formatOID(arcs []uint32) string {
	var b strings.Builder
	for i, a := range arcs {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(a), 10))
	}
	return b.String()
}
