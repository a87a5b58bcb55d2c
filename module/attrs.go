package module

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Attrs holds a module instance's attributes, typed per its spec: string,
// int64, float64, bool, time.Duration, int64 (sizes), []string,
// map[string]string. The compiler fills in defaults, so a module reads every
// field it declared with a default without checking presence.
type Attrs map[string]any

// Has reports whether name is set.
func (a Attrs) Has(name string) bool { _, ok := a[name]; return ok }

// String returns a string attribute, or "".
func (a Attrs) String(name string) string { s, _ := a[name].(string); return s }

// Int returns an int attribute, or 0.
func (a Attrs) Int(name string) int64 { i, _ := a[name].(int64); return i }

// Float returns a float attribute, or 0.
func (a Attrs) Float(name string) float64 { f, _ := a[name].(float64); return f }

// Bool returns a bool attribute, or false.
func (a Attrs) Bool(name string) bool { b, _ := a[name].(bool); return b }

// Duration returns a duration attribute, or 0.
func (a Attrs) Duration(name string) time.Duration { d, _ := a[name].(time.Duration); return d }

// Size returns a size attribute in bytes, or 0.
func (a Attrs) Size(name string) int64 { return a.Int(name) }

// Strings returns a list attribute, or nil.
func (a Attrs) Strings(name string) []string { l, _ := a[name].([]string); return l }

// Map returns a map attribute, or nil.
func (a Attrs) Map(name string) map[string]string { m, _ := a[name].(map[string]string); return m }

// MarshalAttrs encodes attributes for the plan: durations as Go duration
// strings ("1m30s"), everything else as its JSON value. encoding/json sorts
// map keys, so the output is deterministic.
func MarshalAttrs(a Attrs) (json.RawMessage, error) {
	out := make(map[string]any, len(a))
	for k, v := range a {
		if d, ok := v.(time.Duration); ok {
			out[k] = d.String()
			continue
		}
		out[k] = v
	}
	return json.Marshal(out)
}

// DecodeAttrs decodes a plan's attributes against spec, restoring the Go
// types of Attrs. Unknown attributes are an error: a plan from a newer
// compiler must not be half understood.
func DecodeAttrs(spec *Spec, raw json.RawMessage) (Attrs, error) {
	var m map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s %s: attributes: %w", spec.Kind, spec.Name, err)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	a := make(Attrs, len(m))
	for _, k := range keys {
		f, ok := spec.Field(k)
		if !ok {
			return nil, fmt.Errorf("%s %s: unknown attribute %q", spec.Kind, spec.Name, k)
		}
		v, err := decodeValue(f.Type, m[k])
		if err != nil {
			return nil, fmt.Errorf("%s %s: attribute %s: %w", spec.Kind, spec.Name, k, err)
		}
		a[k] = v
	}
	return a, nil
}

func decodeValue(t Type, raw json.RawMessage) (any, error) {
	switch t {
	case TypeString:
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case TypeInt, TypeSize:
		var i int64
		err := json.Unmarshal(raw, &i)
		return i, err
	case TypeFloat:
		var f float64
		err := json.Unmarshal(raw, &f)
		return f, err
	case TypeBool:
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	case TypeDuration:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return time.ParseDuration(s)
	case TypeStringList:
		var l []string
		err := json.Unmarshal(raw, &l)
		return l, err
	case TypeStringMap:
		var m map[string]string
		err := json.Unmarshal(raw, &m)
		return m, err
	}
	return nil, fmt.Errorf("unsupported type %v", t)
}
