package dsl

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/reconmon/recon/diag"
)

// Parse parses one .recon file. It never panics: every problem is a
// diagnostic with the range it is about. When the diagnostics hold an
// error, the returned file is nil.
//
// The lexer reports every problem it finds (bad strings, unknown units,
// stray characters); the parser stops at its first error.
func Parse(filename string, src []byte) (*File, diag.Diagnostics) {
	toks, lexErrs := scan(filename, src)
	var ds diag.Diagnostics
	for _, e := range lexErrs {
		ds = ds.Append(diag.Errorf(ToRange(e.pos, e.end), "%s", e.msg))
	}
	b := &builder{toks: toks}
	peek, err := lexer.Upgrade(&sliceLexer{toks: toks}, tokComment)
	if err == nil {
		var g *gFile
		g, err = parser.ParseFromLexer(peek)
		if err == nil && len(ds) == 0 {
			f := b.file(filename, g)
			ds = ds.Extend(b.diags)
			if !ds.HasErrors() {
				return f, ds
			}
		}
	}
	if err != nil {
		d := b.syntaxError(err)
		// After a lexer error the parser often fails as a consequence:
		// keep its error only when it comes first.
		if d.Subject == nil || d.Subject.Start.Offset < firstOffset(lexErrs) {
			ds = ds.Append(d)
		}
	}
	return nil, ds.RemoveMultiples()
}

// firstOffset returns the offset of the earliest lexer error, or MaxInt.
func firstOffset(errs []lexError) int {
	first := math.MaxInt
	for _, e := range errs {
		first = min(first, e.pos.Offset)
	}
	return first
}

// builder turns the grammar tree into the AST.
type builder struct {
	toks  []lexer.Token
	diags diag.Diagnostics
}

func (b *builder) errorf(start, end lexer.Position, format string, args ...any) {
	b.diags = b.diags.Append(diag.Errorf(ToRange(start, end), format, args...))
}

// tokenAt returns the index of the token that starts at offset.
func (b *builder) tokenAt(offset int) int {
	return sort.Search(len(b.toks), func(i int) bool { return b.toks[i].Pos.Offset >= offset })
}

// end converts participle's EndPos (the position of the first token after
// a node) into the position just after the node's last token.
func (b *builder) end(after lexer.Position) lexer.Position {
	i := b.tokenAt(after.Offset)
	if i == 0 {
		return after
	}
	return tokenEnd(b.toks[i-1])
}

func tokenEnd(t lexer.Token) lexer.Position {
	p := t.Pos
	p.Offset += len(t.Value)
	if nl := strings.Count(t.Value, "\n"); nl > 0 {
		p.Line += nl
		p.Column = len(t.Value) - strings.LastIndexByte(t.Value, '\n')
		return p
	}
	p.Column += len(t.Value)
	return p
}

func (b *builder) span(pos, endPos lexer.Position) Span { return Span{Pos: pos, EndPos: b.end(endPos)} }

func (b *builder) file(filename string, g *gFile) *File {
	f := &File{Filename: filename}
	f.Pos = lexer.Position{Filename: filename, Line: 1, Column: 1}
	f.EndPos = b.toks[len(b.toks)-1].Pos
	for _, t := range b.toks {
		if t.Type == tokComment {
			f.Comments = append(f.Comments, &Comment{Span: Span{Pos: t.Pos, EndPos: tokenEnd(t)}, Text: t.Value})
		}
	}
	for _, d := range g.Decls {
		f.Decls = append(f.Decls, b.decl(d))
	}
	return f
}

func (b *builder) decl(d gDecl) Decl {
	switch d := d.(type) {
	case *gPipeline:
		return &Pipeline{Span: b.span(d.Pos, d.EndPos), Name: b.str(d.Name)}
	case *gInclude:
		return &Include{Span: b.span(d.Pos, d.EndPos), Path: b.str(d.Path)}
	case *gConst:
		return &Const{Span: b.span(d.Pos, d.EndPos), Name: b.ident(d.Name), Value: b.expr(d.Value)}
	case *gDefaults:
		return &Defaults{Span: b.span(d.Pos, d.EndPos), Body: b.block(d.Body)}
	case *gSource:
		return &Source{Span: b.span(d.Pos, d.EndPos), Name: b.ident(d.Name), Module: b.ident(d.Module), Body: b.block(d.Body)}
	case *gStream:
		return &Stream{Span: b.span(d.Pos, d.EndPos), Name: b.ident(d.Name), Body: b.block(d.Body)}
	case *gSink:
		return &Sink{Span: b.span(d.Pos, d.EndPos), Name: b.ident(d.Name), Kind: b.ident(d.Kind), Body: b.block(d.Body)}
	case *gRule:
		body := &RuleBody{Span: b.span(d.Body.Pos, d.Body.EndPos)}
		for _, it := range d.Body.Items {
			body.Items = append(body.Items, b.ruleItem(it))
		}
		return &Rule{Span: b.span(d.Pos, d.EndPos), Name: b.ident(d.Name), Body: body}
	}
	panic("dsl: unknown declaration type") // unreachable: the grammar's union lists every type
}

