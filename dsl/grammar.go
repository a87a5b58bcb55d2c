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

type gBlock struct {
	Pos, EndPos lexer.Position
	Attrs       []*gAttr `parser:"'{' ( @@ ( ';' | ',' )? )* '}'"`
}

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

// gExpr is a flat chain `parser:"operand (op operand)*"`; build.go applies the
// precedence.
type gExpr struct {
	Pos, EndPos lexer.Position
	Head        *gOperand   `parser:"@@"`
	Tail        []*gBinTail `parser:"@@*"`
}

type gBinTail struct {
	Pos, EndPos lexer.Position
	Op          string    `parser:"@( '||' | 'or' | '&&' | 'and' | '==' | '!=' | '<=' | '>=' | '<' | '>' | '=~' | '!~' | '+' | '-' | '*' | '/' | '%' )"`
	X           *gOperand `parser:"@@"`
}

type gOperand struct {
	Pos, EndPos lexer.Position
	Prefix      []*gPrefix `parser:"@@*"`
	X           gPrimary   `parser:"@@"`
	Suffix      []*gIndex  `parser:"@@*"`
}

type gPrefix struct {
	Pos, EndPos lexer.Position
	Op          string `parser:"@( '-' | '!' | 'not' )"`
}

type gIndex struct {
	Pos, EndPos lexer.Position
	Index       *gExpr `parser:"'[' @@ ']'"`
}

type gPrimary interface{ gPrimary() }

type gIdent struct {
	Pos, EndPos lexer.Position
	Name        string `parser:"@Ident"`
}

type gString struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@( String | RawString )"`
}

type gNumber struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@( Int | Float )"`
}

type gDuration struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@Duration"`
}

type gSize struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@Size"`
}

type gBool struct {
	Pos, EndPos lexer.Position
	Raw         string `parser:"@( 'true' | 'false' )"`
}

type gCall struct {
	Pos, EndPos lexer.Position
	Func        *gIdent  `parser:"@@ '('"`
	Args        []*gExpr `parser:"( @@ ( ',' @@ )* ','? )? ')'"`
}

type gList struct {
	Pos, EndPos lexer.Position
	Elems       []*gExpr `parser:"'[' ( @@ ( ',' @@ )* ','? )? ']'"`
}

type gMap struct {
	Pos, EndPos lexer.Position
	Entries     []*gMapEntry `parser:"'{' ( @@ ( ',' | ';' )? )* '}'"`
}

type gMapEntry struct {
	Pos, EndPos lexer.Position
	Name        *gIdent  `parser:"( @@"`
	Quoted      *gString `parser:"| @@ ) '='"`
	Value       *gExpr   `parser:"@@"`
}

type gParen struct {
	Pos, EndPos lexer.Position
	X           *gExpr `parser:"'(' @@ ')'"`
}

func (gIdent) gPrimary()    {}
func (gString) gPrimary()   {}
func (gNumber) gPrimary()   {}
func (gDuration) gPrimary() {}
func (gSize) gPrimary()     {}
func (gBool) gPrimary()     {}
func (gCall) gPrimary()     {}
func (gList) gPrimary()     {}
func (gMap) gPrimary()      {}
func (gParen) gPrimary()    {}

var parser = buildParser()

func buildParser() *participle.Parser[gFile] {
	// Naming symbols here makes the package initialise them first.
	return participle.MustBuild[gFile](
		participle.Lexer(definition{symbols: symbols}),
		participle.Elide("Comment"),
		participle.Union[gDecl](&gPipeline{}, &gInclude{}, &gConst{}, &gDefaults{}, &gSource{}, &gStream{}, &gRule{}, &gSink{}),
		participle.Union[gRuleItem](&gFrom{}, &gGroupBy{}, &gCondition{}, &gClear{}, &gAttr{}),
		participle.Union[gPrimary](&gCall{}, &gIdent{}, &gString{}, &gNumber{}, &gDuration{}, &gSize{}, &gBool{}, &gList{}, &gMap{}, &gParen{}),
	)
}
