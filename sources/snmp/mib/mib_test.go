package mib

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconmon/recon/sources/snmp/snmptest"
)

// standard loads the net-snmp distribution's MIBs plus testdata/local.
func standard(t *testing.T, modules ...string) *Set {
	t.Helper()
	s, err := Load([]string{"testdata/local", snmptest.MIBDir(t)}, modules)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestResolveNames(t *testing.T) {
	for _, mods := range [][]string{nil, {"IF-MIB", "RECON-TEST-MIB"}} {
		s := standard(t, mods...)
		for in, want := range map[string]string{
			"IF-MIB::ifInOctets":              "1.3.6.1.2.1.2.2.1.10",
			"ifInOctets":                      "1.3.6.1.2.1.2.2.1.10",
			"sysUpTime.0":                     "1.3.6.1.2.1.1.3.0",
			"SNMPv2-MIB::sysUpTime.0":         "1.3.6.1.2.1.1.3.0",
			"IF-MIB::ifDescr.2":               "1.3.6.1.2.1.2.2.1.2.2",
			"ifHCInOctets":                    "1.3.6.1.2.1.31.1.1.1.6",
			"linkDown":                        "1.3.6.1.6.3.1.1.5.3",
			"RECON-TEST-MIB::reconQueueDepth": "1.3.6.1.4.1.99999.1.1.1.2",
			"reconQueueFull":                  "1.3.6.1.4.1.99999.0.1",
			"reconOldTrap":                    "1.3.6.1.4.1.99999.0.7",
			".1.3.6.1.2.1.1.5.0":              "1.3.6.1.2.1.1.5.0",
		} {
			got, err := s.Resolve(in)
			if err != nil || got != want {
				t.Errorf("modules %v: Resolve(%q) = %q, %v; want %q", mods, in, got, err, want)
			}
		}
	}
}

func TestNamesFromOIDs(t *testing.T) {
	s := standard(t)
	// Loaded together, RFC1213-MIB defines ifInOctets too: the SMIv2 module names it.
	for oid, want := range map[string]string{
		"1.3.6.1.2.1.2.2.1.10":  "IF-MIB::ifInOctets",
		"1.3.6.1.6.3.1.1.5.3":   "IF-MIB::linkDown",
		"1.3.6.1.6.3.1.1.5.1":   "SNMPv2-MIB::coldStart",
		"1.3.6.1.4.1.99999.0.1": "RECON-TEST-MIB::reconQueueFull",
	} {
		if o, ok := s.Name(oid); !ok || o.String() != want {
			t.Errorf("Name(%s) = %v, %v; want %s", oid, o, ok, want)
		}
	}
	o, suffix, ok := s.Instance("1.3.6.1.2.1.2.2.1.8.3")
	if !ok || o.String() != "IF-MIB::ifOperStatus" || suffix != "3" {
		t.Errorf("Instance(ifOperStatus.3) = %v %q %v", o, suffix, ok)
	}
	if o, _, ok := s.Instance("1.3.6.1.4.1.99999.1.77"); ok {
		t.Errorf("an OID under a plain node was named as an instance of %v", o)
	}
	if o, suffix, ok := s.Instance("1.3.6.1.4.1.99999.1.2.0"); !ok || o.Name != "reconQueueState" || suffix != "0" {
		t.Errorf("Instance(reconQueueState.0) = %v %q %v", o, suffix, ok)
	}
}

func TestResolveErrors(t *testing.T) {
	s := standard(t, "IF-MIB")
	_, err := s.Resolve("IF-MIB::ifInOctetz")
	if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "testdata/local") ||
		!strings.Contains(err.Error(), `did you mean "IF-MIB::ifInOctets"`) {
		t.Errorf("unknown name error = %v; want the directories searched and a suggestion", err)
	}
	for _, bad := range []string{"", "ifInOctets.x", "1..3", "1.3.99999999999", "NO-MIB::ifInOctets"} {
		if got, err := s.Resolve(bad); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", bad, got)
		}
	}
	var none *Set
	if _, err := none.Resolve("ifInOctets"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "mib_dirs") {
		t.Errorf("without MIBs: %v", err)
	}
	if got, err := none.Resolve("1.3.6.1"); err != nil || got != "1.3.6.1" {
		t.Errorf("numeric without MIBs: %q %v", got, err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load([]string{"testdata/local", snmptest.MIBDir(t)}, []string{"FOO-MIB"}); err == nil ||
		!strings.Contains(err.Error(), "FOO-MIB not found in testdata/local") {
		t.Errorf("missing module: %v", err)
	}
	// A module whose imports are nowhere to be found names the importer.
	if _, err := Load([]string{"testdata/local"}, []string{"RECON-TEST-MIB"}); err == nil ||
		!strings.Contains(err.Error(), "imported by RECON-TEST-MIB") {
		t.Errorf("missing import: %v", err)
	}
	if _, err := Load([]string{filepath.Join(t.TempDir(), "nope")}, nil); err == nil {
		t.Error("a missing directory was accepted")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "BAD-MIB.mib"), []byte("BAD-MIB DEFINITIONS ::= BEGIN\nx OBJECT IDENTIFIER ::= { y z }\nEND\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]string{dir}, []string{"BAD-MIB"}); err == nil || !strings.Contains(err.Error(), "BAD-MIB.mib:2") {
		t.Errorf("bad file: %v; want its name and line", err)
	}
}

// A file not named after its module is found by the module it declares.
func TestLoadByDeclaredName(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/local/RECON-TEST-MIB.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vendor.my"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load([]string{dir, snmptest.MIBDir(t)}, []string{"RECON-TEST-MIB"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Resolve("reconQueueDepth"); err != nil || got != "1.3.6.1.4.1.99999.1.1.1.2" {
		t.Errorf("Resolve = %q, %v", got, err)
	}
}

