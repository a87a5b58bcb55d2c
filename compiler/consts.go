package compiler

import (
	"fmt"
	"strings"
	"time"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
)

// constDecl is a constant and, once resolved, its value.
type constDecl struct {
	decl  *dsl.Const
	state int // unresolved, resolving, resolved
	val   value
	ok    bool
}

const (
	unresolved = iota
	resolving
	resolved
)

// resolveConsts evaluates every constant, so that errors in constants
// nobody uses are reported too. Constants may refer to each other in any
// order; a cycle is an error.
func (c *compiler) resolveConsts() {
	for _, name := range names(c.consts) {
		c.constValue(name, nil)
	}
}

// constValue resolves the constant name; chain is the list of constants
// being resolved that led here.
func (c *compiler) constValue(name string, chain []string) (value, bool) {
	cd := c.consts[name]
	switch cd.state {
	case resolved:
		return cd.val, cd.ok
	case resolving:
		return value{}, false
	}
	cd.state = resolving
	cd.val, cd.ok = c.eval(cd.decl.Value, append(chain, name))
	cd.state = resolved
	return cd.val, cd.ok
}

// constRef resolves a reference to a constant; inString is set for a
// ${name} inside a string.
func (c *compiler) constRef(id *dsl.Ident, chain []string, inString bool) (value, bool) {
	cd, ok := c.consts[id.Name]
	if !ok {
		suggestion := didYouMean(id.Name, names(c.consts))
		d := c.errorf(id.Range(), "unknown constant %q%s", id.Name, suggestion)
		d.Detail = c.declaredAs(id.Name)
		switch {
		case d.Detail != "" || suggestion != "":
		case inString:
			d.Detail = fmt.Sprintf("write \\${%s} for the text ${%s}; a constant is declared with `const %s = …`", id.Name, id.Name, id.Name)
		default:
			d.Detail = fmt.Sprintf("write \"%s\" for the text %s; a constant is declared with `const %s = …`", id.Name, id.Name, id.Name)
		}
		return value{}, false
	}
	if cd.state == resolving {
		for i, n := range chain {
			if n == id.Name {
				c.errorf(id.Range(), "constant cycle: %s", strings.Join(append(chain[i:len(chain):len(chain)], id.Name), " → "))
				break
			}
		}
		return value{}, false
	}
	v, ok := c.constValue(id.Name, chain)
	v.rng = id.Range()
	return v, ok
}

// eval computes a compile-time value: a literal, a list or map of them, a
// constant, a string interpolating constants, or env("X"[, "default"]).
// chain is the list of constants being resolved (nil outside constants).
func (c *compiler) eval(e dsl.Expr, chain []string) (value, bool) {
	v := value{rng: e.Range()}
	switch e := e.(type) {
	case *dsl.StringLit:
		s, ok := c.interpolate(e, chain)
		v.kind, v.str = kString, s
		return v, ok
	case *dsl.NumberLit:
		if e.IsInt {
			v.kind, v.num = kInt, e.Int
		} else {
			v.kind, v.flt = kFloat, e.Value
		}
		return v, true
	case *dsl.DurationLit:
		v.kind, v.num = kDuration, int64(e.Value)
		return v, true
	case *dsl.SizeLit:
		v.kind, v.num = kSize, e.Bytes
		return v, true
	case *dsl.BoolLit:
		v.kind, v.b = kBool, e.Value
		return v, true
	case *dsl.ListLit:
		v.kind = kList
		ok := true
		for _, el := range e.Elems {
			ev, eok := c.eval(el, chain)
			ok = ok && eok
			v.list = append(v.list, ev)
		}
		return v, ok
	case *dsl.MapLit:
		v.kind = kMap
		ok := true
		seen := map[string]diag.Range{}
		for _, en := range e.Entries {
			key := en.Key()
			kr := en.KeyNode().Range()
			if en.Quoted != nil {
				if _, lit := en.Quoted.Literal(); !lit {
					c.errorf(kr, "a map key must be a plain string, without ${…}")
					ok = false
					continue
				}
			}
			if first, dup := seen[key]; dup {
				d := c.errorf(kr, "key %q appears twice in the map", key)
				d.Detail = "the first one is at " + first.String()
				ok = false
				continue
			}
			seen[key] = kr
			ev, eok := c.eval(en.Value, chain)
			ok = ok && eok
			v.keys = append(v.keys, mapKey{name: key, rng: kr})
			v.vals = append(v.vals, ev)
		}
		return v, ok
	case *dsl.Ident:
		return c.constRef(e, chain, false)
	case *dsl.ParenExpr:
		inner, ok := c.eval(e.X, chain)
		inner.rng = v.rng
		return inner, ok
	case *dsl.UnaryExpr:
		x, ok := c.eval(e.X, chain)
		if !ok {
			return v, false
		}
		if e.Op == dsl.OpNeg {
			switch x.kind {
			case kInt, kDuration:
				x.num = -x.num
				x.rng = v.rng
				return x, true
			case kFloat:
				x.flt = -x.flt
				x.rng = v.rng
				return x, true
			}
		}
		c.errorf(v.rng, "operator %s cannot be applied to %s here: a value is a literal, a constant or env(…)", e.Op, x.describe())
		return v, false
	case *dsl.CallExpr:
		return c.env(e, chain)
	case *dsl.BinaryExpr:
		c.errorf(e.OpRange(), "operator %s is not allowed in a value: write a literal, a constant, \"${interpolation}\" or env(…)", e.Op)
		return v, false
	case *dsl.IndexExpr:
		c.errorf(v.rng, "indexing is not allowed in a value: write a literal, a constant or env(…)")
		return v, false
	}
	c.errorf(v.rng, "unexpected expression in a value")
	return v, false
}

