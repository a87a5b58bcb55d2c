package compiler

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
)

// typ is the type of a rule expression.
type typ int

const (
	tNum typ = iota + 1
	tStr
	tBool
)

func (t typ) String() string {
	switch t {
	case tNum:
		return "number"
	case tStr:
		return "string"
	case tBool:
		return "bool"
	}
	return "invalid"
}

// columns are the sample columns of design §3.1 a rule may use; labels is
// reached through labels["k"]. In expressions ts is a number: seconds since
// the Unix epoch.
var columns = map[string]typ{
	"ts": tNum, "pipeline": tStr, "source": tStr, "module": tStr, "target": tStr,
	"metric": tStr, "text": tStr, "unit": tStr, "node": tStr, "value": tNum,
}

const labelsColumn = "labels"

// aggregate describes an aggregate function's signature.
type aggregate struct {
	// args is the number of arguments; count takes 0 or 1.
	minArgs, maxArgs int
	usage            string
}

var aggregates = map[string]aggregate{
	"avg": {1, 1, "avg(x)"}, "min": {1, 1, "min(x)"}, "max": {1, 1, "max(x)"}, "sum": {1, 1, "sum(x)"},
	"count": {0, 1, "count() or count(x)"}, "first": {1, 1, "first(x)"}, "last": {1, 1, "last(x)"},
	"stddev": {1, 1, "stddev(x)"}, "delta": {1, 1, "delta(x)"}, "rate": {1, 1, "rate(x)"},
	"p50": {1, 1, "p50(x)"}, "p90": {1, 1, "p90(x)"}, "p95": {1, 1, "p95(x)"}, "p99": {1, 1, "p99(x)"},
	"quantile": {2, 2, "quantile(q, x)"},
}

// Functions outside aggregates.
const (
	fnAbsent = "absent"
	fnEnv    = "env"
)

// exprScope says where an expression is checked.
type exprScope struct {
	// agg: a severity or clear condition, made of aggregates; otherwise a
	// per-sample expression (where, group by, pattern events).
	agg bool
	// what names the place in messages ("where", "group by" …).
	what string
}

// checker type-checks one rule expression and builds its plan form.
type checker struct {
	c     *compiler
	scope exprScope
	// inAgg is set while checking an aggregate's arguments.
	inAgg bool
	// sawAgg is set once an aggregate was checked.
	sawAgg bool
}

func (c *compiler) checkBool(e dsl.Expr, scope exprScope) (*plan.Expr, bool) {
	k := &checker{c: c, scope: scope}
	pe, t, ok := k.check(e)
	if !ok {
		return nil, false
	}
	if t != tBool {
		c.errorf(e.Range(), "%s must be boolean, got %s", scope.what, t)
		return nil, false
	}
	if scope.agg && !k.sawAgg {
		c.errorf(e.Range(), "%s must use an aggregate of the window, like avg(value) > 1", scope.what)
		return nil, false
	}
	return pe, true
}

// perSample reports whether columns may be used here.
func (k *checker) perSample() bool { return !k.scope.agg || k.inAgg }

func (k *checker) check(e dsl.Expr) (*plan.Expr, typ, bool) {
	c := k.c
	switch e := e.(type) {
	case *dsl.ParenExpr:
		return k.check(e.X)
	case *dsl.NumberLit:
		return &plan.Expr{Op: "num", Num: e.Value}, tNum, true
	case *dsl.DurationLit:
		return &plan.Expr{Op: "num", Num: e.Value.Seconds()}, tNum, true
	case *dsl.SizeLit:
		return &plan.Expr{Op: "num", Num: float64(e.Bytes)}, tNum, true
	case *dsl.BoolLit:
		return &plan.Expr{Op: "bool", Bool: e.Value}, tBool, true
	case *dsl.StringLit:
		s, ok := c.interpolate(e, nil)
		return &plan.Expr{Op: "str", Str: s}, tStr, ok
	case *dsl.ListLit, *dsl.MapLit:
		c.errorf(e.Range(), "a list or map is not allowed in %s", k.scope.what)
		return nil, 0, false
	case *dsl.Ident:
		return k.ident(e)
	case *dsl.IndexExpr:
		return k.index(e)
	case *dsl.UnaryExpr:
		x, t, ok := k.check(e.X)
		if !ok {
			return nil, 0, false
		}
		if e.Op == dsl.OpNot {
			if t != tBool {
				c.errorf(e.Range(), "operator not wants a boolean, got %s", t)
				return nil, 0, false
			}
			return &plan.Expr{Op: "not", Args: []*plan.Expr{x}}, tBool, true
		}
		if t != tNum {
			c.errorf(e.Range(), "operator - wants a number, got %s", t)
			return nil, 0, false
		}
		return &plan.Expr{Op: "neg", Args: []*plan.Expr{x}}, tNum, true
	case *dsl.BinaryExpr:
		return k.binary(e)
	case *dsl.CallExpr:
		return k.call(e)
	}
	c.errorf(e.Range(), "unexpected expression in %s", k.scope.what)
	return nil, 0, false
}

