package dsl

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/reconmon/recon/diag"
)

// Expressions and attribute blocks are the bulk of a file's tokens. They
// are parsed by hand (precedence climbing for expressions) through
// participle's Parseable hook, straight into AST nodes: the reflective
// grammar cost several times more per token (see docs/benchmarks.md#dsl).
// Their syntax errors are participle errors like the grammar's, so
// explain.go words them the same way.

// maxDepth bounds the nesting of expressions, so that a hostile file
// cannot exhaust the stack.
const maxDepth = 200

// gBlock is `{ ATTRS }`: attributes separated by whitespace, `;` or `,`.
type gBlock struct {
	block *Block
	diags diag.Diagnostics
}

// Parse implements participle.Parseable.
func (g *gBlock) Parse(lex *lexer.PeekingLexer) error {
	p := &exprParser{lex: lex, b: &builder{}}
	if !p.is("{") {
		return participle.NextMatch
	}
	open := *lex.Next()
	blk := &Block{}
	for !p.is("}") {
		name := *lex.Peek()
		if name.Type != tokIdent {
			return p.unexpected()
		}
		lex.Next()
		if _, err := p.expect("="); err != nil {
			return err
		}
		v, err := p.expr(0)
		if err != nil {
			return err
		}
		blk.Attrs = append(blk.Attrs, &Attr{
			Span:  Span{Pos: name.Pos, EndPos: v.(posNode).end()},
			Name:  &Ident{Span: spanOfTokens(name, name), Name: name.Value},
			Value: v,
		})
		if p.is(";") || p.is(",") {
			lex.Next()
		}
	}
	blk.Span = spanOfTokens(open, *lex.Next())
	g.block, g.diags = blk, p.b.diags
	return nil
}

// gExpr is an expression inside the participle grammar.
type gExpr struct {
	expr  Expr
	diags diag.Diagnostics
}

// Parse implements participle.Parseable.
func (g *gExpr) Parse(lex *lexer.PeekingLexer) error {
	if !startsExpr(*lex.Peek()) {
		return participle.NextMatch
	}
	p := &exprParser{lex: lex, b: &builder{}}
	e, err := p.expr(0)
	if err != nil {
		return err
	}
	g.expr, g.diags = e, p.b.diags
	return nil
}

type exprParser struct {
	lex   *lexer.PeekingLexer
	b     *builder // decodes literals and collects their errors
	depth int
}

func (p *exprParser) unexpected() error {
	return &participle.UnexpectedTokenError{Unexpected: *p.lex.Peek()}
}

// is reports whether the next token is the punctuation or keyword v.
func (p *exprParser) is(v string) bool {
	t := p.lex.Peek()
	return (t.Type == tokPunct || t.Type == tokKeyword) && t.Value == v
}

func (p *exprParser) expect(v string) (lexer.Token, error) {
	if !p.is(v) {
		return lexer.Token{}, p.unexpected()
	}
	return *p.lex.Next(), nil
}

func spanOfTokens(first, last lexer.Token) Span {
	return Span{Pos: first.Pos, EndPos: tokenEnd(last)}
}

func (p *exprParser) expr(minPrec int) (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, participle.Errorf(p.lex.Peek().Pos, "expression nested too deeply (more than %d levels)", maxDepth)
	}
	lhs, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := *p.lex.Peek()
		if t.Type != tokPunct && t.Type != tokKeyword {
			return lhs, nil
		}
		op := canonicalOp(t.Value)
		prec := precedence[op]
		if prec == 0 || prec < minPrec || op == OpNot {
			return lhs, nil
		}
		p.lex.Next()
		rhs, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		lhs = &BinaryExpr{
			Span: Span{Pos: lhs.(posNode).start(), EndPos: rhs.(posNode).end()},
			Op:   op, OpPos: t.Pos, OpEnd: tokenEnd(t), X: lhs, Y: rhs,
		}
	}
}

