package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/reconmon/recon/plan"
)

// The backtest drops archive rows before decoding them only when no rule
// can read them: a column is filtered only when every rule constrains it.
func TestRowFilters(t *testing.T) {
	col := func(n string) *plan.Expr { return &plan.Expr{Op: "col", Name: n} }
	str := func(s string) *plan.Expr { return &plan.Expr{Op: "str", Str: s} }
	op := func(o string, a ...*plan.Expr) *plan.Expr { return &plan.Expr{Op: o, Args: a} }
	metric := func(m string) *plan.Expr { return op("==", col("metric"), str(m)) }
	cases := []struct {
		name  string
		rules []plan.Rule
		want  string
	}{
		{"one rule", []plan.Rule{{From: []string{"web"}, Where: metric("duration")}},
			"metric=[duration] source=[web]"},
		{"literal on the left, inside and", []plan.Rule{{From: []string{"web"}, Where: op("and", op("==", str("a"), col("target")), op(">", col("value"), &plan.Expr{Op: "num", Num: 1}))}},
			"source=[web] target=[a]"},
		{"two rules, union", []plan.Rule{{From: []string{"web"}, Where: metric("duration")}, {From: []string{"db"}, Where: metric("rtt")}},
			"metric=[duration rtt] source=[db web]"},
		{"a rule without the conjunct frees the column", []plan.Rule{{From: []string{"web"}, Where: metric("duration")}, {From: []string{"web"}}},
			"source=[web]"},
		{"or is not a conjunct", []plan.Rule{{From: []string{"web"}, Where: op("or", metric("a"), metric("b"))}},
			"source=[web]"},
		{"not equal is not filtered", []plan.Rule{{From: []string{"web"}, Where: op("!=", col("metric"), str("a"))}},
			"source=[web]"},
		{"modules", []plan.Rule{{From: []string{"module:snmp"}, Where: metric("ifInOctets")}},
			"metric=[ifInOctets] module=[snmp]"},
		{"sources and modules: no routing filter", []plan.Rule{{From: []string{"web"}}, {From: []string{"module:snmp"}}},
			""},
		{"every sample", []plan.Rule{{From: []string{"*"}, Where: metric("status")}},
			"metric=[status]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var parts []string
			for _, f := range rowFilters(&plan.Plan{Rules: c.rules}) {
				var vals []string
				for v := range f.want {
					vals = append(vals, v)
				}
				sort.Strings(vals)
				parts = append(parts, fmt.Sprintf("%s=%v", f.col, vals))
			}
			sort.Strings(parts)
			if got := strings.Join(parts, " "); got != c.want {
				t.Errorf("filters %q, want %q", got, c.want)
			}
		})
	}
}
