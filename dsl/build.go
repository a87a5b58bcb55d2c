package dsl

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
		if len(lexErrs) == 0 || d.Subject.Start.Offset < lexErrs[0].pos.Offset {
			ds = ds.Append(d)
		}
	}
	return nil, ds.RemoveMultiples()
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
	if t.Type == tokRawString {
		p.Advance(t.Value)
		p.Column = p.Column - utf8.RuneCountInString(t.Value[strings.LastIndexByte(t.Value, '\n')+1:]) + len(t.Value[strings.LastIndexByte(t.Value, '\n')+1:])
		if !strings.Contains(t.Value, "\n") {
			p = t.Pos
			p.Offset += len(t.Value)
			p.Column += len(t.Value)
		}
		return p
	}
	p.Offset += len(t.Value)
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
	blk := &Block{Span: b.span(g.Pos, g.EndPos)}
	for _, a := range g.Attrs {
		blk.Attrs = append(blk.Attrs, b.attr(a))
	}
	return blk
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

// expr applies operator precedence to the flat chain (precedence climbing;
// every binary operator is left-associative).
func (b *builder) expr(g *gExpr) Expr {
	operands := []Expr{b.operand(g.Head)}
	for _, t := range g.Tail {
		operands = append(operands, b.operand(t.X))
	}
	i := 0
	next := func() Expr { e := operands[i]; i++; return e }
	var climb func(lhs Expr, minPrec int, k int) (Expr, int)
	climb = func(lhs Expr, minPrec int, k int) (Expr, int) {
		for k < len(g.Tail) && precedence[canonicalOp(g.Tail[k].Op)] >= minPrec {
			opTok := g.Tail[k]
			op := canonicalOp(opTok.Op)
			prec := precedence[op]
			k++
			rhs := next()
			for k < len(g.Tail) && precedence[canonicalOp(g.Tail[k].Op)] > prec {
				rhs, k = climb(rhs, prec+1, k)
			}
			opEnd := opTok.Pos
			opEnd.Offset += len(opTok.Op)
			opEnd.Column += len(opTok.Op)
			lhs = &BinaryExpr{
				Span: Span{Pos: lhs.(posNode).start(), EndPos: rhs.(posNode).end()},
				Op:   op, OpPos: opTok.Pos, OpEnd: opEnd, X: lhs, Y: rhs,
			}
		}
		return lhs, k
	}
	e, _ := climb(next(), 0, 0)
	return e
}

// posNode gives the builder a node's span whatever its type.
type posNode interface {
	start() lexer.Position
	end() lexer.Position
}

func (s Span) start() lexer.Position { return s.Pos }
func (s Span) end() lexer.Position   { return s.EndPos }

func (b *builder) operand(g *gOperand) Expr {
	x := b.primary(g.X)
	for _, ix := range g.Suffix {
		x = &IndexExpr{Span: Span{Pos: x.(posNode).start(), EndPos: b.end(ix.EndPos)}, X: x, Index: b.expr(ix.Index)}
	}
	for i := len(g.Prefix) - 1; i >= 0; i-- {
		p := g.Prefix[i]
		op := canonicalOp(p.Op)
		if n, ok := x.(*NumberLit); ok && op == OpNeg && n.Raw[0] != '-' && p.Pos.Offset+1 == n.Pos.Offset {
			n.Raw = "-" + n.Raw
			n.Value = -n.Value
			n.Int = -n.Int
			n.Pos = p.Pos
			continue
		}
		x = &UnaryExpr{Span: Span{Pos: p.Pos, EndPos: x.(posNode).end()}, Op: op, X: x}
	}
	return x
}

func (b *builder) primary(g gPrimary) Expr {
	switch g := g.(type) {
	case *gIdent:
		return b.ident(g)
	case *gString:
		return b.str(g)
	case *gNumber:
		return b.number(g)
	case *gDuration:
		sp := b.span(g.Pos, g.EndPos)
		d, err := parseDuration(g.Raw)
		if err != nil {
			b.errorf(sp.Pos, sp.EndPos, "duration %s: %v", g.Raw, err)
		}
		return &DurationLit{Span: sp, Raw: g.Raw, Value: d}
	case *gSize:
		sp := b.span(g.Pos, g.EndPos)
		n, err := parseSize(g.Raw)
		if err != nil {
			b.errorf(sp.Pos, sp.EndPos, "size %s: %v", g.Raw, err)
		}
		return &SizeLit{Span: sp, Raw: g.Raw, Bytes: n}
	case *gBool:
		return &BoolLit{Span: b.span(g.Pos, g.EndPos), Value: g.Raw == "true"}
	case *gCall:
		c := &CallExpr{Span: b.span(g.Pos, g.EndPos), Func: b.ident(g.Func)}
		for _, a := range g.Args {
			c.Args = append(c.Args, b.expr(a))
		}
		return c
	case *gList:
		l := &ListLit{Span: b.span(g.Pos, g.EndPos)}
		for _, e := range g.Elems {
			l.Elems = append(l.Elems, b.expr(e))
		}
		return l
	case *gMap:
		m := &MapLit{Span: b.span(g.Pos, g.EndPos)}
		for _, e := range g.Entries {
			ent := &MapEntry{Span: b.span(e.Pos, e.EndPos), Value: b.expr(e.Value)}
			if e.Name != nil {
				ent.Name = b.ident(e.Name)
			} else {
				ent.Quoted = b.str(e.Quoted)
			}
			m.Entries = append(m.Entries, ent)
		}
		return m
	case *gParen:
		return &ParenExpr{Span: b.span(g.Pos, g.EndPos), X: b.expr(g.X)}
	}
	panic("dsl: unknown primary expression type") // unreachable: the grammar's union lists every type
}

func (b *builder) number(g *gNumber) *NumberLit {
	n := &NumberLit{Span: b.span(g.Pos, g.EndPos), Raw: g.Raw}
	if strings.ContainsAny(g.Raw, ".eE") {
		v, err := strconv.ParseFloat(g.Raw, 64)
		if err != nil {
			b.errorf(n.Pos, n.EndPos, "number %s is out of range", g.Raw)
		}
		n.Value = v
		return n
	}
	v, err := strconv.ParseInt(g.Raw, 10, 64)
	if err != nil {
		b.errorf(n.Pos, n.EndPos, "integer %s is out of range (at most %d)", g.Raw, int64(math.MaxInt64))
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
	s := &StringLit{Span: b.span(g.Pos, g.EndPos), Raw: g.Raw}
	raw := g.Raw
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