func (p *exprParser) unary() (Expr, error) {
	t := *p.lex.Peek()
	if (t.Type == tokPunct && (t.Value == "-" || t.Value == "!")) || (t.Type == tokKeyword && t.Value == "not") {
		p.lex.Next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, participle.Errorf(t.Pos, "expression nested too deeply (more than %d levels)", maxDepth)
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		op := canonicalOp(t.Value)
		if n, ok := x.(*NumberLit); ok && op == OpNeg && n.Raw[0] != '-' && t.Pos.Offset+1 == n.Pos.Offset {
			n.Raw = "-" + n.Raw
			n.Value = -n.Value
			n.Int = -n.Int
			n.Pos = t.Pos
			return n, nil
		}
		return &UnaryExpr{Span: Span{Pos: t.Pos, EndPos: x.(posNode).end()}, Op: op, X: x}, nil
	}
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.is("[") {
		p.lex.Next()
		idx, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		end, err := p.expect("]")
		if err != nil {
			return nil, err
		}
		x = &IndexExpr{Span: Span{Pos: x.(posNode).start(), EndPos: tokenEnd(end)}, X: x, Index: idx}
	}
	return x, nil
}

// list parses `elem ("," elem)* ","? close` after the opening token.
func (p *exprParser) list(close string) ([]Expr, lexer.Token, error) {
	var elems []Expr
	for !p.is(close) {
		e, err := p.expr(0)
		if err != nil {
			return nil, lexer.Token{}, err
		}
		elems = append(elems, e)
		if !p.is(",") {
			break
		}
		p.lex.Next()
	}
	end, err := p.expect(close)
	return elems, end, err
}

func (p *exprParser) primary() (Expr, error) {
	t := *p.lex.Peek()
	switch t.Type {
	case tokIdent:
		p.lex.Next()
		id := &Ident{Span: spanOfTokens(t, t), Name: t.Value}
		if !p.is("(") {
			return id, nil
		}
		p.lex.Next()
		args, end, err := p.list(")")
		if err != nil {
			return nil, err
		}
		return &CallExpr{Span: spanOfTokens(t, end), Func: id, Args: args}, nil
	case tokString, tokRawString:
		p.lex.Next()
		return p.b.strTok(t), nil
	case tokInt, tokFloat:
		p.lex.Next()
		return p.b.numberTok(t), nil
	case tokDuration:
		p.lex.Next()
		return p.b.durationTok(t), nil
	case tokSize:
		p.lex.Next()
		return p.b.sizeTok(t), nil
	case tokKeyword:
		if t.Value == "true" || t.Value == "false" {
			p.lex.Next()
			return &BoolLit{Span: spanOfTokens(t, t), Value: t.Value == "true"}, nil
		}
	case tokPunct:
		switch t.Value {
		case "(":
			p.lex.Next()
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			end, err := p.expect(")")
			if err != nil {
				return nil, err
			}
			return &ParenExpr{Span: spanOfTokens(t, end), X: x}, nil
		case "[":
			p.lex.Next()
			elems, end, err := p.list("]")
			if err != nil {
				return nil, err
			}
			return &ListLit{Span: spanOfTokens(t, end), Elems: elems}, nil
		case "{":
			p.lex.Next()
			return p.mapLit(t)
		}
	}
	return nil, p.unexpected()
}

func (p *exprParser) mapLit(open lexer.Token) (Expr, error) {
	m := &MapLit{}
	for !p.is("}") {
		k := *p.lex.Peek()
		ent := &MapEntry{}
		switch k.Type {
		case tokIdent:
			ent.Name = &Ident{Span: spanOfTokens(k, k), Name: k.Value}
		case tokString, tokRawString:
			ent.Quoted = p.b.strTok(k)
		default:
			return nil, p.unexpected()
		}
		p.lex.Next()
		if _, err := p.expect("="); err != nil {
			return nil, err
		}
		v, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		ent.Value = v
		ent.Span = Span{Pos: k.Pos, EndPos: v.(posNode).end()}
		m.Entries = append(m.Entries, ent)
		if p.is(",") || p.is(";") {
			p.lex.Next()
		}
	}
	end := *p.lex.Next()
	m.Span = spanOfTokens(open, end)
	return m, nil
}
