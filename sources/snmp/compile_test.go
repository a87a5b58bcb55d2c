package snmp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/sources/snmp/snmptest"
)

// MIB names are checked when the plan is compiled: a good name compiles, a
// misspelt one is an error at its attribute, with the directories searched
// and a suggestion.
func TestCompileMIBNames(t *testing.T) {
	mibs := snmptest.MIBDir(t)
	src := func(walk string) []byte {
		return fmt.Appendf(nil, `pipeline "mibs"

source core snmp {
  target   = "127.0.0.1"
  mib_dirs = [%q]
  mibs     = ["IF-MIB"]
  get      = { uptime = "SNMPv2-MIB::sysUpTime.0" }
  walk     = { in = %q }
}
`, mibs, walk)
	}
	if _, ds := compiler.CompileSource("ok.recon", src("IF-MIB::ifInOctets"), compiler.Options{}); ds.HasErrors() {
		t.Fatalf("valid MIB names refused:\n%v", ds.Errs())
	}
	_, ds := compiler.CompileSource("typo.recon", src("IF-MIB::ifInOctetz"), compiler.Options{})
	errs := ds.Errs()
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1:\n%v", len(errs), errs)
	}
	msg := errs[0].Error()
	for _, want := range []string{"typo.recon:8:", `"IF-MIB::ifInOctetz"`, mibs, `did you mean "IF-MIB::ifInOctets"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}
