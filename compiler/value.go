package compiler

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/module"
)

// kind is the type of a compile-time value.
type kind int

const (
	kString kind = iota + 1
	kInt
	kFloat
	kBool
	kDuration
	kSize
	kList
	kMap
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kInt:
		return "int"
	case kFloat:
		return "float"
	case kBool:
		return "bool"
	case kDuration:
		return "duration"
	case kSize:
		return "size"
	case kList:
		return "list"
	case kMap:
		return "map"
	}
	return "invalid"
}

// value is an attribute or constant value after constants and env() are
// resolved, with the range of the expression it came from.
type value struct {
	kind kind
	str  string
	num  int64 // kInt, kSize (bytes), kDuration (nanoseconds)
	flt  float64
	b    bool
	list []value
	keys []mapKey // kMap, in source order
	vals []value
	rng  diag.Range
}

type mapKey struct {
	name string
	rng  diag.Range
}

// intsAsText turns integers (alone or in a list) into their decimal text,
// for fields whose strings are usually numbers (status codes).
func intsAsText(v value) value {
	switch v.kind {
	case kInt:
		return value{kind: kString, str: strconv.FormatInt(v.num, 10), rng: v.rng}
	case kList:
		list := make([]value, len(v.list))
		for i, e := range v.list {
			list[i] = intsAsText(e)
		}
		v.list = list
	}
	return v
}

// describe returns the value's type for messages ("string", "list of int").
func (v value) describe() string {
	if v.kind == kList && len(v.list) > 0 {
		return "list of " + v.list[0].kind.String()
	}
	return v.kind.String()
}

// text renders v as written in a .recon file, for messages.
func (v value) text() string {
	switch v.kind {
	case kString:
		return strconv.Quote(v.str)
	case kInt:
		return strconv.FormatInt(v.num, 10)
	case kFloat:
		return strconv.FormatFloat(v.flt, 'g', -1, 64)
	case kBool:
		return strconv.FormatBool(v.b)
	case kDuration:
		return FormatDuration(time.Duration(v.num))
	case kSize:
		return FormatSize(v.num)
	case kList:
		parts := make([]string, len(v.list))
		for i, e := range v.list {
			parts[i] = e.text()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case kMap:
		parts := make([]string, len(v.keys))
		for i, k := range v.keys {
			parts[i] = k.name + " = " + v.vals[i].text()
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return "?"
}

// convert turns v into the Go value of field f, checking its type,
// allowed values and range. owner names the module in messages ("tcp").
func convert(owner string, f module.Field, v value) (any, diag.Diagnostics) {
	wrongType := func(got value) diag.Diagnostics {
		return diag.Diagnostics{diag.Errorf(got.rng, "attribute %q of %s wants %s, got %s", f.Name, owner, f.Type, got.describe())}
	}
	if f.IntsAsText {
		v = intsAsText(v)
	}
	switch f.Type {
	case module.TypeString:
		if v.kind != kString {
			return nil, wrongType(v)
		}
		if d := checkEnum(owner, f, v); d != nil {
			return nil, diag.Diagnostics{d}
		}
		return v.str, nil
	case module.TypeInt:
		if v.kind != kInt {
			return nil, wrongType(v)
		}
		if d := checkRange(owner, f, float64(v.num), v); d != nil {
			return nil, diag.Diagnostics{d}
		}
		return v.num, nil
	case module.TypeFloat:
		var x float64
		switch v.kind {
		case kInt:
			x = float64(v.num)
		case kFloat:
			x = v.flt
		default:
			return nil, wrongType(v)
		}
		if d := checkRange(owner, f, x, v); d != nil {
			return nil, diag.Diagnostics{d}
		}
		return x, nil
	case module.TypeBool:
		if v.kind != kBool {
			return nil, wrongType(v)
		}
		return v.b, nil
	case module.TypeDuration:
		if v.kind != kDuration {
			return nil, wrongType(v)
		}
		if d := checkRange(owner, f, time.Duration(v.num).Seconds(), v); d != nil {
			return nil, diag.Diagnostics{d}
		}
		return time.Duration(v.num), nil
	case module.TypeSize:
		if v.kind != kSize && v.kind != kInt {
			return nil, wrongType(v)
		}
		if v.num < 0 {
			return nil, diag.Diagnostics{diag.Errorf(v.rng, "attribute %q of %s must not be negative, got %s", f.Name, owner, v.text())}
		}
		if d := checkRange(owner, f, float64(v.num), v); d != nil {
			return nil, diag.Diagnostics{d}
		}
		return v.num, nil
	case module.TypeStringList:
		elems := []value{v}
		switch v.kind {
		case kString:
		case kList:
			elems = v.list
		default:
			return nil, wrongType(v)
		}
		out := make([]string, 0, len(elems))
		var ds diag.Diagnostics
		for _, e := range elems {
			if e.kind != kString {
				ds = ds.Append(diag.Errorf(e.rng, "attribute %q of %s wants a list of strings, got %s in the list", f.Name, owner, e.describe()))
				continue
			}
			if d := checkEnum(owner, f, e); d != nil {
				ds = ds.Append(d)
				continue
			}
			out = append(out, e.str)
		}
		if ds.HasErrors() {
			return nil, ds
		}
		return out, nil
	case module.TypeStringMap:
		if v.kind != kMap {
			return nil, wrongType(v)
		}
		out := make(map[string]string, len(v.keys))
		var ds diag.Diagnostics
		for i, k := range v.keys {
			e := v.vals[i]
			switch e.kind {
			case kString:
				out[k.name] = e.str
			case kInt, kFloat, kBool:
				// Numbers and booleans in a string map are kept as written.
				out[k.name] = e.text()
			default:
				ds = ds.Append(diag.Errorf(e.rng, "attribute %q of %s wants string values, got %s for key %q", f.Name, owner, e.describe(), k.name))
			}
		}
		if ds.HasErrors() {
			return nil, ds
		}
		return out, nil
	}
	return nil, diag.Diagnostics{diag.Errorf(v.rng, "attribute %q of %s has an unsupported type %v", f.Name, owner, f.Type)}
}

func checkEnum(owner string, f module.Field, v value) *diag.Diagnostic {
	if len(f.Enum) == 0 {
		return nil
	}
	for _, e := range f.Enum {
		if v.str == e {
			return nil
		}
	}
	quoted := make([]string, len(f.Enum))
	for i, e := range f.Enum {
		quoted[i] = strconv.Quote(e)
	}
	msg := fmt.Sprintf("attribute %q of %s must be one of %s, got %q", f.Name, owner, strings.Join(quoted, ", "), v.str)
	if s := diag.Suggest(v.str, f.Enum); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return diag.Errorf(v.rng, "%s", msg)
}

// checkRange checks x against f's bounds (seconds for durations, bytes for
// sizes).
func checkRange(owner string, f module.Field, x float64, v value) *diag.Diagnostic {
	bound := func(b float64) string {
		switch f.Type {
		case module.TypeDuration:
			return FormatDuration(time.Duration(math.Round(b * float64(time.Second))))
		case module.TypeSize:
			return FormatSize(int64(b))
		}
		return strconv.FormatFloat(b, 'g', -1, 64)
	}
	if f.Min != nil && x < *f.Min {
		return diag.Errorf(v.rng, "attribute %q of %s must be at least %s, got %s", f.Name, owner, bound(*f.Min), v.text())
	}
	if f.Max != nil && x > *f.Max {
		return diag.Errorf(v.rng, "attribute %q of %s must be at most %s, got %s", f.Name, owner, bound(*f.Max), v.text())
	}
	return nil
}