func (b *builder) block(g *gBlock) *Block {
	b.diags = b.diags.Extend(g.diags)
	return g.block
}

func (b *builder) attr(g *gAttr) *Attr {
	return &Attr{Span: b.span(g.Pos, g.EndPos), Name: b.ident(g.Name), Value: b.expr(g.Value)}
}

func (b *builder) ruleItem(it gRuleItem) RuleItem {
	switch it := it.(type) {
	case *gFrom:
		f := &From{Span: b.span(it.Pos, it.EndPos), Where: b.optExpr(it.Where)}
		for _, s := range it.Selectors {
			sel := &Selector{Span: b.span(s.Pos, s.EndPos), All: s.All}
			if s.Module != nil {
				sel.Module = b.ident(s.Module)
			} else if s.Name != nil {
				sel.Name = b.ident(s.Name)
			}
			f.Selectors = append(f.Selectors, sel)
		}
		return f
	case *gGroupBy:
		g := &GroupBy{Span: b.span(it.Pos, it.EndPos)}
		for _, e := range it.Exprs {
			g.Exprs = append(g.Exprs, b.expr(e))
		}
		return g
	case *gCondition:
		return &Condition{
			Span: b.span(it.Pos, it.EndPos), Severity: it.Severity, When: b.expr(it.When),
			For: b.optExpr(it.For), FollowedBy: b.optExpr(it.FollowedBy), Within: b.optExpr(it.Within),
		}
	case *gClear:
		return &Clear{Span: b.span(it.Pos, it.EndPos), When: b.expr(it.When)}
	case *gAttr:
		return b.attr(it)
	}
	panic("dsl: unknown rule item type") // unreachable: the grammar's union lists every type
}

func (b *builder) ident(g *gIdent) *Ident {
	return &Ident{Span: b.span(g.Pos, g.EndPos), Name: g.Name}
}

func (b *builder) optExpr(g *gExpr) Expr {
	if g == nil {
		return nil
	}
	return b.expr(g)
}

// Binary operator precedence, higher binds tighter.
var precedence = map[string]int{
	OpOr: 1, OpAnd: 2,
	OpEq: 3, OpNe: 3, OpLt: 3, OpLe: 3, OpGt: 3, OpGe: 3, OpMatch: 3, OpNotMatch: 3,
	OpAdd: 4, OpSub: 4,
	OpMul: 5, OpDiv: 5, OpMod: 5,
}

// canonicalOp maps the alternative spellings to the canonical ones.
func canonicalOp(op string) string {
	switch op {
	case "&&":
		return OpAnd
	case "||":
		return OpOr
	case "!":
		return OpNot
	}
	return op
}

// expr takes the expression parsed by hand (exprparse.go) and the errors
// found in its literals.
func (b *builder) expr(g *gExpr) Expr {
	b.diags = b.diags.Extend(g.diags)
	return g.expr
}

// posNode gives the builder a node's span whatever its type.
type posNode interface {
	start() lexer.Position
	end() lexer.Position
}

func (s Span) start() lexer.Position { return s.Pos }
func (s Span) end() lexer.Position   { return s.EndPos }

func (b *builder) durationTok(t lexer.Token) *DurationLit {
	sp := Span{Pos: t.Pos, EndPos: tokenEnd(t)}
	d, err := parseDuration(t.Value)
	if err != nil {
		b.errorf(sp.Pos, sp.EndPos, "duration %s is out of range", t.Value)
	}
	return &DurationLit{Span: sp, Raw: t.Value, Value: d}
}

func (b *builder) sizeTok(t lexer.Token) *SizeLit {
	sp := Span{Pos: t.Pos, EndPos: tokenEnd(t)}
	n, err := parseSize(t.Value)
	if err != nil {
		b.errorf(sp.Pos, sp.EndPos, "size %s is out of range", t.Value)
	}
	return &SizeLit{Span: sp, Raw: t.Value, Bytes: n}
}

func (b *builder) numberTok(t lexer.Token) *NumberLit {
	n := &NumberLit{Span: Span{Pos: t.Pos, EndPos: tokenEnd(t)}, Raw: t.Value}
	if strings.ContainsAny(t.Value, ".eE") {
		v, err := strconv.ParseFloat(t.Value, 64)
		if err != nil {
			b.errorf(n.Pos, n.EndPos, "number %s is out of range", t.Value)
		}
		n.Value = v
		return n
	}
	v, err := strconv.ParseInt(t.Value, 10, 64)
	if err != nil {
		b.errorf(n.Pos, n.EndPos, "integer %s is out of range (at most %d)", t.Value, int64(math.MaxInt64))
	}
	n.IsInt, n.Int, n.Value = true, v, float64(v)
	return n
}

var errOverflow = errors.New("out of range")

