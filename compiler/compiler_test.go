package compiler

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testEnv is the environment env() sees in the tests.
var testEnv = map[string]string{"RECON_TEST_COMMUNITY": "s3cret", "RECON_TEST_HOST": "127.0.0.1"}

// testOptions reads files relative to dir, so that diagnostics and plans
// name them as the tests wrote them, with the stand-in modules.
func testOptions(dir string) Options {
	return Options{
		Registry:  testRegistry(),
		LookupEnv: func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok },
		ReadFile:  func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) },
	}
}

// render writes diagnostics as the golden files hold them: the
// file:line:col: message line, then the detail indented.
func render(ds diag.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Error())
		b.WriteByte('\n')
		for _, line := range strings.Split(d.Detail, "\n") {
			if line != "" {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return b.String()
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./compiler -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestErrors compiles every invalid program under testdata/errors and
// compares its diagnostics with the .err file next to it.
func TestErrors(t *testing.T) {
	dir := filepath.Join("testdata", "errors")
	files, err := filepath.Glob(filepath.Join(dir, "*.recon"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("only %d error cases under %s", len(files), dir)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".recon"), func(t *testing.T) {
			p, ds := Compile(name, testOptions(dir))
			if !ds.HasErrors() {
				t.Errorf("no error reported (plan %v)", p != nil)
			}
			if p != nil {
				t.Error("a plan was returned despite errors")
			}
			golden(t, strings.TrimSuffix(path, ".recon")+".err", []byte(render(ds)))
		})
	}
}

// TestPlans compiles the programs under testdata/plans and compares the
// plans with the .plan.json next to each; compiling twice must give the
// same bytes.
func TestPlans(t *testing.T) {
	dir := filepath.Join("testdata", "plans")
	files, err := filepath.Glob(filepath.Join(dir, "*.recon"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no plans under testdata/plans")
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".recon"), func(t *testing.T) {
			first := compileOK(t, name, testOptions(dir))
			second := compileOK(t, name, testOptions(dir))
			if !bytes.Equal(first, second) {
				t.Fatal("compiling twice gave different plans")
			}
			golden(t, strings.TrimSuffix(path, ".recon")+".plan.json", first)
		})
	}
}

// compileOK compiles name and returns the marshalled plan, failing on any
// diagnostic (warnings included).
func compileOK(t *testing.T, name string, opts Options) []byte {
	t.Helper()
	p, ds := Compile(name, opts)
	if len(ds) > 0 {
		t.Fatalf("diagnostics:\n%s", render(ds))
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
