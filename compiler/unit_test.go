package compiler

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
)

// compileString compiles src as x.recon with the stand-in modules.
func compileString(t *testing.T, src string) (*plan.Plan, diag.Diagnostics) {
	t.Helper()
	opts := testOptions(t.TempDir())
	return CompileSource("x.recon", []byte(src), opts)
}

func mustCompile(t *testing.T, src string) *plan.Plan {
	t.Helper()
	p, ds := compileString(t, src)
	if len(ds) > 0 {
		t.Fatalf("diagnostics:\n%s", render(ds))
	}
	return p
}

func decode(t *testing.T, mod string, raw []byte) module.Attrs {
	t.Helper()
	spec, ok := testRegistry().Lookup(module.KindSource, mod)
	if !ok {
		spec, _ = testRegistry().Lookup(module.KindSink, mod)
	}
	a, err := module.DecodeAttrs(spec, raw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTextRendering checks what a user sees: file:line:col, the message,
// the numbered source line and a caret under the offending text.
func TestTextRendering(t *testing.T) {
	dir := t.TempDir()
	src := "pipeline \"t\"\nsource homepage tcp { target = \"127.0.0.1\"  port = 80 }\nstream live { clone = hompage }\n"
	if err := os.WriteFile(filepath.Join(dir, "web.recon"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs := Sources{}
	opts := testOptions(dir)
	opts.ReadFile = srcs.Reader(opts.ReadFile)
	_, ds := Compile("web.recon", opts)
	var b bytes.Buffer
	if err := diag.Text(&b, ds, srcs); err != nil {
		t.Fatal(err)
	}
	want := `web.recon:3:23: unknown source "hompage"; did you mean "homepage"?
    3 | stream live { clone = hompage }
      |                       ^^^^^^^
`
	if b.String() != want {
		t.Errorf("text rendering:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestAllErrorsReported checks that every error of a file is reported,
// sorted by position, at most one per line, and that warnings do not stop
// compilation.
func TestAllErrorsReported(t *testing.T) {
	_, ds := compileString(t, `pipeline "t"
rule r {
  from = nope
  warning when avg(text) > 1
}
source b tcp { target = 1  port = "x" }
source a tcp { target = "127.0.0.1"  port = 70000 }
`)
	var lines []string
	for _, d := range ds {
		lines = append(lines, d.Error())
	}
	want := []string{
		`x.recon:3:10: unknown source or stream "nope"`,
		`x.recon:4:20: avg wants a number, got string`,
		`x.recon:6:25: attribute "target" of tcp wants string, got int`,
		`x.recon:7:45: attribute "port" of tcp must be at most 65535, got 70000`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	p, ds := compileString(t, "defaults { nope = 1 }\nsource a tcp { target = \"127.0.0.1\"  port = 1 }\n")
	if p == nil || ds.HasErrors() || len(ds) != 1 || ds[0].Severity != diag.Warning {
		t.Fatalf("want a plan and one warning, got plan %v and %v", p != nil, ds)
	}
}

func TestDefaultsPrecedence(t *testing.T) {
	p := mustCompile(t, `
defaults {
  period    = 30s
  timeout   = 3s
  community = "from-defaults"
  version   = "1"
}
source a snmp { target = "127.0.0.1"  get = { up = "1.3.6.1.2.1.1.3.0" }  version = "3" }
source b tcp  { target = "127.0.0.1"  port = 22  period = 2m }
`)
	a, b := p.Sources[0], p.Sources[1]
	if a.Period.D() != 30*time.Second || a.Timeout.D() != 3*time.Second || b.Period.D() != 2*time.Minute || b.Timeout.D() != 3*time.Second {
		t.Errorf("periods/timeouts: a %v/%v b %v/%v", a.Period.D(), a.Timeout.D(), b.Period.D(), b.Timeout.D())
	}
	attrs := decode(t, "snmp", a.Attrs)
	if attrs.String("community") != "from-defaults" || attrs.String("version") != "3" || attrs.Int("port") != 161 {
		t.Errorf("snmp attrs: %v (want community from defaults, own version, module default port)", attrs)
	}
	if strings.Contains(string(b.Attrs), "community") {
		t.Errorf("tcp got a default it does not declare: %s", b.Attrs)
	}
}

func TestTypedAttributes(t *testing.T) {
	p := mustCompile(t, `
const codes = "204"
source a http { target = "127.0.0.1"  url = "http://127.0.0.1/"  expect_code = codes  max_body = 64KiB }
source b ping { target = "127.0.0.1"  loss_warning = 5  interval = 250ms }
source c http { target = "127.0.0.1"  url = "http://127.0.0.1/"  max_body = 1000 }
`)
	a := decode(t, "http", p.Sources[0].Attrs)
	if got := a.Strings("expect_code"); len(got) != 1 || got[0] != "204" {
		t.Errorf("scalar for a list: %v, want [204]", got)
	}
	if a.Size("max_body") != 64<<10 {
		t.Errorf("max_body %d", a.Size("max_body"))
	}
	b := decode(t, "ping", p.Sources[1].Attrs)
	if b.Float("loss_warning") != 5 || b.Duration("interval") != 250*time.Millisecond || b.Int("count") != 5 {
		t.Errorf("ping attrs %v", b)
	}
	if c := decode(t, "http", p.Sources[2].Attrs); c.Size("max_body") != 1000 {
		t.Errorf("plain integer size: %d", c.Size("max_body"))
	}
}

func TestEnv(t *testing.T) {
	p := mustCompile(t, `
pipeline "${host}"
const host = env("RECON_TEST_HOST")
const dflt = env("RECON_TEST_UNSET", "d")
source a tcp { target = host  port = 22 }
sink s webhook { url = "http://${host}/${dflt}" }
`)
	if p.Pipeline != "127.0.0.1" || p.Sources[0].Target != "127.0.0.1" || !strings.Contains(string(p.Sinks[0].Attrs), `"http://127.0.0.1/d"`) {
		t.Errorf("env not applied: pipeline %q target %q sink %s", p.Pipeline, p.Sources[0].Target, p.Sinks[0].Attrs)
	}
}

func TestPlanPositionsAreRelative(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "site", "inc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("site/main.recon", "include \"inc/a.recon\"\nsource m tcp { target = \"127.0.0.1\"  port = 1 }\n")
	write("site/inc/a.recon", "\n\nsource a tcp { target = \"127.0.0.1\"  port = 2 }\n")
	opts := testOptions("")
	opts.ReadFile = os.ReadFile
	p, ds := Compile(filepath.Join(dir, "site", "main.recon"), opts)
	if len(ds) > 0 {
		t.Fatal(render(ds))
	}
	if p.Sources[0].Pos != "inc/a.recon:3:1" || p.Sources[1].Pos != "main.recon:2:1" {
		t.Errorf("positions %q, %q", p.Sources[0].Pos, p.Sources[1].Pos)
	}
	if strings.Join(p.Files, ",") != "main.recon,inc/a.recon" || p.Pipeline != "main" {
		t.Errorf("files %v pipeline %q", p.Files, p.Pipeline)
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(dir)) {
		t.Error("the plan contains an absolute path")
	}
}

func TestUnreadableRoot(t *testing.T) {
	p, ds := Compile(filepath.Join(t.TempDir(), "missing.recon"), Options{})
	if p != nil || !ds.HasErrors() || !strings.Contains(ds[0].Summary, "no such file") {
		t.Fatalf("plan %v, diagnostics %v", p != nil, ds)
	}
}

func TestSourcesReader(t *testing.T) {
	srcs := Sources{}
	read := srcs.Reader(func(name string) ([]byte, error) {
		if name == "bad" {
			return nil, errors.New("boom")
		}
		return []byte(name), nil
	})
	if _, err := read("bad"); err == nil {
		t.Fatal("error lost")
	}
	if _, err := read("good"); err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || string(srcs["good"]) != "good" {
		t.Errorf("recorded %v", srcs)
	}
}
