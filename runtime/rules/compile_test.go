package rules

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
)

// loadRules is the script loader reconc uses: .recon sections go through
// the compiler, .json sections are plans.
func loadRules(name string, src []byte) (*plan.Plan, error) {
	if !strings.HasSuffix(name, ".recon") {
		return LoadJSON(name, src)
	}
	p, diags := compiler.CompileSource(name, src, compiler.Options{})
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	return p, nil
}

// Every rule of the shipped examples compiles and is accepted by the engine.
func TestExampleRulesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.recon")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	n := 0
	for _, f := range files {
		p, diags := compiler.Compile(f, compiler.Options{})
		if diags.HasErrors() {
			t.Errorf("%s: %v", f, diags.Error())
			continue
		}
		if _, err := New(Options{Plan: p, Logger: discardLogger()}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		n += len(p.Rules)
	}
	if n == 0 {
		t.Error("the examples hold no rules")
	}
}

// The notifiers of a compiled plan are built from its sinks, and a rule's
// event reaches the stdout sink it names.
func TestBuildNotifiers(t *testing.T) {
	src := []byte(`pipeline "n"
source web generator { target = "127.0.0.1" }
sink console stdout { format = "json" }
sink hook webhook { url = "http://127.0.0.1:9/hook" }
sink page exec { command = ["/bin/true"] }
rule r {
  from = web
  critical when count() > 0
  notify = [console]
}
`)
	p, err := loadRules("n.recon", src)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ns, err := BuildNotifiers(p, &out, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 3 || ns["console"] == nil || ns["hook"] == nil || ns["page"] == nil {
		t.Fatalf("notifiers %v", ns)
	}
	ev := alert.Event{Rule: "r", Severity: alert.Critical, Value: 1}
	if err := ns["console"].Notify(context.Background(), &ev); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"severity":"critical"`) {
		t.Errorf("stdout sink printed %q", out.String())
	}
}
