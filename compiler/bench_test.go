package compiler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/dsl"
)

// benchSource generates a pipeline of n sources (tcp and http, half of
// them reading constants and defaults) and r rules over them.
func benchSource(n, r int) []byte {
	var b strings.Builder
	b.WriteString("pipeline \"bench\"\n\nconst host = \"127.0.0.1\"\n\ndefaults {\n  period  = 30s\n  timeout = 5s\n}\n\n")
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, "source s%d tcp {\n  target = host\n  port   = %d\n  expect = \"^SSH-\"\n}\n\n", i, 1+i%65535)
		} else {
			fmt.Fprintf(&b, "source s%d http {\n  target      = host\n  url         = \"http://${host}:%d/health\"\n  expect_code = [\"200-299\"]\n  headers     = { Accept = \"text/plain\" }\n}\n\n", i, 1+i%65535)
		}
	}
	b.WriteString("sink pager webhook { url = \"http://127.0.0.1:9/hook\" }\n\n")
	for i := 0; i < r; i++ {
		fmt.Fprintf(&b, `rule r%d {
  from     = s%d, s%d where metric == "duration" and labels["code"] != "500"
  group by target, labels["code"]
  window   = sliding(5m, 30s)
  warning  when p95(value) > 0.5 for 2m
  critical when avg(value) * 2 > 3 or max(value) > 10
  critical when absent(5m)
  notify   = [pager]
}

`, i, (2*i)%n, (2*i+1)%n)
	}
	return []byte(b.String())
}

// BenchmarkCompile compiles 10,000 sources and 1,000 rules against the real
// module catalog: parse, resolve, validate and marshal the plan ("full"),
// next to parsing alone ("parse"), which shows the compiler's own share.
func BenchmarkCompile(b *testing.B) {
	src := benchSource(10000, 1000)
	b.Run("full", func(b *testing.B) {
		opts := Options{Registry: catalog.Default(), LookupEnv: noEnv}
		b.SetBytes(int64(len(src)))
		b.ReportAllocs()
		for b.Loop() {
			p, ds := CompileSource("bench.recon", src, opts)
			if ds.HasErrors() {
				b.Fatal(ds)
			}
			if _, err := p.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ds := dsl.Parse("bench.recon", src); ds.HasErrors() {
				b.Fatal(ds)
			}
		}
	})
}
