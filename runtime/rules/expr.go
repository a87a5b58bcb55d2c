package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/sample"
)

// batch is the column view of the sample batch being ingested. Row-level
// expressions are closures over it, compiled once per rule.
type batch struct {
	ts                                             []arrow.Timestamp
	pipeline, source, module, target, metric, node *array.String
	text, unit                                     *array.String
	value                                          *array.Float64
	labels                                         *array.Map
	lkeys, litems                                  *array.String
	loffs                                          []int32
}

func (b *batch) label(i int, key string) (string, bool) {
	for j := b.loffs[i]; j < b.loffs[i+1]; j++ {
		if b.lkeys.Value(int(j)) == key {
			return b.litems.Value(int(j)), true
		}
	}
	return "", false
}

// Row-level compiled expressions. A value that is null (or a label that is
// missing) makes comparisons false.
type (
	numFn  func(b *batch, i int) (float64, bool)
	strFn  func(b *batch, i int) (string, bool)
	boolFn func(b *batch, i int) bool
)

// kind is the static type of an expression.
type kind int

const (
	kindNum kind = iota + 1
	kindStr
	kindBool
)

func (k kind) String() string {
	switch k {
	case kindNum:
		return "number"
	case kindStr:
		return "string"
	}
	return "bool"
}

var stringCols = map[string]func(b *batch) *array.String{
	sample.ColPipeline: func(b *batch) *array.String { return b.pipeline },
	sample.ColSource:   func(b *batch) *array.String { return b.source },
	sample.ColModule:   func(b *batch) *array.String { return b.module },
	sample.ColTarget:   func(b *batch) *array.String { return b.target },
	sample.ColMetric:   func(b *batch) *array.String { return b.metric },
	sample.ColText:     func(b *batch) *array.String { return b.text },
	sample.ColUnit:     func(b *batch) *array.String { return b.unit },
	sample.ColNode:     func(b *batch) *array.String { return b.node },
}

func exprKind(e *plan.Expr) (kind, error) {
	if e == nil {
		return 0, fmt.Errorf("missing expression")
	}
	switch e.Op {
	case "num":
		return kindNum, nil
	case "str", "label":
		return kindStr, nil
	case "bool", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not", "=~", "!~":
		return kindBool, nil
	case "col":
		switch e.Name {
		case sample.ColValue, sample.ColTs:
			return kindNum, nil
		}
		if _, ok := stringCols[e.Name]; ok {
			return kindStr, nil
		}
		return 0, fmt.Errorf("unknown column %q", e.Name)
	case "+", "-", "*", "/", "neg", "call":
		return kindNum, nil
	}
	return 0, fmt.Errorf("unknown operator %q", e.Op)
}

func compileNum(e *plan.Expr) (numFn, error) {
	switch e.Op {
	case "num":
		v := e.Num
		return func(*batch, int) (float64, bool) { return v, true }, nil
	case "col":
		switch e.Name {
		case sample.ColValue:
			return func(b *batch, i int) (float64, bool) {
				if b.value.IsNull(i) {
					return 0, false
				}
				return b.value.Value(i), true
			}, nil
		case sample.ColTs:
			return func(b *batch, i int) (float64, bool) { return float64(b.ts[i]) / 1e9, true }, nil
		}
		return nil, fmt.Errorf("column %q is a string, not a number", e.Name)
	case "neg":
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("neg takes one operand")
		}
		a, err := compileNum(e.Args[0])
		if err != nil {
			return nil, err
		}
		return func(b *batch, i int) (float64, bool) { v, ok := a(b, i); return -v, ok }, nil
	case "+", "-", "*", "/":
		l, r, err := operands(e, compileNum)
		if err != nil {
			return nil, err
		}
		op := arith(e.Op)
		return func(b *batch, i int) (float64, bool) {
			x, ok1 := l(b, i)
			y, ok2 := r(b, i)
			return op(x, y), ok1 && ok2
		}, nil
	case "call":
		return nil, fmt.Errorf("%s() is an aggregate: it is not allowed in a row expression (where, group by, pattern events, aggregate arguments)", e.Name)
	}
	return nil, fmt.Errorf("%s is not a number", describe(e))
}

