package dsl

import (
	"testing"
	"time"
)

// text returns the source text a node covers.
func text(src string, n Node) string {
	r := n.Range()
	return src[r.Start.Offset:r.End.Offset]
}

func TestParseTree(t *testing.T) {
	src := `pipeline "p"
const host = "127.0.0.1"
source web http {
  url = "http://${host}:43191/\u00e9"
  period = 1h30m
  max = 64KiB
  neg = -5
  big = 1e3
}
rule slow {
  from = web, module(tcp), * where metric == "duration" && value > 1
  group by target, labels["ifIndex"]
  warning when a + b * c >= 2 or not d for 2m
  critical when absent(3m)
  critical when x not followed by y within 90s
  clear when (a + b) * c < 1
  notify = [pager]
}
`
	f := mustParse(t, "t.recon", []byte(src))
	if len(f.Decls) != 4 {
		t.Fatalf("got %d declarations, want 4", len(f.Decls))
	}
	web := f.Decls[2].(*Source)
	if web.Name.Name != "web" || web.Module.Name != "http" || len(web.Body.Attrs) != 5 {
		t.Fatalf("source: %+v", web)
	}
	if got := text(src, web); got[:17] != "source web http {" || got[len(got)-1] != '}' {
		t.Errorf("source range covers %q", got)
	}

	url := web.Body.Attrs[0].Value.(*StringLit)
	if len(url.Parts) != 3 || url.Parts[0].Text != "http://" || url.Parts[1].Ref.Name != "host" || url.Parts[2].Text != ":43191/é" {
		t.Fatalf("string parts: %+v %+v %+v", url.Parts[0], url.Parts[1], url.Parts[2])
	}
	if got := text(src, url.Parts[1].Ref); got != "host" {
		t.Errorf("interpolated name range covers %q", got)
	}
	if got := text(src, url.Parts[1]); got != "${host}" {
		t.Errorf("interpolation range covers %q", got)
	}
	if r := url.Parts[1].Ref.Range(); r.Start.Line != 4 || r.Start.Column != 19 {
		t.Errorf("interpolated name at %d:%d, want 4:19", r.Start.Line, r.Start.Column)
	}
	if d := web.Body.Attrs[1].Value.(*DurationLit); d.Value != 90*time.Minute {
		t.Errorf("1h30m = %v", d.Value)
	}
	if s := web.Body.Attrs[2].Value.(*SizeLit); s.Bytes != 64<<10 {
		t.Errorf("64KiB = %d", s.Bytes)
	}
	if n := web.Body.Attrs[3].Value.(*NumberLit); !n.IsInt || n.Int != -5 || n.Raw != "-5" || text(src, n) != "-5" {
		t.Errorf("-5 = %+v", n)
	}
	if n := web.Body.Attrs[4].Value.(*NumberLit); n.IsInt || n.Value != 1000 {
		t.Errorf("1e3 = %+v", n)
	}

	rule := f.Decls[3].(*Rule)
	from := rule.Body.Items[0].(*From)
	if len(from.Selectors) != 3 || from.Selectors[0].Name.Name != "web" || from.Selectors[1].Module.Name != "tcp" || !from.Selectors[2].All {
		t.Errorf("selectors: %+v", from.Selectors)
	}
	where := from.Where.(*BinaryExpr)
	if where.Op != OpAnd || src[where.OpRange().Start.Offset:where.OpRange().End.Offset] != "&&" {
		t.Errorf("where: op %q at %v", where.Op, where.OpRange())
	}
	if got := text(src, where); got != `metric == "duration" && value > 1` {
		t.Errorf("where covers %q", got)
	}

	// a + b * c >= 2 or not d  ==  ((a + (b * c)) >= 2) or (not d)
	warn := rule.Body.Items[2].(*Condition)
	or := warn.When.(*BinaryExpr)
	if or.Op != OpOr {
		t.Fatalf("top operator %q, want or", or.Op)
	}
	ge := or.X.(*BinaryExpr)
	add := ge.X.(*BinaryExpr)
	if ge.Op != OpGe || add.Op != OpAdd || add.Y.(*BinaryExpr).Op != OpMul {
		t.Errorf("precedence: %s / %s", ge.Op, add.Op)
	}
	if not := or.Y.(*UnaryExpr); not.Op != OpNot || text(src, not) != "not d" {
		t.Errorf("unary: %+v", not)
	}
	if d := warn.For.(*DurationLit); d.Value != 2*time.Minute || warn.Severity != SeverityWarning {
		t.Errorf("for: %+v", warn.For)
	}
	if _, ok := warn.Absent(); ok {
		t.Error("a plain condition reports Absent")
	}
	dead := rule.Body.Items[3].(*Condition)
	if d, ok := dead.Absent(); !ok || d.(*DurationLit).Value != 3*time.Minute {
		t.Errorf("absent(3m) not recognised: %+v", dead)
	}
	pat := rule.Body.Items[4].(*Condition)
	if pat.FollowedBy.(*Ident).Name != "y" || pat.Within.(*DurationLit).Value != 90*time.Second {
		t.Errorf("pattern: %+v", pat)
	}
	clear := rule.Body.Items[5].(*Clear).When.(*BinaryExpr)
	if clear.Op != OpLt || clear.X.(*BinaryExpr).X.(*ParenExpr) == nil {
		t.Errorf("clear: %+v", clear)
	}
	gb := rule.Body.Items[1].(*GroupBy)
	if idx := gb.Exprs[1].(*IndexExpr); text(src, idx) != `labels["ifIndex"]` {
		t.Errorf("index covers %q", text(src, idx))
	}
}

// TestRangesStopBeforeComments: a node's range ends at its last token,
// not at the comment or blank lines after it.
func TestRangesStopBeforeComments(t *testing.T) {
	src := "rule r {\n  from = web # which\n\n  critical when x > 1 for 2m // slow\n} # end\nconst c = 1 # one\n"
	f := mustParse(t, "r.recon", []byte(src))
	rule := f.Decls[0].(*Rule)
	for n, want := range map[Node]string{
		rule:               "rule r {\n  from = web # which\n\n  critical when x > 1 for 2m // slow\n}",
		rule.Body.Items[0]: "from = web",
		rule.Body.Items[1]: "critical when x > 1 for 2m",
		f.Decls[1]:         "const c = 1",
		f.Comments[0]:      "# which",
	} {
		if got := text(src, n); got != want {
			t.Errorf("range covers %q, want %q", got, want)
		}
	}
}
