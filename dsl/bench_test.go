package dsl

import (
	"fmt"
	"strings"
	"testing"
)

// generated returns a .recon file with the given numbers of sources and
// rules, in the style of the examples.
func generated(sources, rules int) []byte {
	var b strings.Builder
	b.WriteString("pipeline \"bench\"\n\nconst base = \"127.0.0.1\"\n\ndefaults {\n  period  = 60s\n  timeout = 5s\n}\n\n")
	for i := range sources {
		fmt.Fprintf(&b, "# source %d\nsource web%d http {\n  target      = base\n  url         = \"http://${base}:43191/health/%d\"\n  period      = 30s\n  expect_code = 200\n  headers     = { accept = \"text/plain\", \"x-id\" = \"%d\" }\n}\n\n", i, i, i, i)
	}
	for i := range rules {
		fmt.Fprintf(&b, "rule slow%d {\n  from     = web%d where metric == \"duration\" and value > 0\n  group by target, labels[\"path\"]\n  window   = sliding(5m, 30s)\n  warning  when p95(value) > 0.5 for 2m\n  critical when p95(value) > 2 for 1m\n  critical when absent(3m)\n  clear    when p95(value) < 0.4\n  notify   = [pager, console]\n}\n\n", i, i%sources)
	}
	b.WriteString("sink pager webhook { url = \"http://127.0.0.1:9/hook\" }\nsink console stdout {}\n")
	return []byte(b.String())
}

// BenchmarkParse parses a file with 10,000 sources and 1,000 rules.
func BenchmarkParse(b *testing.B) {
	src := generated(10000, 1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ds := Parse("bench.recon", src); ds.HasErrors() {
			b.Fatal(ds.Err())
		}
	}
}

// BenchmarkFormat prints the same file.
func BenchmarkFormat(b *testing.B) {
	src := generated(10000, 1000)
	f, ds := Parse("bench.recon", src)
	if ds.HasErrors() {
		b.Fatal(ds.Err())
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		Format(f)
	}
}

func TestGeneratedParses(t *testing.T) {
	src := generated(20, 5)
	f := mustParse(t, "gen.recon", src)
	if len(f.Decls) != 1+1+1+20+5+2 {
		t.Errorf("got %d declarations", len(f.Decls))
	}
}