// FuzzParse: MIB files are outside input; the parser must return an error,
// never panic or loop.
func FuzzParse(f *testing.F) {
	src, err := os.ReadFile("testdata/local/RECON-TEST-MIB.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(src)
	f.Add([]byte("A DEFINITIONS ::= BEGIN x OBJECT IDENTIFIER ::= { iso 3 } END"))
	f.Add([]byte("A DEFINITIONS ::= BEGIN t TRAP-TYPE ENTERPRISE x ::= 9 END"))
	f.Add([]byte("A DEFINITIONS ::= BEGIN M MACRO ::= BEGIN END END"))
	f.Add([]byte("\"unterminated"))
	f.Fuzz(func(t *testing.T, src []byte) {
		mods, err := parse("fuzz.mib", src)
		if err != nil {
			return
		}
		l := &loader{dirs: []string{"."}, mods: map[string]*module{}}
		for _, m := range mods {
			l.mods[m.name] = m
		}
		s := l.build()
		for _, name := range s.Modules() {
			for _, d := range l.mods[name].defs {
				_, _ = s.Resolve(name + "::" + d.name)
			}
		}
	})
}

// Sources naming the same MIBs share one set; a changed file is read again.
func TestCached(t *testing.T) {
	dir := t.TempDir()
	std := snmptest.MIBDir(t)
	src, err := os.ReadFile("testdata/local/RECON-TEST-MIB.txt")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "RECON-TEST-MIB.txt")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Cached([]string{dir, std}, []string{"RECON-TEST-MIB"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Cached([]string{dir, std}, []string{"RECON-TEST-MIB"})
	if err != nil || a != b {
		t.Fatalf("second Cached = %p, %v; want the same set %p", b, err, a)
	}
	changed := strings.Replace(string(src), "reconQueueState OBJECT-TYPE", "reconQueueMode OBJECT-TYPE", 1)
	if err := os.WriteFile(path, []byte(changed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Cached([]string{dir, std}, []string{"RECON-TEST-MIB"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve("reconQueueMode"); err != nil {
		t.Errorf("edited MIB not reloaded: %v", err)
	}
}
