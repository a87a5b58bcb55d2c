package rules

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/plan"
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