// parseDuration parses the components of a duration literal (the lexer has
// checked their units): 1h30m, 250ms, 1.5s, 2d.
func parseDuration(raw string) (time.Duration, error) {
	var total float64
	for raw != "" {
		i := 0
		for i < len(raw) && (isDigit(raw[i]) || raw[i] == '.') {
			i++
		}
		j := i
		for j < len(raw) && isLetter(raw[j]) {
			j++
		}
		v, err := strconv.ParseFloat(raw[:i], 64)
		if err != nil {
			return 0, errOverflow
		}
		var unit time.Duration
		switch raw[i:j] {
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = 24 * time.Hour
		}
		total += v * float64(unit)
		raw = raw[j:]
	}
	if total >= math.MaxInt64 {
		return 0, errOverflow
	}
	return time.Duration(total), nil
}

// parseSize parses a size literal (the lexer has checked the unit).
func parseSize(raw string) (int64, error) {
	i := 0
	for i < len(raw) && isDigit(raw[i]) {
		i++
	}
	n, err := strconv.ParseInt(raw[:i], 10, 64)
	unit := sizeUnits[raw[i:]]
	if err != nil || unit == 0 || n > math.MaxInt64/unit {
		return 0, errOverflow
	}
	return n * unit, nil
}

// str decodes a string literal into its parts. The lexer has validated the
// escapes and interpolations.
func (b *builder) str(g *gString) *StringLit {
	typ := tokString
	if strings.HasPrefix(g.Raw, "`") {
		typ = tokRawString
	}
	return b.strTok(lexer.Token{Type: typ, Value: g.Raw, Pos: g.Pos})
}

// strTok decodes a string token.
func (b *builder) strTok(g lexer.Token) *StringLit {
	s := &StringLit{Span: Span{Pos: g.Pos, EndPos: tokenEnd(g)}, Raw: g.Value}
	raw := g.Value
	if len(raw) < 2 {
		return s
	}
	if raw[0] == '`' {
		if len(raw) > 2 {
			start := g.Pos
			start.Offset++
			start.Column++
			end := s.EndPos
			end.Offset--
			end.Column--
			s.Parts = []*StringPart{{Span: Span{Pos: start, EndPos: end}, Text: raw[1 : len(raw)-1]}}
		}
		return s
	}
	at := func(i int) lexer.Position {
		p := g.Pos
		p.Offset += i
		p.Column += i
		return p
	}
	var text strings.Builder
	textStart := 1
	flush := func(i int) {
		if i > textStart {
			s.Parts = append(s.Parts, &StringPart{Span: Span{Pos: at(textStart), EndPos: at(i)}, Text: text.String()})
		}
		text.Reset()
	}
	body := len(raw) - 1
	for i := 1; i < body; {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < body:
			i += decodeEscape(raw, i, &text)
		case c == '$' && i+1 < body && raw[i+1] == '{':
			flush(i)
			close := strings.IndexByte(raw[i:], '}')
			if close < 0 {
				close = body - i
			}
			name := &Ident{Span: Span{Pos: at(i + 2), EndPos: at(i + close)}, Name: raw[i+2 : i+close]}
			s.Parts = append(s.Parts, &StringPart{Span: Span{Pos: at(i), EndPos: at(i + close + 1)}, Ref: name})
			i += close + 1
			textStart = i
		default:
			text.WriteByte(c)
			i++
		}
	}
	flush(body)
	return s
}

// decodeEscape writes the escape at raw[i:] and returns its length.
func decodeEscape(raw string, i int, w *strings.Builder) int {
	switch c := raw[i+1]; c {
	case 'n':
		w.WriteByte('\n')
	case 't':
		w.WriteByte('\t')
	case 'r':
		w.WriteByte('\r')
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if i+2+n <= len(raw) {
			if v, err := strconv.ParseUint(raw[i+2:i+2+n], 16, 32); err == nil {
				w.WriteRune(rune(v))
			}
		}
		return 2 + n
	default:
		w.WriteByte(c)
	}
	return 2
}

// syntaxError turns a participle error into a diagnostic.
func (b *builder) syntaxError(err error) *diag.Diagnostic {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return &diag.Diagnostic{Severity: diag.Error, Summary: err.Error()}
	}
	pos := perr.Position()
	i := b.tokenAt(pos.Offset)
	end := pos
	if i < len(b.toks) {
		end = tokenEnd(b.toks[i])
	}
	var ute *participle.UnexpectedTokenError
	if errors.As(err, &ute) {
		return b.explain(i, ute)
	}
	return diag.Errorf(ToRange(pos, end), "%s", perr.Message())
}

// ParseSize reads a size written as in .recon files ("256MiB", "1GB",
// "512B"; a bare "0" is zero), for command-line flags.
func ParseSize(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 || sizeUnits[s[i:]] == 0 {
		return 0, fmt.Errorf("bad size %q: want a whole number and a unit (B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB), e.g. 256MiB", s)
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: %w", s, err)
	}
	return n, nil
}
