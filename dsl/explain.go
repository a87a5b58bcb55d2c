package dsl

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/reconmon/recon/diag"
)

// Syntax errors: participle reports where parsing stopped and what it
// expected in grammar terms. explain looks at the tokens around that place
// and says what is wrong in the language's terms, pointing at the token
// that is actually out of place.

// declKeywords start the top-level declarations.
var declKeywords = []string{"pipeline", "include", "const", "defaults", "source", "stream", "rule", "sink"}

func isDeclKeyword(s string) bool {
	for _, k := range declKeywords {
		if s == k {
			return true
		}
	}
	return false
}

// opener is an open bracket around the error.
type opener struct {
	tok  lexer.Token
	kind string // block, rule, map, list, index, call, module, paren
	name string // the call's function, the block's declaration
}

// syntax is the error being explained: the significant tokens and the
// index of the unexpected one.
type syntax struct {
	toks []lexer.Token // without comments
	i    int
}

func (s *syntax) tok(i int) lexer.Token {
	if i < 0 {
		return lexer.Token{Type: tokEOF}
	}
	if i >= len(s.toks) {
		return s.toks[len(s.toks)-1]
	}
	return s.toks[i]
}

func startsExpr(t lexer.Token) bool {
	switch t.Type {
	case tokIdent, tokString, tokRawString, tokInt, tokFloat, tokDuration, tokSize:
		return true
	case tokKeyword:
		return t.Value == "not" || t.Value == "true" || t.Value == "false"
	case tokPunct:
		return t.Value == "(" || t.Value == "[" || t.Value == "{" || t.Value == "-" || t.Value == "!"
	}
	return false
}

func endsExpr(t lexer.Token) bool {
	switch t.Type {
	case tokIdent, tokString, tokRawString, tokInt, tokFloat, tokDuration, tokSize:
		return true
	case tokKeyword:
		return t.Value == "true" || t.Value == "false"
	case tokPunct:
		return t.Value == ")" || t.Value == "]" || t.Value == "}"
	}
	return false
}

var binaryOps = map[string]bool{
	"||": true, "or": true, "&&": true, "and": true, "==": true, "!=": true, "<=": true, ">=": true,
	"<": true, ">": true, "=~": true, "!~": true, "+": true, "-": true, "*": true, "/": true, "%": true,
}

// describe names a token for a message: `port`, "a string", end of file.
func describe(t lexer.Token) string {
	switch t.Type {
	case tokEOF:
		return "end of file"
	case tokString, tokRawString:
		v := t.Value
		if len(v) > 24 {
			v = v[:20] + "…" + v[len(v)-1:]
		}
		return "string " + v
	}
	return "`" + t.Value + "`"
}

func at(p lexer.Position) string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// stack returns the brackets open before token i.
func (s *syntax) stack() []opener {
	var st []opener
	for k := 0; k < s.i && k < len(s.toks); k++ {
		t := s.toks[k]
		if t.Type != tokPunct {
			continue
		}
		prev := s.tok(k - 1)
		switch t.Value {
		case "{":
			o := opener{tok: t, kind: "map"}
			if len(st) == 0 && prev.Type == tokIdent {
				o.kind = "block"
				// Find the declaration keyword of this block.
				for j := k - 1; j >= 0 && j >= k-3; j-- {
					if isDeclKeyword(s.toks[j].Value) {
						o.name = s.toks[j].Value + " " + strings.TrimSpace(joinValues(s.toks[j+1:k]))
						if s.toks[j].Value == "rule" {
							o.kind = "rule"
						}
						break
					}
				}
			}
			st = append(st, o)
		case "[":
			if endsExpr(prev) {
				st = append(st, opener{tok: t, kind: "index"})
			} else {
				st = append(st, opener{tok: t, kind: "list"})
			}
		case "(":
			switch {
			case prev.Value == "module" && prev.Type == tokIdent:
				st = append(st, opener{tok: t, kind: "module"})
			case prev.Type == tokIdent:
				st = append(st, opener{tok: t, kind: "call", name: prev.Value})
			default:
				st = append(st, opener{tok: t, kind: "paren"})
			}
		case "}", "]", ")":
			if len(st) > 0 {
				st = st[:len(st)-1]
			}
		}
	}
	return st
}

