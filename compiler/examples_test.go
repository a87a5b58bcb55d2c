package compiler

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
)

// noEnv is an empty environment: examples must compile without one.
func noEnv(string) (string, bool) { return "", false }

// TestExamples compiles every file under examples/ against the real
// modules, without errors or warnings, and checks that `reconc fmt` would
// leave it unchanged.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.recon"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dc-edge.recon", "kafka-scaleout.recon", "quickstart.recon", "web-service.recon"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Errorf("examples/%s is missing", w)
		}
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, ds := Compile(path, Options{LookupEnv: noEnv})
			if len(ds) > 0 {
				t.Fatalf("diagnostics:\n%s", render(ds))
			}
			if len(p.Sources) == 0 || len(p.Rules) == 0 {
				t.Errorf("example has %d sources and %d rules; it should show both", len(p.Sources), len(p.Rules))
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, pds := dsl.Parse(path, src)
			if pds.HasErrors() {
				t.Fatal(pds)
			}
			if out := dsl.Format(f); !bytes.Equal(out, src) {
				t.Errorf("not in canonical form: run reconc fmt -w %s", path)
			}
		})
	}
}

// TestQuickstart checks what the quickstart promises: recond's own
// endpoint checked over http and tcp, selfcheck and generator sources, a
// stdout sink the rules notify, and the implied archive.
func TestQuickstart(t *testing.T) {
	p, ds := Compile(filepath.Join("..", "examples", "quickstart.recon"), Options{LookupEnv: noEnv})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	modules := map[string]int{}
	for _, s := range p.Sources {
		modules[s.Module]++
		if s.Module == "http" || s.Module == "tcp" {
			if s.Target != "127.0.0.1" || !strings.Contains(string(s.Attrs), "43191") {
				t.Errorf("source %s does not check recond's listener 127.0.0.1:43191: target %q attrs %s", s.Name, s.Target, s.Attrs)
			}
		}
	}
	for _, m := range []string{"http", "tcp", "selfcheck", "generator"} {
		if modules[m] == 0 {
			t.Errorf("no %s source", m)
		}
	}
	var archive, console bool
	for _, s := range p.Sinks {
		archive = archive || (s.Name == "archive" && s.Kind == "parquet")
		console = console || s.Kind == "stdout"
	}
	if !archive || !console {
		t.Errorf("sinks %+v: want the implied parquet archive and a stdout sink", p.Sinks)
	}
	fromGenerator := false
	for _, r := range p.Rules {
		if len(r.Notify) == 0 {
			t.Errorf("rule %s notifies nobody", r.Name)
		}
		for _, f := range r.From {
			fromGenerator = fromGenerator || f == "demo"
		}
	}
	if !fromGenerator {
		t.Error("no rule watches the generator")
	}
}

// TestSpecExamples compiles the example of every registered module, as
// the generated docs show it.
func TestSpecExamples(t *testing.T) {
	reg := catalog.Default()
	for _, k := range []module.Kind{module.KindSource, module.KindSink} {
		for _, s := range reg.Specs(k) {
			if strings.TrimSpace(s.Example) == "" {
				continue
			}
			t.Run(string(k)+"_"+s.Name, func(t *testing.T) {
				_, ds := CompileSource(s.Name+".recon", []byte(s.Example), Options{Registry: reg, LookupEnv: noEnv})
				if ds.HasErrors() {
					t.Errorf("example of %s %s does not compile:\n%s", k, s.Name, render(ds))
				}
			})
		}
	}
}

// TestFormatTestdata checks that `reconc fmt` is idempotent on every test
// file of this package that parses, and keeps its comments.
func TestFormatTestdata(t *testing.T) {
	var files []string
	for _, pattern := range []string{"testdata/*/*.recon", "testdata/*/inc/*.recon"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	parsed := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, ds := dsl.Parse(path, src)
		if ds.HasErrors() {
			continue // syntax error cases
		}
		parsed++
		once := dsl.Format(f)
		f2, ds := dsl.Parse(path, once)
		if ds.HasErrors() {
			t.Errorf("%s: formatted output does not parse: %v", path, ds)
			continue
		}
		if twice := dsl.Format(f2); !bytes.Equal(once, twice) {
			t.Errorf("%s: formatting is not idempotent", path)
		}
		for _, c := range f.Comments {
			if !bytes.Contains(once, []byte(c.Text)) {
				t.Errorf("%s: comment %q lost", path, c.Text)
			}
		}
	}
	if parsed < 80 {
		t.Errorf("only %d test files parsed", parsed)
	}
}

// TestLanguageReference compiles every complete program (a ```recon block
// starting with `pipeline`) of docs/language.md against the real modules.
func TestLanguageReference(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "language.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```recon\n")
	n := 0
	for _, b := range blocks[1:] {
		code, _, ok := strings.Cut(b, "```")
		if !ok {
			t.Fatal("unterminated code block in docs/language.md")
		}
		if !strings.HasPrefix(code, "pipeline ") {
			continue
		}
		n++
		if _, ds := CompileSource("language.recon", []byte(code), Options{LookupEnv: noEnv}); len(ds) > 0 {
			t.Errorf("example %d of docs/language.md:\n%s\n%s", n, code, render(ds))
		}
	}
	if n == 0 {
		t.Error("docs/language.md has no complete example")
	}
}