func (k *checker) ident(id *dsl.Ident) (*plan.Expr, typ, bool) {
	c := k.c
	if t, ok := columns[id.Name]; ok {
		if !k.perSample() {
			c.errorf(id.Range(), "column %q must be inside an aggregate here, like last(%s)", id.Name, id.Name)
			return nil, 0, false
		}
		return &plan.Expr{Op: "col", Name: id.Name}, t, true
	}
	if id.Name == labelsColumn {
		c.errorf(id.Range(), "labels must be indexed, like labels[\"ifIndex\"]")
		return nil, 0, false
	}
	if _, ok := c.consts[id.Name]; ok {
		v, ok := c.constRef(id, nil, false)
		if !ok {
			return nil, 0, false
		}
		return k.literal(v)
	}
	cands := append(names(c.consts), labelsColumn)
	for col := range columns {
		cands = append(cands, col)
	}
	d := c.errorf(id.Range(), "unknown column or constant %q%s", id.Name, didYouMean(id.Name, cands))
	if as := c.declaredAs(id.Name); as != "" {
		d.Detail = fmt.Sprintf("%s; to compare with its name, quote it: \"%s\"", as, id.Name)
	}
	return nil, 0, false
}

// literal turns a constant's value into an expression.
func (k *checker) literal(v value) (*plan.Expr, typ, bool) {
	switch v.kind {
	case kString:
		return &plan.Expr{Op: "str", Str: v.str}, tStr, true
	case kInt, kSize:
		return &plan.Expr{Op: "num", Num: float64(v.num)}, tNum, true
	case kFloat:
		return &plan.Expr{Op: "num", Num: v.flt}, tNum, true
	case kDuration:
		return &plan.Expr{Op: "num", Num: time.Duration(v.num).Seconds()}, tNum, true
	case kBool:
		return &plan.Expr{Op: "bool", Bool: v.b}, tBool, true
	}
	k.c.errorf(v.rng, "a %s is not allowed in %s", v.kind, k.scope.what)
	return nil, 0, false
}

func (k *checker) index(e *dsl.IndexExpr) (*plan.Expr, typ, bool) {
	c := k.c
	id, ok := e.X.(*dsl.Ident)
	if !ok || id.Name != labelsColumn {
		c.errorf(e.X.Range(), "only labels can be indexed, like labels[\"ifIndex\"]")
		return nil, 0, false
	}
	if !k.perSample() {
		c.errorf(e.Range(), "labels must be inside an aggregate here")
		return nil, 0, false
	}
	key, ok := c.eval(e.Index, nil)
	if !ok {
		return nil, 0, false
	}
	if key.kind != kString {
		c.errorf(key.rng, "labels wants a string key, got %s", key.describe())
		return nil, 0, false
	}
	return &plan.Expr{Op: "label", Str: key.str}, tStr, true
}