func joinValues(ts []lexer.Token) string {
	vs := make([]string, len(ts))
	for i, t := range ts {
		vs[i] = t.Value
	}
	return strings.Join(vs, " ")
}

var expectedLiteral = regexp.MustCompile(`\(expected "([^"]+)"`)

// explain returns the diagnostic for a participle error at token index i
// (an index into b.toks, comments included).
func (b *builder) explain(i int, ute *participle.UnexpectedTokenError) *diag.Diagnostic {
	s := &syntax{}
	for k, t := range b.toks {
		if k == i {
			s.i = len(s.toks)
		}
		if t.Type != tokComment {
			s.toks = append(s.toks, t)
		}
	}
	if i >= len(b.toks) {
		s.i = len(s.toks) - 1
	}
	j, msg := s.explain()
	if msg == "" {
		// Fall back on what participle expected, when it is a token.
		msg = "unexpected " + describe(s.tok(s.i))
		if m := expectedLiteral.FindStringSubmatch(ute.Message()); m != nil {
			msg = fmt.Sprintf("expected `%s`, found %s", m[1], describe(s.tok(s.i)))
		}
		j = s.i
	}
	t := s.tok(j)
	return diag.Errorf(ToRange(t.Pos, tokenEnd(t)), "%s", msg)
}

// explain returns the index of the offending token and the message, or ""
// when it has nothing better than participle's words.
func (s *syntax) explain() (int, string) {
	i := s.i
	t, prev, next := s.tok(i), s.tok(i-1), s.tok(i+1)
	st := s.stack()

	// A connecting word or operator whose operand is missing: participle
	// backs up to the word itself.
	if (binaryOps[t.Value] && t.Type != tokString) || t.Value == "where" || t.Value == "for" || t.Value == "within" || t.Value == "when" || t.Value == "by" {
		if !startsExpr(next) && len(st) > 0 {
			return i + 1, fmt.Sprintf("expected an expression after `%s`, found %s", t.Value, describe(next))
		}
	}
	if !startsExpr(t) && len(st) > 0 {
		closer := t.Value == "}" || t.Value == "]" || t.Value == ")"
		if prev.Type == tokPunct && (prev.Value == "=" || binaryOps[prev.Value] || prev.Value == "," && !closer) ||
			prev.Type == tokIdent && (prev.Value == "where" || prev.Value == "when" || prev.Value == "for" || prev.Value == "within") ||
			prev.Type == tokKeyword && prev.Value == "not" || prev.Type == tokPunct && prev.Value == "!" {
			if prev.Value == "=" && s.tok(i-2).Value == "from" {
				return i, fmt.Sprintf("expected a source name, `module(NAME)` or `*` after `from =`, found %s", describe(t))
			}
			if prev.Value == "=" && s.tok(i-2).Type == tokIdent {
				return i, fmt.Sprintf("expected a value after `%s =`, found %s", s.tok(i-2).Value, describe(t))
			}
			return i, fmt.Sprintf("expected an expression after `%s`, found %s", prev.Value, describe(t))
		}
	}

	if len(st) == 0 {
		return s.topLevel()
	}
	top := st[len(st)-1]
	if t.Type == tokEOF {
		return i, fmt.Sprintf("unexpected end of file: `%s` opened at %s is not closed", top.tok.Value, at(top.tok.Pos))
	}
	// A bracket left open before the next attribute or declaration.
	if top.kind != "block" && top.kind != "rule" && top.kind != "map" && t.Pos.Line > prev.Pos.Line &&
		t.Type == tokIdent && (next.Value == "=" || isDeclKeyword(t.Value)) {
		closer := map[string]string{"(": ")", "[": "]"}[top.tok.Value]
		return i, fmt.Sprintf("expected `%s` to close the `%s` opened at %s, found %s", closer, top.tok.Value, at(top.tok.Pos), describe(t))
	}
	switch top.kind {
	case "block", "rule", "map":
		return s.inBlock(top)
	case "list":
		if t.Value == "}" || t.Value == ")" {
			return i, fmt.Sprintf("expected `]` to close the list opened at %s, found %s", at(top.tok.Pos), describe(t))
		}
		if endsExpr(prev) {
			return i, fmt.Sprintf("expected `,` or `]` after a list element, found %s", describe(t))
		}
	case "call":
		if endsExpr(prev) && t.Value != ")" {
			return i, fmt.Sprintf("expected `,` or `)` after an argument of `%s(…)`, found %s", top.name, describe(t))
		}
	case "module":
		if prev.Value == "(" {
			return i, fmt.Sprintf("expected a module name in `module(…)`, found %s", describe(t))
		}
		return i, fmt.Sprintf("expected `)` after `module(%s`, found %s", prev.Value, describe(t))
	case "paren":
		if endsExpr(prev) {
			return i, fmt.Sprintf("expected `)` to close the `(` opened at %s, found %s", at(top.tok.Pos), describe(t))
		}
	case "index":
		if endsExpr(prev) {
			return i, fmt.Sprintf("expected `]` to close the index opened at %s, found %s", at(top.tok.Pos), describe(t))
		}
	}
	if startsExpr(t) || t.Value == ")" || t.Value == "]" || t.Value == "}" {
		if prev.Value == "=" || prev.Value == "(" || prev.Value == "[" || prev.Value == "," || binaryOps[prev.Value] {
			return i, fmt.Sprintf("expected an expression after `%s`, found %s", prev.Value, describe(t))
		}
	}
	return i, ""
}

