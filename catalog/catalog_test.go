package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
)

// TestDesignModules checks that every module the design names is
// registered, with the right kind.
func TestDesignModules(t *testing.T) {
	reg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	want := map[module.Kind][]string{
		module.KindSource: {"dns", "generator", "http", "nagios", "ping", "selfcheck", "snmp", "snmp_trap", "tcp"},
		module.KindSink:   {"alertmanager", "exec", "kafka", "parquet", "stdout", "webhook"},
	}
	for kind, names := range want {
		if got := strings.Join(reg.Names(kind), " "); got != strings.Join(names, " ") {
			t.Errorf("%s modules: %s, want %s", kind, got, strings.Join(names, " "))
		}
		for _, s := range reg.Specs(kind) {
			if s.Kind != kind {
				t.Errorf("%s registered as %s", s.Name, kind)
			}
		}
	}
	if _, ok := reg.Lookup(module.KindSource, "snmp_trap"); !ok {
		t.Error("snmp_trap not found")
	}
	if s, _ := reg.Lookup(module.KindSource, "snmp_trap"); !s.Passive {
		t.Error("snmp_trap must be passive: it listens instead of being scheduled")
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	a, b := Default(), Default()
	if a == b {
		t.Fatal("Default returned a shared registry")
	}
	if err := a.Register(&module.Spec{Kind: module.KindSink, Name: "extra"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Lookup(module.KindSink, "extra"); ok {
		t.Error("registering in one registry changed another")
	}
	if err := a.Register(&module.Spec{Kind: module.KindSink, Name: "extra"}); err == nil {
		t.Error("a duplicate registration was accepted")
	}
}

// TestSpecsAreConsistent checks what the compiler and the generated docs
// rely on in every spec: summaries, typed defaults inside their own enum
// and range, and a reasonable field set.
func TestSpecsAreConsistent(t *testing.T) {
	reg := Default()
	for _, kind := range []module.Kind{module.KindSource, module.KindSink} {
		for _, s := range reg.Specs(kind) {
			if s.Summary == "" {
				t.Errorf("%s %s: no summary", kind, s.Name)
			}
			for _, f := range s.Fields {
				where := string(kind) + " " + s.Name + ": field " + f.Name
				if f.Summary == "" {
					t.Errorf("%s: no summary", where)
				}
				if kind == module.KindSource && (f.Name == "period" || f.Name == "timeout") {
					t.Errorf("%s: period and timeout are common source attributes, handled by the compiler", where)
				}
				if f.Required && f.Default != nil {
					t.Errorf("%s: required and defaulted", where)
				}
				checkDefault(t, where, f)
			}
		}
	}
}

func checkDefault(t *testing.T, where string, f module.Field) {
	t.Helper()
	if f.Default == nil {
		return
	}
	var num *float64
	switch f.Type {
	case module.TypeString:
		s, ok := f.Default.(string)
		if !ok {
			t.Errorf("%s: default %#v is not a string", where, f.Default)
			return
		}
		if len(f.Enum) > 0 && !contains(f.Enum, s) {
			t.Errorf("%s: default %q is not one of %v", where, s, f.Enum)
		}
	case module.TypeInt, module.TypeSize:
		i, ok := f.Default.(int64)
		if !ok {
			t.Errorf("%s: default %#v is not an int64", where, f.Default)
			return
		}
		x := float64(i)
		num = &x
	case module.TypeFloat:
		x, ok := f.Default.(float64)
		if !ok {
			t.Errorf("%s: default %#v is not a float64", where, f.Default)
			return
		}
		num = &x
	case module.TypeBool:
		if _, ok := f.Default.(bool); !ok {
			t.Errorf("%s: default %#v is not a bool", where, f.Default)
		}
	case module.TypeDuration:
		d, ok := f.Default.(time.Duration)
		if !ok {
			t.Errorf("%s: default %#v is not a time.Duration", where, f.Default)
			return
		}
		x := d.Seconds()
		num = &x
	case module.TypeStringList:
		l, ok := f.Default.([]string)
		if !ok {
			t.Errorf("%s: default %#v is not a []string", where, f.Default)
			return
		}
		for _, e := range l {
			if len(f.Enum) > 0 && !contains(f.Enum, e) {
				t.Errorf("%s: default element %q is not one of %v", where, e, f.Enum)
			}
		}
	case module.TypeStringMap:
		if _, ok := f.Default.(map[string]string); !ok {
			t.Errorf("%s: default %#v is not a map[string]string", where, f.Default)
		}
	default:
		t.Errorf("%s: unknown type %v", where, f.Type)
	}
	if num != nil {
		if f.Min != nil && *num < *f.Min || f.Max != nil && *num > *f.Max {
			t.Errorf("%s: default %v is outside its own range", where, f.Default)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