func (k *checker) binary(e *dsl.BinaryExpr) (*plan.Expr, typ, bool) {
	c := k.c
	x, tx, okx := k.check(e.X)
	y, ty, oky := k.check(e.Y)
	if !okx || !oky {
		return nil, 0, false
	}
	out := &plan.Expr{Op: e.Op, Args: []*plan.Expr{x, y}}
	switch e.Op {
	case dsl.OpAnd, dsl.OpOr:
		if tx != tBool || ty != tBool {
			c.errorf(e.OpRange(), "operator %s wants booleans, got %s and %s", e.Op, tx, ty)
			return nil, 0, false
		}
		return out, tBool, true
	case dsl.OpEq, dsl.OpNe, dsl.OpLt, dsl.OpLe, dsl.OpGt, dsl.OpGe:
		if tx != ty {
			c.errorf(e.OpRange(), "cannot compare %s with %s", tx, ty)
			return nil, 0, false
		}
		if tx == tBool {
			c.errorf(e.OpRange(), "operator %s cannot compare booleans (use and, or, not)", e.Op)
			return nil, 0, false
		}
		return out, tBool, true
	case dsl.OpMatch, dsl.OpNotMatch:
		if tx != tStr {
			c.errorf(e.X.Range(), "operator %s wants a string on the left, got %s", e.Op, tx)
			return nil, 0, false
		}
		if y.Op != "str" {
			c.errorf(e.Y.Range(), "operator %s wants a regular expression (a string constant) on the right", e.Op)
			return nil, 0, false
		}
		if _, err := regexp.Compile(y.Str); err != nil {
			c.errorf(e.Y.Range(), "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			return nil, 0, false
		}
		return out, tBool, true
	case dsl.OpMod:
		// The plan's expressions (plan.Expr) have no remainder.
		c.errorf(e.OpRange(), "operator %% is not supported in rules (use + - * /)")
		return nil, 0, false
	case dsl.OpAdd, dsl.OpSub, dsl.OpMul, dsl.OpDiv:
		if tx != tNum || ty != tNum {
			c.errorf(e.OpRange(), "operator %s wants numbers, got %s and %s", e.Op, tx, ty)
			return nil, 0, false
		}
		return out, tNum, true
	}
	c.errorf(e.OpRange(), "unknown operator %s", e.Op)
	return nil, 0, false
}

func (k *checker) call(e *dsl.CallExpr) (*plan.Expr, typ, bool) {
	c := k.c
	name := e.Func.Name
	if name == fnEnv {
		v, ok := c.env(e, nil)
		if !ok {
			return nil, 0, false
		}
		return &plan.Expr{Op: "str", Str: v.str}, tStr, true
	}
	if name == fnAbsent {
		c.errorf(e.Range(), "absent(d) must be a whole condition, like `critical when absent(5m)`")
		return nil, 0, false
	}
	sig, ok := aggregates[name]
	if !ok {
		cands := append(names(aggregates), fnEnv, fnAbsent)
		c.errorf(e.Func.Range(), "unknown function %q%s", name, didYouMean(name, cands))
		return nil, 0, false
	}
	switch {
	case !k.scope.agg:
		c.errorf(e.Func.Range(), "aggregate %q is not allowed in %s", name, k.scope.what)
		return nil, 0, false
	case k.inAgg:
		c.errorf(e.Func.Range(), "aggregate %q inside another aggregate", name)
		return nil, 0, false
	}
	if len(e.Args) < sig.minArgs || len(e.Args) > sig.maxArgs {
		c.errorf(e.Range(), "%s takes %s, got %d argument%s", name, plural(sig.minArgs, sig.maxArgs), len(e.Args), pluralS(len(e.Args)))
		return nil, 0, false
	}
	k.inAgg, k.sawAgg = true, true
	defer func() { k.inAgg = false }()
	out := &plan.Expr{Op: "call", Name: name}
	ok = true
	for i, a := range e.Args {
		pa, t, aok := k.check(a)
		if !aok {
			ok = false
			continue
		}
		switch {
		case name == "quantile" && i == 0:
			if pa.Op != "num" || t != tNum {
				c.errorf(a.Range(), "quantile wants a constant number between 0 and 1 as q")
				ok = false
				continue
			}
			if pa.Num < 0 || pa.Num > 1 {
				c.errorf(a.Range(), "quantile wants q between 0 and 1, got %g", pa.Num)
				ok = false
				continue
			}
		case t != tNum:
			c.errorf(a.Range(), "%s wants a number, got %s", name, t)
			ok = false
			continue
		}
		out.Args = append(out.Args, pa)
	}
	if !ok {
		return nil, 0, false
	}
	return out, tNum, true
}

func plural(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "1 argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	}
	return fmt.Sprintf("%d or %d arguments", lo, hi)
}

func pluralS(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Rule attributes.
const (
	ruleWindow      = "window"
	ruleNotify      = "notify"
	ruleRepeat      = "repeat"
	ruleLateness    = "lateness"
	ruleFlapping    = "flapping"
	ruleDescription = "description"
)

var ruleAttrs = []string{ruleWindow, ruleNotify, ruleRepeat, ruleLateness, ruleFlapping, ruleDescription}

// defaultWindow is a rule's window when it declares none.
var defaultWindow = plan.Window{Kind: "tumbling", Size: plan.Duration(time.Minute)}

func (c *compiler) rule(r *dsl.Rule) (plan.Rule, bool) {
	pr := plan.Rule{Name: r.Name.Name, Window: defaultWindow, Pos: c.pos(r.Range())}
	ok := true
	seen := map[string]diag.Range{}
	once := func(item string, rng diag.Range) bool {
		if first, dup := seen[item]; dup {
			c.dup("one", rng, first, "%s appears twice in rule %q", item, r.Name.Name)
			return false
		}
		seen[item] = rng
		return true
	}
	var hasFrom bool
	for _, item := range r.Body.Items {
		switch it := item.(type) {
		case *dsl.From:
			hasFrom = true
			if !once("from", it.Range()) {
				ok = false
				continue
			}
			ok = c.ruleFrom(it, &pr) && ok
		case *dsl.GroupBy:
			if !once("group by", it.Range()) {
				ok = false
				continue
			}
			for _, e := range it.Exprs {
				k := &checker{c: c, scope: exprScope{what: "group by"}}
				pe, _, eok := k.check(e)
				if !eok {
					ok = false
					continue
				}
				pr.GroupBy = append(pr.GroupBy, *pe)
			}
		case *dsl.Condition:
			cl, cok := c.clause(it)
			if cok {
				pr.Clauses = append(pr.Clauses, cl)
			}
			ok = ok && cok
		case *dsl.Clear:
			if !once("clear", it.Range()) {
				ok = false
				continue
			}
			pe, cok := c.checkBool(it.When, exprScope{agg: true, what: "a clear condition"})
			pr.Clear = pe
			ok = ok && cok
		case *dsl.Attr:
			if !once(it.Name.Name, it.Name.Range()) {
				ok = false
				continue
			}
			ok = c.ruleAttr(it, &pr) && ok
		}
	}
	if !hasFrom {
		c.errorf(r.Name.Range(), "rule %q needs a from, like `from = homepage where metric == \"duration\"`", r.Name.Name)
		ok = false
	}
	if len(pr.Clauses) == 0 && ok {
		c.errorf(r.Name.Range(), "rule %q has no warning or critical clause", r.Name.Name)
		ok = false
	}
	return pr, ok
}

func (c *compiler) ruleFrom(f *dsl.From, pr *plan.Rule) bool {
	ok := true
	seen := map[string]bool{}
	for _, s := range f.Selectors {
		var sel string
		switch {
		case s.All:
			sel = "*"
		case s.Module != nil:
			if _, known := c.opts.Registry.Lookup(module.KindSource, s.Module.Name); !known {
				c.errorf(s.Module.Range(), "unknown source module %q%s", s.Module.Name,
					didYouMean(s.Module.Name, c.opts.Registry.Names(module.KindSource)))
				ok = false
				continue
			}
			sel = "module:" + s.Module.Name
		case s.Name != nil:
			if c.sourceOrStream(s.Name.Name) == nil {
				cands := append(names(c.sourceByName), names(c.streamByName)...)
				d := c.errorf(s.Name.Range(), "unknown source or stream %q%s", s.Name.Name, didYouMean(s.Name.Name, cands))
				d.Detail = c.declaredAs(s.Name.Name)
				ok = false
				continue
			}
			sel = s.Name.Name
		default:
			continue
		}
		if seen[sel] {
			c.errorf(s.Range(), "%s is selected twice", sel)
			ok = false
			continue
		}
		seen[sel] = true
		pr.From = append(pr.From, sel)
	}
	if f.Where != nil {
		pe, wok := c.checkBool(f.Where, exprScope{what: "the where condition"})
		pr.Where = pe
		ok = ok && wok
	}
	return ok
}

func (c *compiler) clause(cond *dsl.Condition) (plan.Clause, bool) {
	cl := plan.Clause{Severity: cond.Severity}
	if d, isAbsent := cond.Absent(); isAbsent {
		dur, ok := c.positiveDuration(d, "absent")
		cl.Absent = plan.Duration(dur)
		return cl, ok
	}
	if cond.FollowedBy != nil {
		first, ok1 := c.checkBool(cond.When, exprScope{what: "a pattern event"})
		then, ok2 := c.checkBool(cond.FollowedBy, exprScope{what: "a pattern event"})
		ok3 := cond.Within != nil
		var within time.Duration
		if ok3 {
			within, ok3 = c.positiveDuration(cond.Within, "within")
		}
		if !ok1 || !ok2 || !ok3 {
			return cl, false
		}
		cl.Pattern = &plan.Pattern{First: first, Then: then, Within: plan.Duration(within)}
		return cl, true
	}
	when, ok := c.checkBool(cond.When, exprScope{agg: true, what: "a " + cond.Severity + " condition"})
	cl.When = when
	if cond.For != nil {
		d, dok := c.duration(cond.For, "for")
		if dok && d < 0 {
			c.errorf(cond.For.Range(), "for must not be negative, got %s", FormatDuration(d))
			dok = false
		}
		cl.For = plan.Duration(d)
		ok = ok && dok
	}
	return cl, ok
}

func (c *compiler) positiveDuration(e dsl.Expr, what string) (time.Duration, bool) {
	d, ok := c.duration(e, what)
	if ok && d <= 0 {
		c.errorf(e.Range(), "%s wants a positive duration, got %s", what, FormatDuration(d))
		return 0, false
	}
	return d, ok
}

func (c *compiler) ruleAttr(a *dsl.Attr, pr *plan.Rule) bool {
	switch a.Name.Name {
	case ruleWindow:
		w, ok := c.window(a.Value)
		pr.Window = w
		return ok
	case ruleNotify:
		return c.notify(a.Value, pr)
	case ruleRepeat:
		d, ok := c.positiveDuration(a.Value, "repeat")
		pr.Repeat = plan.Duration(d)
		return ok
	case ruleLateness:
		d, ok := c.duration(a.Value, "lateness")
		if ok && d < 0 {
			c.errorf(a.Value.Range(), "lateness must not be negative, got %s", FormatDuration(d))
			return false
		}
		pr.Lateness = plan.Duration(d)
		return ok
	case ruleFlapping:
		return c.flapping(a.Value, pr)
	case ruleDescription:
		v, ok := c.eval(a.Value, nil)
		if ok && v.kind != kString {
			c.errorf(v.rng, "description wants a string, got %s", v.describe())
			return false
		}
		pr.Description = v.str
		return ok
	}
	c.errorf(a.Name.Range(), "unknown rule attribute %q%s", a.Name.Name, didYouMean(a.Name.Name, ruleAttrs))
	return false
}

var windowKinds = []string{"tumbling", "sliding", "count"}

func (c *compiler) window(e dsl.Expr) (plan.Window, bool) {
	call, ok := e.(*dsl.CallExpr)
	if !ok {
		c.errorf(e.Range(), "window wants tumbling(size), sliding(size, every) or count(n)")
		return defaultWindow, false
	}
	name := call.Func.Name
	want := map[string]int{"tumbling": 1, "sliding": 2, "count": 1}[name]
	if want == 0 {
		c.errorf(call.Func.Range(), "unknown window %q%s (use tumbling(size), sliding(size, every) or count(n))", name, didYouMean(name, windowKinds))
		return defaultWindow, false
	}
	if len(call.Args) != want {
		c.errorf(call.Range(), "%s takes %s, got %d", name, plural(want, want), len(call.Args))
		return defaultWindow, false
	}
	switch name {
	case "tumbling":
		d, ok := c.positiveDuration(call.Args[0], "tumbling size")
		return plan.Window{Kind: name, Size: plan.Duration(d)}, ok
	case "sliding":
		size, ok1 := c.positiveDuration(call.Args[0], "sliding size")
		every, ok2 := c.positiveDuration(call.Args[1], "sliding every")
		if ok1 && ok2 && every > size {
			c.errorf(call.Args[1].Range(), "sliding: every (%s) must not exceed the size (%s)", FormatDuration(every), FormatDuration(size))
			return defaultWindow, false
		}
		return plan.Window{Kind: name, Size: plan.Duration(size), Every: plan.Duration(every)}, ok1 && ok2
	}
	v, ok := c.eval(call.Args[0], nil)
	if !ok {
		return defaultWindow, false
	}
	if v.kind != kInt || v.num <= 0 {
		c.errorf(v.rng, "count wants a positive number of samples, got %s", v.text())
		return defaultWindow, false
	}
	return plan.Window{Kind: name, Count: v.num}, true
}

func (c *compiler) notify(e dsl.Expr, pr *plan.Rule) bool {
	var ids []dsl.Expr
	if l, isList := e.(*dsl.ListLit); isList {
		ids = l.Elems
	} else {
		ids = []dsl.Expr{e}
	}
	ok := true
	seen := map[string]bool{}
	for _, x := range ids {
		id, isIdent := x.(*dsl.Ident)
		if !isIdent {
			c.errorf(x.Range(), "notify wants sink names, like `notify = [pager, console]`")
			ok = false
			continue
		}
		kind, known := c.sinkKinds[id.Name]
		switch {
		case !known && c.sinkByName[id.Name] != nil:
			// The sink's own error is reported already.
			ok = false
			continue
		case !known:
			d := c.errorf(id.Range(), "unknown sink %q%s", id.Name, didYouMean(id.Name, c.sinkNames()))
			d.Detail = c.declaredAs(id.Name)
			ok = false
			continue
		case !isAlertSink(kind):
			c.errorf(id.Range(), "%q is a %s sink; notify needs an alert sink (%s)", id.Name, kind, strings.Join(alertSinks, ", "))
			ok = false
			continue
		case seen[id.Name]:
			c.errorf(id.Range(), "sink %q is notified twice", id.Name)
			ok = false
			continue
		}
		seen[id.Name] = true
		pr.Notify = append(pr.Notify, id.Name)
	}
	return ok
}

func (c *compiler) flapping(e dsl.Expr, pr *plan.Rule) bool {
	v, ok := c.eval(e, nil)
	if !ok {
		return false
	}
	if v.kind != kMap {
		c.errorf(v.rng, "flapping wants { low = PERCENT, high = PERCENT }, got %s", v.describe())
		return false
	}
	got := map[string]float64{}
	for i, k := range v.keys {
		x := v.vals[i]
		if k.name != "low" && k.name != "high" {
			c.errorf(k.rng, "unknown flapping threshold %q (use low and high)", k.name)
			ok = false
			continue
		}
		switch x.kind {
		case kInt:
			got[k.name] = float64(x.num)
		case kFloat:
			got[k.name] = x.flt
		default:
			c.errorf(x.rng, "flapping %s wants a percentage, got %s", k.name, x.describe())
			ok = false
		}
	}
	if !ok {
		return false
	}
	low, hasLow := got["low"]
	high, hasHigh := got["high"]
	if !hasLow || !hasHigh {
		c.errorf(v.rng, "flapping needs both low and high thresholds")
		return false
	}
	if !(0 < low && low < high && high <= 100) {
		c.errorf(v.rng, "flapping thresholds must satisfy 0 < low < high <= 100, got low %g and high %g", low, high)
		return false
	}
	pr.Flapping = &plan.Flapping{Low: low, High: high}
	return true
}