func arith(op string) func(x, y float64) float64 {
	switch op {
	case "+":
		return func(x, y float64) float64 { return x + y }
	case "-":
		return func(x, y float64) float64 { return x - y }
	case "*":
		return func(x, y float64) float64 { return x * y }
	}
	return func(x, y float64) float64 { return x / y }
}

func compileStr(e *plan.Expr) (strFn, error) {
	switch e.Op {
	case "str":
		s := e.Str
		return func(*batch, int) (string, bool) { return s, true }, nil
	case "label":
		key := e.Str
		return func(b *batch, i int) (string, bool) { return b.label(i, key) }, nil
	case "col":
		get, ok := stringCols[e.Name]
		if !ok {
			return nil, fmt.Errorf("column %q is not a string", e.Name)
		}
		return func(b *batch, i int) (string, bool) {
			c := get(b)
			if c.IsNull(i) {
				return "", false
			}
			return c.Value(i), true
		}, nil
	}
	return nil, fmt.Errorf("%s is not a string", describe(e))
}

func compileBool(e *plan.Expr) (boolFn, error) {
	switch e.Op {
	case "bool":
		v := e.Bool
		return func(*batch, int) bool { return v }, nil
	case "and", "or":
		l, r, err := operands(e, compileBool)
		if err != nil {
			return nil, err
		}
		if e.Op == "and" {
			return func(b *batch, i int) bool { return l(b, i) && r(b, i) }, nil
		}
		return func(b *batch, i int) bool { return l(b, i) || r(b, i) }, nil
	case "not":
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("not takes one operand")
		}
		a, err := compileBool(e.Args[0])
		if err != nil {
			return nil, err
		}
		return func(b *batch, i int) bool { return !a(b, i) }, nil
	case "=~", "!~":
		if len(e.Args) != 2 || e.Args[1].Op != "str" {
			return nil, fmt.Errorf("%s takes a string and a regular expression literal", e.Op)
		}
		s, err := compileStr(e.Args[0])
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile(e.Args[1].Str)
		if err != nil {
			return nil, fmt.Errorf("regular expression %q: %w", e.Args[1].Str, err)
		}
		want := e.Op == "=~"
		return func(b *batch, i int) bool {
			v, ok := s(b, i)
			return ok && re.MatchString(v) == want
		}, nil
	case "==", "!=", "<", "<=", ">", ">=":
		if len(e.Args) != 2 {
			return nil, fmt.Errorf("%s takes two operands", e.Op)
		}
		lk, err := exprKind(e.Args[0])
		if err != nil {
			return nil, err
		}
		rk, err := exprKind(e.Args[1])
		if err != nil {
			return nil, err
		}
		if lk != rk || lk == kindBool {
			return nil, fmt.Errorf("%s compares a %s with a %s", describe(e), lk, rk)
		}
		if lk == kindStr {
			if f := colEqStr(e); f != nil {
				return f, nil
			}
			return compileCompare(e, compileStr, cmpStr(e.Op))
		}
		return compileCompare(e, compileNum, cmpNum(e.Op))
	}
	return nil, fmt.Errorf("%s is not a condition", describe(e))
}

// operands compiles the two operands of a binary operator.
func operands[F any](e *plan.Expr, compile func(*plan.Expr) (F, error)) (l, r F, err error) {
	if len(e.Args) != 2 {
		return l, r, fmt.Errorf("%s takes two operands", e.Op)
	}
	if l, err = compile(e.Args[0]); err != nil {
		return l, r, err
	}
	r, err = compile(e.Args[1])
	return l, r, err
}

// compileCompare compiles a comparison of two operands of one kind: the
// condition holds when both operands have a value and cmp says so.
func compileCompare[T any, F ~func(*batch, int) (T, bool)](e *plan.Expr, operand func(*plan.Expr) (F, error), cmp func(x, y T) bool) (boolFn, error) {
	l, r, err := operands(e, operand)
	if err != nil {
		return nil, err
	}
	return func(b *batch, i int) bool {
		x, ok1 := l(b, i)
		y, ok2 := r(b, i)
		return ok1 && ok2 && cmp(x, y)
	}, nil
}

