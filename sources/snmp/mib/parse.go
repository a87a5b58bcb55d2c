package mib

import (
	"fmt"
	"strconv"
)

// Kind is what an OID assignment declares.
type Kind uint8

// Kinds of assignments.
const (
	KindNode         Kind = iota // OBJECT IDENTIFIER, MODULE-IDENTITY, OBJECT-IDENTITY, groups …
	KindObject                   // OBJECT-TYPE: a scalar, table, row or column
	KindNotification             // NOTIFICATION-TYPE or TRAP-TYPE
)

// def is one OID assignment as written: name ::= { parent arcs... }.
type def struct {
	name   string
	kind   Kind
	parent string   // "" when the value starts with a number
	arcs   []uint32 // arcs below parent
}

// module is one parsed MIB module.
type module struct {
	name    string
	file    string
	smiV2   bool              // has a MODULE-IDENTITY
	imports map[string]string // symbol → module it comes from
	defs    []def
}

// macros whose instances are OID assignments (`name MACRO ... ::= value`).
var macros = map[string]Kind{
	"OBJECT-TYPE":        KindObject,
	"NOTIFICATION-TYPE":  KindNotification,
	"TRAP-TYPE":          KindNotification,
	"MODULE-IDENTITY":    KindNode,
	"OBJECT-IDENTITY":    KindNode,
	"OBJECT-GROUP":       KindNode,
	"NOTIFICATION-GROUP": KindNode,
	"MODULE-COMPLIANCE":  KindNode,
	"AGENT-CAPABILITIES": KindNode,
}

// parse reads every module of one file. It understands the subset of SMI
// needed to place names in the OID tree: IMPORTS, OBJECT IDENTIFIER value
// assignments and the macros above; everything else (types, textual
// conventions, macro definitions) is skipped.
func parse(file string, src []byte) ([]*module, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p := &parser{file: file, toks: toks}
	var mods []*module
	for p.pos < len(p.toks) {
		m, err := p.module()
		if err != nil {
			return nil, err
		}
		mods = append(mods, m)
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("%s: no MIB module (want NAME DEFINITIONS ::= BEGIN)", file)
	}
	return mods, nil
}

type parser struct {
	file string
	toks []token
	pos  int
}

func (p *parser) peek(off int) token {
	if p.pos+off < len(p.toks) {
		return p.toks[p.pos+off]
	}
	return token{kind: tokPunct, text: "<EOF>"}
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.peek(0).line, fmt.Sprintf(format, args...))
}

// module parses NAME [{ oid }] DEFINITIONS [tags] ::= BEGIN body END.
func (p *parser) module() (*module, error) {
	name := p.peek(0)
	if name.kind != tokIdent {
		return nil, p.errorf("want a module name, found %q", name.text)
	}
	m := &module{name: name.text, file: p.file, imports: map[string]string{}}
	p.pos++
	for !p.peek(0).is(tokIdent, "BEGIN") {
		if p.pos >= len(p.toks) {
			return nil, fmt.Errorf("%s: module %s: no BEGIN", p.file, m.name)
		}
		p.pos++
	}
	p.pos++
	for {
		t := p.peek(0)
		switch {
		case p.pos >= len(p.toks):
			return nil, fmt.Errorf("%s: module %s: no END", p.file, m.name)
		case t.is(tokIdent, "END"):
			p.pos++
			return m, nil
		case t.is(tokIdent, "IMPORTS"):
			p.pos++
			p.imports(m)
		case t.is(tokIdent, "EXPORTS"):
			p.skipPast(";")
		case t.kind == tokIdent && p.peek(1).is(tokIdent, "MACRO"):
			if err := p.skipMacro(); err != nil {
				return nil, err
			}
		case t.kind == tokIdent && isLower(t.text) && p.peek(1).is(tokIdent, "OBJECT") &&
			p.peek(2).is(tokIdent, "IDENTIFIER") && p.peek(3).kind == tokAssign:
			p.pos += 4
			d, err := p.oidValue(t, KindNode)
			if err != nil {
				return nil, err
			}
			m.defs = append(m.defs, d)
		case t.kind == tokIdent && isLower(t.text) && p.peek(1).kind == tokIdent && isMacro(p.peek(1).text):
			if p.peek(1).text == "MODULE-IDENTITY" {
				m.smiV2 = true
			}
			d, err := p.macroValue()
			if err != nil {
				return nil, err
			}
			m.defs = append(m.defs, d)
		default:
			p.pos++
		}
	}
}

