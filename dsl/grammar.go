package dsl

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The participle grammar. These types mirror the syntax; build.go turns
// them into the AST of ast.go (operator precedence, decoded literals, exact
// end positions).

type gFile struct {
	Pos   lexer.Position
	Decls []gDecl `parser:"@@*"`
}

type gDecl interface{ gDecl() }

type gPipeline struct {
	Pos, EndPos lexer.Position
	Name        *gString `parser:"'pipeline' @@"`
}

type gInclude struct {
	Pos, EndPos lexer.Position
	Path        *gString `parser:"'include' @@"`
}

type gConst struct {
	Pos, EndPos lexer.Position
	Name        *gIdent `parser:"'const' @@ '='"`
	Value       *gExpr  `parser:"@@"`
}

type gDefaults struct {
	Pos, EndPos lexer.Position
	Body        *gBlock `parser:"'defaults' @@"`
}

type gSource struct {
	Pos, EndPos lexer.Position
	Name        *gIdent `parser:"'source' @@"`
	Module      *gIdent `parser:"@@"`
	Body        *gBlock `parser:"@@"`
}

type gStream struct {
	Pos, EndPos lexer.Position
	Name        *gIdent `parser:"'stream' @@"`
	Body        *gBlock `parser:"@@"`
}

type gSink struct {
	Pos, EndPos lexer.Position
	Name        *gIdent `parser:"'sink' @@"`
	Kind        *gIdent `parser:"@@"`
	Body        *gBlock `parser:"@@"`
}

type gRule struct {
	Pos, EndPos lexer.Position
	Name        *gIdent    `parser:"'rule' @@"`
	Body        *gRuleBody `parser:"@@"`
}

func (gPipeline) gDecl() {}
func (gInclude) gDecl()  {}
func (gConst) gDecl()    {}
func (gDefaults) gDecl() {}
func (gSource) gDecl()   {}
func (gStream) gDecl()   {}
func (gSink) gDecl()     {}
func (gRule) gDecl()     {}

type gAttr struct {
	Pos, EndPos lexer.Position
	Name        *gIdent `parser:"@@ '='"`
	Value       *gExpr  `parser:"@@"`
}

type gRuleBody struct {
	Pos, EndPos lexer.Position
	Items       []gRuleItem `parser:"'{' ( @@ ( ';' | ',' )? )* '}'"`
}

type gRuleItem interface{ gRuleItem() }

type gFrom struct {
	Pos, EndPos lexer.Position
	Selectors   []*gSelector `parser:"'from' '=' @@ ( ',' @@ )*"`
	Where       *gExpr       `parser:"( 'where' @@ )?"`
}

type gSelector struct {
	Pos, EndPos lexer.Position
	Module      *gIdent `parser:"(   'module' '(' @@ ')'"`
	All         bool    `parser:"  | @'*'"`
	Name        *gIdent `parser:"  | @@ )"`
}

type gGroupBy struct {
	Pos, EndPos lexer.Position
	Exprs       []*gExpr `parser:"'group' 'by' @@ ( ',' @@ )*"`
}

type gCondition struct {
	Pos, EndPos lexer.Position
	Severity    string `parser:"@( 'warning' | 'critical' ) 'when'"`
	When        *gExpr `parser:"@@"`
	For         *gExpr `parser:"(   'for' @@"`
	FollowedBy  *gExpr `parser:"  | 'not' 'followed' 'by' @@"`
	Within      *gExpr `parser:"    'within' @@ )?"`
}

type gClear struct {
	Pos, EndPos lexer.Position
	When        *gExpr `parser:"'clear' 'when' @@"`
}

func (gFrom) gRuleItem()      {}
func (gGroupBy) gRuleItem()   {}
func (gCondition) gRuleItem() {}
func (gClear) gRuleItem()     {}
func (gAttr) gRuleItem()      {}

type gIdent struct {
	Pos, EndPos lexer.Position
	Name        string `parser:"@Ident"`
}

type gString struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@( String | RawString )"`
}

var parser = buildParser()

func buildParser() *participle.Parser[gFile] {
	// Naming symbols here makes the package initialise them first.
	return participle.MustBuild[gFile](
		participle.Lexer(definition{symbols: symbols}),
		participle.Elide("Comment"),
		// Most frequent first: each alternative tried costs an allocation.
		participle.Union[gDecl](&gSource{}, &gRule{}, &gSink{}, &gStream{}, &gConst{}, &gDefaults{}, &gInclude{}, &gPipeline{}),
		participle.Union[gRuleItem](&gFrom{}, &gGroupBy{}, &gCondition{}, &gClear{}, &gAttr{}),
	)
}