// colEqStr is the fast path of the most common filter, a string column
// compared with a literal (metric == "duration"): one closure, no
// indirection per operand.
func colEqStr(e *plan.Expr) boolFn {
	if (e.Op != "==" && e.Op != "!=") || e.Args[0].Op != "col" || e.Args[1].Op != "str" {
		return nil
	}
	get, ok := stringCols[e.Args[0].Name]
	if !ok {
		return nil
	}
	want, eq := e.Args[1].Str, e.Op == "=="
	return func(b *batch, i int) bool {
		c := get(b)
		return c.IsValid(i) && (c.Value(i) == want) == eq
	}
}

func cmpNum(op string) func(x, y float64) bool {
	switch op {
	case "==":
		return func(x, y float64) bool { return x == y }
	case "!=":
		return func(x, y float64) bool { return x != y }
	case "<":
		return func(x, y float64) bool { return x < y }
	case "<=":
		return func(x, y float64) bool { return x <= y }
	case ">":
		return func(x, y float64) bool { return x > y }
	}
	return func(x, y float64) bool { return x >= y }
}

func cmpStr(op string) func(x, y string) bool {
	switch op {
	case "==":
		return func(x, y string) bool { return x == y }
	case "!=":
		return func(x, y string) bool { return x != y }
	case "<":
		return func(x, y string) bool { return x < y }
	case "<=":
		return func(x, y string) bool { return x <= y }
	case ">":
		return func(x, y string) bool { return x > y }
	}
	return func(x, y string) bool { return x >= y }
}

// describe names an expression in an error message.
func describe(e *plan.Expr) string { return "`" + Format(e) + "`" }

// Format renders an expression as .recon text (for messages and docs).
func Format(e *plan.Expr) string {
	var b strings.Builder
	format(&b, e, 0)
	return b.String()
}

var precedence = map[string]int{
	"or": 1, "and": 2, "not": 3,
	"==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "=~": 4, "!~": 4,
	"+": 5, "-": 5, "*": 6, "/": 6, "neg": 7,
}

func format(b *strings.Builder, e *plan.Expr, outer int) {
	if e == nil {
		b.WriteString("<nil>")
		return
	}
	switch e.Op {
	case "num":
		b.WriteString(strconv.FormatFloat(e.Num, 'g', -1, 64))
	case "str":
		b.WriteString(strconv.Quote(e.Str))
	case "bool":
		b.WriteString(strconv.FormatBool(e.Bool))
	case "col":
		b.WriteString(e.Name)
	case "label":
		b.WriteString("labels[" + strconv.Quote(e.Str) + "]")
	case "call":
		b.WriteString(e.Name + "(")
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, a, 0)
		}
		b.WriteString(")")
	case "not", "neg":
		p := precedence[e.Op]
		if p < outer {
			b.WriteString("(")
		}
		if e.Op == "not" {
			b.WriteString("not ")
		} else {
			b.WriteString("-")
		}
		if len(e.Args) > 0 {
			format(b, e.Args[0], p)
		}
		if p < outer {
			b.WriteString(")")
		}
	default:
		p, ok := precedence[e.Op]
		if !ok || len(e.Args) != 2 {
			fmt.Fprintf(b, "%s(…)", e.Op)
			return
		}
		if p < outer {
			b.WriteString("(")
		}
		format(b, e.Args[0], p)
		b.WriteString(" " + e.Op + " ")
		format(b, e.Args[1], p+1)
		if p < outer {
			b.WriteString(")")
		}
	}
}

// exprKey is a canonical key of an expression, to share identical inputs.
func exprKey(e *plan.Expr) string {
	b, _ := json.Marshal(e) // a tree of plain values always encodes
	return string(b)
}

var nan = math.NaN()
