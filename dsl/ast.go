package dsl

import (
	"time"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/reconmon/recon/diag"
)

// Node is any node of the syntax tree.
type Node interface {
	// Range is the node's source range (end exclusive).
	Range() diag.Range
}

// Span is the source range of a node: Pos is its first byte, EndPos the
// position just after its last byte. Every node embeds a Span.
type Span struct {
	Pos, EndPos lexer.Position
}

// Range returns the span as a diag.Range.
func (s Span) Range() diag.Range { return ToRange(s.Pos, s.EndPos) }

// ToRange converts participle positions to a diag.Range.
func ToRange(start, end lexer.Position) diag.Range {
	return diag.Range{Filename: start.Filename, Start: ToPos(start), End: ToPos(end)}
}

// ToPos converts a participle position to a diag.Pos.
func ToPos(p lexer.Position) diag.Pos {
	return diag.Pos{Filename: p.Filename, Offset: p.Offset, Line: p.Line, Column: p.Column}
}

// File is a parsed .recon file.
type File struct {
	Span
	Filename string
	// Decls are the top-level declarations in source order.
	Decls []Decl
	// Comments are all the comments of the file, in source order.
	Comments []*Comment
}

// Comment is a `# …` or `// …` comment; Text includes the marker and runs to
// the end of the line.
type Comment struct {
	Span
	Text string
}

// Decl is a top-level declaration: *Pipeline, *Include, *Const, *Defaults,
// *Source, *Stream, *Rule or *Sink.
type Decl interface {
	Node
	declNode()
}

// Pipeline is `pipeline "name"`.
type Pipeline struct {
	Span
	Name *StringLit
}

// Include is `include "file.recon"`.
type Include struct {
	Span
	Path *StringLit
}

// Const is `const NAME = EXPR`.
type Const struct {
	Span
	Name  *Ident
	Value Expr
}

// Defaults is `defaults { ATTRS }`.
type Defaults struct {
	Span
	Body *Block
}

// Source is `source NAME MODULE { ATTRS }`.
type Source struct {
	Span
	Name   *Ident
	Module *Ident
	Body   *Block
}

// Stream is `stream NAME { ATTRS }`.
type Stream struct {
	Span
	Name *Ident
	Body *Block
}

// Sink is `sink NAME KIND { ATTRS }`.
type Sink struct {
	Span
	Name *Ident
	Kind *Ident
	Body *Block
}

// Rule is `rule NAME { RULE-ITEMS }`.
type Rule struct {
	Span
	Name *Ident
	Body *RuleBody
}

func (*Pipeline) declNode() {}
func (*Include) declNode()  {}
func (*Const) declNode()    {}
func (*Defaults) declNode() {}
func (*Source) declNode()   {}
func (*Stream) declNode()   {}
func (*Sink) declNode()     {}
func (*Rule) declNode()     {}

// Block is `{ ATTRS }`; its span includes the braces.
type Block struct {
	Span
	Attrs []*Attr
}

// Attr is `name = value`. In a rule it is one of the rule items
// (`window = …`, `notify = […]`, `repeat = 1h` …).
type Attr struct {
	Span
	Name  *Ident
	Value Expr
}

// RuleBody is the `{ … }` of a rule; its span includes the braces.
type RuleBody struct {
	Span
	Items []RuleItem
}

// RuleItem is one line of a rule: *From, *GroupBy, *Condition, *Clear or
// *Attr.
type RuleItem interface {
	Node
	ruleItem()
}

// From is `from = SEL ("," SEL)* [where EXPR]`.
type From struct {
	Span
	Selectors []*Selector
	// Where is nil when there is no `where` clause.
	Where Expr
}

// Selector picks the sources of a rule: a name, `module(NAME)` or `*`.
// Exactly one of Name, Module and All is set.
type Selector struct {
	Span
	Name   *Ident
	Module *Ident
	All    bool
}

// GroupBy is `group by EXPR ("," EXPR)*`.
type GroupBy struct {
	Span
	Exprs []Expr
}

// Severities of a Condition.
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Condition is `(warning|critical) when EXPR`, optionally followed by
// `for DURATION` (For) or by `not followed by EXPR within DURATION`
// (FollowedBy and Within, a pattern). The dead-man form
// `when absent(DURATION)` is a call in When; see Absent.
type Condition struct {
	Span
	Severity   string // SeverityWarning or SeverityCritical
	When       Expr
	For        Expr // nil if absent
	FollowedBy Expr // nil unless a pattern
	Within     Expr // set with FollowedBy
}

// Absent returns the duration argument when the condition is the dead-man
// form `when absent(D)` (with no `for` and no pattern).
func (c *Condition) Absent() (Expr, bool) {
	call, ok := c.When.(*CallExpr)
	if !ok || call.Func.Name != "absent" || len(call.Args) != 1 || c.For != nil || c.FollowedBy != nil {
		return nil, false
	}
	return call.Args[0], true
}

// Clear is `clear when EXPR`.
type Clear struct {
	Span
	When Expr
}

func (*From) ruleItem()      {}
func (*GroupBy) ruleItem()   {}
func (*Condition) ruleItem() {}
func (*Clear) ruleItem()     {}
func (*Attr) ruleItem()      {}