// topLevel explains an error outside any block: a bad declaration header.
func (s *syntax) topLevel() (int, string) {
	i := s.i
	t := s.tok(i)
	// The declaration the error is in starts at the last keyword of a
	// declaration before it.
	k := i
	for k >= 0 && !(isDeclKeyword(s.tok(k).Value) && s.tok(k).Type == tokIdent) {
		k--
	}
	if k < 0 || k < i && s.tok(k).Pos.Line < t.Pos.Line && i > k+4 {
		k = i
	}
	kw := s.tok(k)
	if k == i && !(isDeclKeyword(kw.Value) && kw.Type == tokIdent) {
		switch {
		case t.Value == "}":
			return i, "unexpected `}`: no block is open"
		case t.Type == tokIdent:
			msg := fmt.Sprintf("unknown declaration `%s` (expected %s)", t.Value, strings.Join(declKeywords, ", "))
			if sug := diag.Suggest(t.Value, declKeywords); sug != "" {
				msg += fmt.Sprintf("; did you mean `%s`?", sug)
			}
			return i, msg
		}
		return i, fmt.Sprintf("expected a declaration (%s), found %s", strings.Join(declKeywords, ", "), describe(t))
	}
	// Walk the header and report the first thing out of place.
	type want struct {
		ok   func(lexer.Token) bool
		what string
	}
	isIdent := func(t lexer.Token) bool { return t.Type == tokIdent }
	isString := func(t lexer.Token) bool { return t.Type == tokString || t.Type == tokRawString }
	isLit := func(v string) func(lexer.Token) bool {
		return func(t lexer.Token) bool { return t.Type == tokPunct && t.Value == v }
	}
	name := s.tok(k + 1).Value
	var steps []want
	switch kw.Value {
	case "pipeline":
		steps = []want{{isString, "a string after `pipeline` (e.g. `pipeline \"dc1-edge\"`)"}}
	case "include":
		steps = []want{{isString, "a file name string after `include` (e.g. `include \"common.recon\"`)"}}
	case "const":
		steps = []want{{isIdent, "a name after `const`"}, {isLit("="), fmt.Sprintf("`=` after `const %s`", name)}, {startsExpr, fmt.Sprintf("a value after `const %s =`", name)}}
	case "defaults":
		steps = []want{{isLit("{"), "`{` after `defaults`"}}
	case "source":
		steps = []want{{isIdent, "a source name after `source`"}, {isIdent, fmt.Sprintf("the module of source `%s` after its name (e.g. `source %s http { … }`)", name, name)}, {isLit("{"), fmt.Sprintf("`{` after `source %s %s`", name, s.tok(k+2).Value)}}
	case "sink":
		steps = []want{{isIdent, "a sink name after `sink`"}, {isIdent, fmt.Sprintf("the kind of sink `%s` after its name (e.g. `sink %s stdout { … }`)", name, name)}, {isLit("{"), fmt.Sprintf("`{` after `sink %s %s`", name, s.tok(k+2).Value)}}
	case "stream", "rule":
		steps = []want{{isIdent, fmt.Sprintf("a %s name after `%s`", kw.Value, kw.Value)}, {isLit("{"), fmt.Sprintf("`{` after `%s %s`", kw.Value, name)}}
	}
	for n, w := range steps {
		if got := s.tok(k + 1 + n); !w.ok(got) {
			if got.Type == tokKeyword && w.what == "a name after `const`" {
				return k + 1 + n, fmt.Sprintf("`%s` is a reserved word and cannot be a name", got.Value)
			}
			return k + 1 + n, fmt.Sprintf("expected %s, found %s", w.what, describe(got))
		}
	}
	if t.Value == "}" {
		return i, "unexpected `}`: no block is open"
	}
	if k < i && t.Pos.Line == s.tok(i-1).Pos.Line {
		return i, fmt.Sprintf("unexpected %s after the declaration", describe(t))
	}
	return i, fmt.Sprintf("expected a declaration (%s), found %s", strings.Join(declKeywords, ", "), describe(t))
}