// interpolate decodes a string literal, replacing ${name} by the text of
// the constant name.
func (c *compiler) interpolate(s *dsl.StringLit, chain []string) (string, bool) {
	if lit, ok := s.Literal(); ok {
		return lit, true
	}
	var b strings.Builder
	ok := true
	for _, p := range s.Parts {
		if p.Ref == nil {
			b.WriteString(p.Text)
			continue
		}
		v, vok := c.constRef(p.Ref, chain, true)
		if !vok {
			ok = false
			continue
		}
		switch v.kind {
		case kString:
			b.WriteString(v.str)
		case kList, kMap:
			c.errorf(p.Range(), "cannot interpolate %s constant %q into a string", v.kind, p.Ref.Name)
			ok = false
		default:
			b.WriteString(v.text())
		}
	}
	return b.String(), ok
}

// env evaluates env("X") and env("X", "default") at compile time.
func (c *compiler) env(call *dsl.CallExpr, chain []string) (value, bool) {
	v := value{kind: kString, rng: call.Range()}
	if call.Func.Name != "env" {
		c.errorf(call.Func.Range(), "unknown function %q in a value (only env(\"NAME\") and env(\"NAME\", \"default\") are evaluated at compile time)", call.Func.Name)
		return v, false
	}
	if len(call.Args) < 1 || len(call.Args) > 2 {
		c.errorf(call.Range(), "env wants 1 or 2 arguments (name, default), got %d", len(call.Args))
		return v, false
	}
	args := make([]string, len(call.Args))
	for i, a := range call.Args {
		av, ok := c.eval(a, chain)
		if !ok {
			return v, false
		}
		if av.kind != kString {
			c.errorf(av.rng, "env wants string arguments, got %s", av.describe())
			return v, false
		}
		args[i] = av.str
	}
	if args[0] == "" {
		c.errorf(call.Args[0].Range(), "env wants a variable name, got \"\"")
		return v, false
	}
	if s, ok := c.opts.LookupEnv(args[0]); ok {
		v.str = s
		return v, true
	}
	if len(args) == 2 {
		v.str = args[1]
		return v, true
	}
	c.errorf(call.Range(), "environment variable %q is not set and env() has no default", args[0])
	return v, false
}

// duration evaluates e, which must be a duration, for streams and rules.
func (c *compiler) duration(e dsl.Expr, what string) (time.Duration, bool) {
	v, ok := c.eval(e, nil)
	if !ok {
		return 0, false
	}
	if v.kind != kDuration {
		c.errorf(v.rng, "%s wants a duration (like 30s or 5m), got %s", what, v.describe())
		return 0, false
	}
	return time.Duration(v.num), true
}
