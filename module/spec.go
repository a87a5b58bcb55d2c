// Package module declares what a Recon module is: a spec of its attributes
// (which drives the compiler's validation and the generated reference docs)
// and, for sources, the runtime interfaces a module implements.
//
// Every module lives in its own package (sources/http, sinks/parquet …) and
// exports its Spec; the catalog package registers them all in one place.
package module

import (
	"fmt"
	"sort"
	"time"
)

// Kind says whether a module is a source or a sink.
type Kind string

// Module kinds.
const (
	KindSource Kind = "source"
	KindSink   Kind = "sink"
)

// Type is the type of an attribute value.
type Type int

// Attribute types. Lists accept a single scalar as a one-element list.
const (
	TypeString     Type = iota + 1
	TypeInt             // int64
	TypeFloat           // float64; ints are accepted
	TypeBool            // bool
	TypeDuration        // time.Duration, written 30s, 5m, 250ms …
	TypeSize            // int64 bytes, written 64KiB, 1MiB … or a plain integer
	TypeStringList      // []string
	TypeStringMap       // map[string]string
)

var typeNames = map[Type]string{
	TypeString:     "string",
	TypeInt:        "int",
	TypeFloat:      "float",
	TypeBool:       "bool",
	TypeDuration:   "duration",
	TypeSize:       "size",
	TypeStringList: "list(string)",
	TypeStringMap:  "map(string)",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Field describes one attribute of a module. Build fields with the
// constructors (String, Int, Duration …) and the chained setters.
type Field struct {
	Name    string
	Type    Type
	Summary string
	// Default is the value used when the attribute is absent, typed as the
	// Go type of Type; nil means no default.
	Default any
	// Required fields must be set (in the source, or in `defaults`).
	Required bool
	// Enum lists the allowed values of a string (or of each list element).
	Enum []string
	// Min and Max bound numbers; for durations and sizes they are in
	// seconds and bytes.
	Min, Max *float64
	// Examples are literal values as written in a .recon file.
	Examples []string
	// Advanced fields are listed after the others in the docs.
	Advanced bool
	// Deprecated, when set, says what to use instead; using the field is a
	// warning.
	Deprecated string
	// IntsAsText lets a string or list(string) field take integer literals,
	// kept as their decimal text: `expect_code = 200` reads as "200".
	IntsAsText bool
}

func newField(name string, t Type, summary string) Field {
	return Field{Name: name, Type: t, Summary: summary}
}

// String declares a string attribute.
func String(name, summary string) Field { return newField(name, TypeString, summary) }

// Int declares an integer attribute.
func Int(name, summary string) Field { return newField(name, TypeInt, summary) }

// Float declares a floating point attribute.
func Float(name, summary string) Field { return newField(name, TypeFloat, summary) }

// Bool declares a boolean attribute.
func Bool(name, summary string) Field { return newField(name, TypeBool, summary) }

// Duration declares a duration attribute.
func Duration(name, summary string) Field { return newField(name, TypeDuration, summary) }

// Size declares a byte-size attribute.
func Size(name, summary string) Field { return newField(name, TypeSize, summary) }

// StringList declares a list-of-strings attribute.
func StringList(name, summary string) Field { return newField(name, TypeStringList, summary) }

// StringMap declares a string-to-string map attribute.
func StringMap(name, summary string) Field { return newField(name, TypeStringMap, summary) }

// Req marks the field required.
func (f Field) Req() Field { f.Required = true; return f }

// Def sets the default. The value must have the Go type of the field's Type
// (int values are converted for int, float and size fields).
func (f Field) Def(v any) Field {
	switch f.Type {
	case TypeInt, TypeSize:
		if i, ok := v.(int); ok {
			v = int64(i)
		}
	case TypeFloat:
		if i, ok := v.(int); ok {
			v = float64(i)
		}
	}
	f.Default = v
	return f
}

// OneOf restricts a string (or each element of a string list) to values.
func (f Field) OneOf(values ...string) Field { f.Enum = values; return f }

// Range bounds a number; durations in seconds, sizes in bytes.
func (f Field) Range(lo, hi float64) Field { f.Min, f.Max = &lo, &hi; return f }

// AtLeast sets a lower bound only.
func (f Field) AtLeast(lo float64) Field { f.Min = &lo; return f }

// Example adds an example as written in a .recon file.
func (f Field) Example(ex ...string) Field { f.Examples = append(f.Examples, ex...); return f }

// TakesInts lets the (string or list(string)) field take integers, kept as
// their decimal text.
func (f Field) TakesInts() Field { f.IntsAsText = true; return f }

// Adv marks the field advanced.
func (f Field) Adv() Field { f.Advanced = true; return f }

// Deprecate marks the field deprecated, saying what to use instead.
func (f Field) Deprecate(instead string) Field { f.Deprecated = instead; return f }

// Metric documents a metric a module produces.
type Metric struct {
	Name    string
	Unit    string
	Summary string
}

// Spec declares a module.
type Spec struct {
	Kind    Kind
	Name    string
	Summary string
	// Description is Markdown, shown in the reference docs.
	Description string
	Fields      []Field
	Metrics     []Metric
	// Example is a complete .recon snippet using the module; the tests
	// compile every example.
	Example string
	// Validate checks rules that span attributes (after types, defaults and
	// per-field checks passed). Return FieldErrors to point at an attribute.
	Validate func(a Attrs) error
	// Passive sources (listeners) are not scheduled: they have no period.
	Passive bool
	// DefaultTarget derives the target of a source that sets none from its
	// other attributes (http: the URL's host); nil, or "" returned, keeps
	// target required.
	DefaultTarget func(a Attrs) string

	// NewCheck builds a scheduled source's check; nil for passive sources
	// and sinks, or while the module's runtime is not built yet.
	NewCheck func(env Env) (Check, error)
	// NewListener builds a passive source.
	NewListener func(env Env) (Listener, error)
}

// Field returns the field named name.
func (s *Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// FieldError is an error about one attribute, for Validate.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errorf returns a FieldError about field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Registry holds module specs by kind and name.
type Registry struct {
	specs map[Kind]map[string]*Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{specs: map[Kind]map[string]*Spec{}}
}

// Register adds a spec; a second spec of the same kind and name is an error.
func (r *Registry) Register(s *Spec) error {
	if s.Name == "" || (s.Kind != KindSource && s.Kind != KindSink) {
		return fmt.Errorf("module spec %q: name and kind (source|sink) are required", s.Name)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if seen[f.Name] {
			return fmt.Errorf("%s %s: field %q declared twice", s.Kind, s.Name, f.Name)
		}
		seen[f.Name] = true
	}
	m := r.specs[s.Kind]
	if m == nil {
		m = map[string]*Spec{}
		r.specs[s.Kind] = m
	}
	if _, dup := m[s.Name]; dup {
		return fmt.Errorf("%s module %q registered twice", s.Kind, s.Name)
	}
	m[s.Name] = s
	return nil
}

// Lookup returns the spec of kind and name.
func (r *Registry) Lookup(k Kind, name string) (*Spec, bool) {
	s, ok := r.specs[k][name]
	return s, ok
}

// Names returns the names of kind, sorted.
func (r *Registry) Names(k Kind) []string {
	names := make([]string, 0, len(r.specs[k]))
	for n := range r.specs[k] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Specs returns the specs of kind, sorted by name.
func (r *Registry) Specs(k Kind) []*Spec {
	var out []*Spec
	for _, n := range r.Names(k) {
		out = append(out, r.specs[k][n])
	}
	return out
}

// Seconds converts a duration to the unit Range uses for duration fields.
func Seconds(d time.Duration) float64 { return d.Seconds() }
