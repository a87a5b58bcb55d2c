package nagios_test

import (
	"context"
	"os"
	"testing"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/nagios"
)

// TestExampleThroughPlan compiles the spec's example, decodes each source's
// attributes from the plan as recond does, builds the checks and runs the
// disk check: the spec, the compiler and the module agree.
func TestExampleThroughPlan(t *testing.T) {
	if _, err := os.Stat("/usr/lib/nagios/plugins/check_disk"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("check_disk missing in CI: %v", err)
		}
		t.Skip("check_disk not installed (CI fails here); install with: make deps")
	}
	p, diags := compiler.CompileSource("example.recon", []byte(nagios.Spec.Example), compiler.Options{})
	if diags.HasErrors() {
		t.Fatalf("example does not compile:\n%v", diags.Error())
	}
	if len(p.Sources) != 3 {
		t.Fatalf("%d sources in the example", len(p.Sources))
	}
	for _, s := range p.Sources {
		a, err := module.DecodeAttrs(nagios.Spec, s.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		c, err := nagios.Spec.NewCheck(module.Env{Pipeline: p.Pipeline, Source: s.Name, Target: s.Target, Period: s.Period.D(), Timeout: s.Timeout.D(), Attrs: a})
		if err != nil {
			t.Fatalf("source %s: %v", s.Name, err)
		}
		if s.Name != "root_disk" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.Timeout.D())
		rec := &sampletest.Recorder{}
		res := c.Run(ctx, rec)
		cancel()
		if res.Status == sample.Unknown || len(rec.Metric("/")) != 1 {
			t.Fatalf("root_disk: %+v, rows %+v", res, rec.Rows())
		}
	}
}