// Expr is an expression: *Ident, *StringLit, *NumberLit, *DurationLit,
// *SizeLit, *BoolLit, *ListLit, *MapLit, *CallExpr, *IndexExpr,
// *UnaryExpr, *BinaryExpr or *ParenExpr.
type Expr interface {
	Node
	exprNode()
}

// Ident is a name: a reference in an expression, or the name of a
// declaration, attribute or function.
type Ident struct {
	Span
	Name string
}

// StringLit is a "…" string (escapes decoded, `${name}` interpolations
// split out) or a `…` raw string (Raw starts with a backquote; one literal
// part, no escapes).
type StringLit struct {
	Span
	// Raw is the literal as written, quotes included.
	Raw string
	// Parts is the decoded string: literal text and interpolations in
	// order. An empty string has no parts.
	Parts []*StringPart
}

// StringPart is a piece of a string: decoded literal Text, or, when Ref is
// set, the interpolation `${Ref}` (its span covers `${…}`).
type StringPart struct {
	Span
	Text string
	Ref  *Ident
}

// IsRaw reports whether the literal is a `…` raw string.
func (s *StringLit) IsRaw() bool { return len(s.Raw) > 0 && s.Raw[0] == '`' }

// Literal returns the decoded value when the string has no interpolation.
func (s *StringLit) Literal() (string, bool) {
	switch len(s.Parts) {
	case 0:
		return "", true
	case 1:
		if s.Parts[0].Ref == nil {
			return s.Parts[0].Text, true
		}
	}
	return "", false
}

// NumberLit is an integer or floating-point number; a minus sign written
// right before it is part of it (Raw "-5").
type NumberLit struct {
	Span
	Raw   string
	Value float64
	// IsInt reports an integer literal (no fraction, no exponent); Int is
	// its value.
	IsInt bool
	Int   int64
}

// DurationLit is a duration such as 250ms, 30s, 1h30m, 1d (24h).
type DurationLit struct {
	Span
	Raw   string
	Value time.Duration
}

// SizeLit is a size such as 512B, 64KiB (1024-based) or 10MB (1000-based).
type SizeLit struct {
	Span
	Raw   string
	Bytes int64
}

// BoolLit is true or false.
type BoolLit struct {
	Span
	Value bool
}

// ListLit is `[a, b, c]`.
type ListLit struct {
	Span
	Elems []Expr
}

// MapLit is `{ k = v, "k2" = v2 }`.
type MapLit struct {
	Span
	Entries []*MapEntry
}

// MapEntry is `key = value` in a map; the key is a name (Name) or a string
// (Quoted).
type MapEntry struct {
	Span
	Name   *Ident
	Quoted *StringLit
	Value  Expr
}

// KeyNode returns the node of the key.
func (e *MapEntry) KeyNode() Node {
	if e.Name != nil {
		return e.Name
	}
	return e.Quoted
}

// Key returns the key as text (a quoted key's decoded value; an
// interpolation is left as written).
func (e *MapEntry) Key() string {
	if e.Name != nil {
		return e.Name.Name
	}
	if s, ok := e.Quoted.Literal(); ok {
		return s
	}
	return e.Quoted.Raw
}

// CallExpr is `f(args…)`.
type CallExpr struct {
	Span
	Func *Ident
	Args []Expr
}

// IndexExpr is `x[index]`.
type IndexExpr struct {
	Span
	X     Expr
	Index Expr
}

// Operators, in their canonical spelling: the parser maps `&&`, `||` and
// `!` to "and", "or" and "not".
const (
	OpOr       = "or"
	OpAnd      = "and"
	OpNot      = "not"
	OpEq       = "=="
	OpNe       = "!="
	OpLt       = "<"
	OpLe       = "<="
	OpGt       = ">"
	OpGe       = ">="
	OpMatch    = "=~"
	OpNotMatch = "!~"
	OpAdd      = "+"
	OpSub      = "-"
	OpMul      = "*"
	OpDiv      = "/"
	OpMod      = "%"
	OpNeg      = "-"
)

// UnaryExpr is `-x` or `not x`.
type UnaryExpr struct {
	Span
	Op string
	X  Expr
}

// BinaryExpr is `x op y`; the operator is written at [OpPos, OpEnd).
type BinaryExpr struct {
	Span
	Op           string
	OpPos, OpEnd lexer.Position
	X, Y         Expr
}

// OpRange returns the range of the operator.
func (b *BinaryExpr) OpRange() diag.Range { return ToRange(b.OpPos, b.OpEnd) }

// ParenExpr is `(x)`.
type ParenExpr struct {
	Span
	X Expr
}

func (*Ident) exprNode()       {}
func (*StringLit) exprNode()   {}
func (*NumberLit) exprNode()   {}
func (*DurationLit) exprNode() {}
func (*SizeLit) exprNode()     {}
func (*BoolLit) exprNode()     {}
func (*ListLit) exprNode()     {}
func (*MapLit) exprNode()      {}
func (*CallExpr) exprNode()    {}
func (*IndexExpr) exprNode()   {}
func (*UnaryExpr) exprNode()   {}
func (*BinaryExpr) exprNode()  {}
func (*ParenExpr) exprNode()   {}