func isMacro(s string) bool { _, ok := macros[s]; return ok }

func isLower(s string) bool { return s != "" && s[0] >= 'a' && s[0] <= 'z' }

// imports reads `sym, sym FROM Module ...;`.
func (p *parser) imports(m *module) {
	var pending []string
	for p.pos < len(p.toks) {
		t := p.peek(0)
		p.pos++
		switch {
		case t.is(tokPunct, ";"):
			return
		case t.is(tokIdent, "FROM"):
			from := p.peek(0)
			p.pos++
			for _, s := range pending {
				m.imports[s] = from.text
			}
			pending = pending[:0]
		case t.kind == tokIdent:
			pending = append(pending, t.text)
		}
	}
}

func (p *parser) skipPast(punct string) {
	for p.pos < len(p.toks) {
		t := p.peek(0)
		p.pos++
		if t.is(tokPunct, punct) {
			return
		}
	}
}

// skipMacro skips `NAME MACRO ::= BEGIN ... END`.
func (p *parser) skipMacro() error {
	start := p.peek(0)
	for p.pos < len(p.toks) {
		t := p.peek(0)
		p.pos++
		if t.is(tokIdent, "END") {
			return nil
		}
	}
	return fmt.Errorf("%s:%d: macro %s has no END", p.file, start.line, start.text)
}

// macroValue parses `name MACRO clauses... ::= value`: the clauses are
// skipped (braces balanced), except ENTERPRISE of a TRAP-TYPE.
func (p *parser) macroValue() (def, error) {
	name, macro := p.peek(0), p.peek(1)
	p.pos += 2
	enterprise := ""
	depth := 0
	for {
		t := p.peek(0)
		if p.pos >= len(p.toks) {
			return def{}, fmt.Errorf("%s:%d: %s %s has no ::=", p.file, name.line, name.text, macro.text)
		}
		p.pos++
		switch {
		case t.is(tokPunct, "{"):
			depth++
		case t.is(tokPunct, "}"):
			depth--
		case depth == 0 && t.is(tokIdent, "ENTERPRISE"):
			enterprise = p.peek(0).text
		case depth == 0 && t.kind == tokAssign:
			if macro.text != "TRAP-TYPE" {
				return p.oidValue(name, macros[macro.text])
			}
			n := p.peek(0)
			v, err := strconv.ParseUint(n.text, 10, 32)
			if n.kind != tokNumber || err != nil || enterprise == "" {
				return def{}, fmt.Errorf("%s:%d: TRAP-TYPE %s: want ENTERPRISE and ::= number", p.file, name.line, name.text)
			}
			p.pos++
			// SNMPv2 form of a v1 trap (RFC 3584 §3.1): enterprise.0.specific.
			return def{name: name.text, kind: KindNotification, parent: enterprise, arcs: []uint32{0, uint32(v)}}, nil
		}
	}
}

// oidValue parses `{ parent arc arc(n) name(n) ... }`.
func (p *parser) oidValue(name token, kind Kind) (def, error) {
	d := def{name: name.text, kind: kind}
	if !p.peek(0).is(tokPunct, "{") {
		return d, p.errorf("%s: want { after ::=", name.text)
	}
	p.pos++
	first := true
	for {
		t := p.peek(0)
		p.pos++
		switch {
		case t.is(tokPunct, "}"):
			if d.parent == "" && len(d.arcs) == 0 {
				return d, fmt.Errorf("%s:%d: %s: empty OID value", p.file, name.line, name.text)
			}
			return d, nil
		case t.kind == tokNumber:
			v, err := strconv.ParseUint(t.text, 10, 32)
			if err != nil {
				return d, fmt.Errorf("%s:%d: %s: bad arc %q", p.file, t.line, name.text, t.text)
			}
			d.arcs = append(d.arcs, uint32(v))
		case t.kind == tokIdent && p.peek(0).is(tokPunct, "("):
			// name(n): the number is the arc.
			n := p.peek(1)
			v, err := strconv.ParseUint(n.text, 10, 32)
			if n.kind != tokNumber || err != nil || !p.peek(2).is(tokPunct, ")") {
				return d, fmt.Errorf("%s:%d: %s: bad arc %s(...)", p.file, t.line, name.text, t.text)
			}
			p.pos += 3
			d.arcs = append(d.arcs, uint32(v))
		case t.kind == tokIdent && first:
			d.parent = t.text
		default:
			return d, fmt.Errorf("%s:%d: %s: unexpected %q in OID value", p.file, t.line, name.text, t.text)
		}
		first = false
	}
}