// inBlock explains an error among the attributes of a block, the items of
// a rule or the entries of a map.
func (s *syntax) inBlock(top opener) (int, string) {
	i := s.i
	t, next := s.tok(i), s.tok(i+1)
	what, key := "attribute name", "attribute"
	if top.kind == "map" {
		what, key = "key", "entry"
	}
	// The name of an attribute or key was read and `=` is missing.
	if k, before := s.tok(i-1), s.tok(i-2); top.kind != "rule" && t.Value != "=" && (k.Type == tokIdent || top.kind == "map" && k.Type == tokString) &&
		(before.Type == tokPunct && (before.Value == "{" || before.Value == "," || before.Value == ";") || endsExpr(before)) {
		if top.kind != "map" && isDeclKeyword(k.Value) && t.Type == tokIdent && k.Pos.Line > top.tok.Pos.Line {
			return i - 1, fmt.Sprintf("expected `}` to close the block opened at %s before `%s`", at(top.tok.Pos), k.Value)
		}
		return i, fmt.Sprintf("expected `=` after %s `%s`, found %s", what, strings.Trim(k.Value, `"`), describe(t))
	}
	if top.kind == "rule" && t.Type == tokIdent {
		switch t.Value {
		case "warning", "critical", "clear":
			if next.Value != "when" && next.Value != "=" {
				return i + 1, fmt.Sprintf("expected `when` after `%s`, found %s", t.Value, describe(next))
			}
		case "group":
			if next.Value != "by" {
				return i + 1, fmt.Sprintf("expected `by` after `group`, found %s", describe(next))
			}
		case "from":
			if next.Value == "=" {
				after := s.tok(i + 2)
				if after.Type != tokIdent && after.Value != "*" {
					return i + 2, fmt.Sprintf("expected a source name, `module(NAME)` or `*` after `from =`, found %s", describe(after))
				}
			}
		}
	}
	if t.Type == tokIdent && isDeclKeyword(t.Value) && next.Value != "=" && t.Pos.Line > top.tok.Pos.Line && top.kind != "map" {
		return i, fmt.Sprintf("expected `}` to close the block opened at %s before `%s`", at(top.tok.Pos), t.Value)
	}
	if t.Type == tokIdent || top.kind == "map" && t.Type == tokString {
		if next.Value != "=" {
			if next.Type == tokEOF {
				return i + 1, fmt.Sprintf("unexpected end of file: `{` opened at %s is not closed", at(top.tok.Pos))
			}
			return i + 1, fmt.Sprintf("expected `=` after %s `%s`, found %s", what, strings.Trim(t.Value, `"`), describe(next))
		}
		if !startsExpr(s.tok(i + 2)) {
			return i + 2, fmt.Sprintf("expected a value after `%s =`, found %s", strings.Trim(t.Value, `"`), describe(s.tok(i+2)))
		}
		return i, ""
	}
	if t.Value == "}" {
		return i, ""
	}
	if t.Type == tokKeyword {
		return i, fmt.Sprintf("`%s` is a reserved word and cannot be an %s name", t.Value, key)
	}
	if endsExpr(s.tok(i-1)) && t.Pos.Line == s.tok(i-1).Pos.Line && top.kind != "map" {
		return i, fmt.Sprintf("unexpected %s after the value (one %s per line, or separate them with `;`)", describe(t), key)
	}
	return i, fmt.Sprintf("expected an %s (`name = value`) or `}`, found %s", key, describe(t))
}
