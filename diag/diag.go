// Package diag holds the diagnostics (errors and warnings) that the .recon
// front end reports, with the source ranges they refer to. It is shaped like
// HCL's hcl.Diagnostic: the data lives here, rendering (Text, JSON) is
// separate from it.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a source file. Offset is a 0-based byte offset;
// Line and Column are 1-based, Column counting bytes (as go/token does).
type Pos struct {
	Filename string
	Offset   int
	Line     int
	Column   int
}

// IsValid reports whether p points into a file (Line > 0).
func (p Pos) IsValid() bool { return p.Line > 0 }

// String returns "file:line:col", leaving out the parts that are unknown.
func (p Pos) String() string {
	s := p.Filename
	if p.IsValid() {
		if s != "" {
			s += ":"
		}
		s += fmt.Sprintf("%d:%d", p.Line, p.Column)
	}
	if s == "" {
		s = "-"
	}
	return s
}

// Range is a span of source text; End is exclusive.
type Range struct {
	Filename   string
	Start, End Pos
}

// String returns the start of the range as "file:line:col".
func (r Range) String() string {
	p := r.Start
	p.Filename = r.Filename
	return p.String()
}

// Severity says whether a diagnostic stops compilation.
type Severity int

// The severities, Error first so that the zero value is an error.
const (
	Error Severity = iota
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in a source file.
type Diagnostic struct {
	Severity Severity
	// Summary is a short, one-line description ("unknown source \"hompage\"").
	Summary string
	// Detail says, when useful, how to fix it; it may span several lines.
	Detail string
	// Subject is the range the diagnostic is about; nil if it has none.
	Subject *Range
	// Context is an optional wider range around Subject (the enclosing
	// block or expression).
	Context *Range
}

// Errorf returns an error diagnostic about subject.
func Errorf(subject Range, format string, args ...any) *Diagnostic {
	return &Diagnostic{Severity: Error, Summary: fmt.Sprintf(format, args...), Subject: &subject}
}

// Warningf returns a warning diagnostic about subject.
func Warningf(subject Range, format string, args ...any) *Diagnostic {
	return &Diagnostic{Severity: Warning, Summary: fmt.Sprintf(format, args...), Subject: &subject}
}

// Error renders the diagnostic on one line: "file:line:col: summary" (with
// "warning: " before the summary of a warning).
func (d *Diagnostic) Error() string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(d.Subject.String())
		b.WriteString(": ")
	}
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Summary)
	return b.String()
}

// Diagnostics is a list of diagnostics. The empty list means success.
type Diagnostics []*Diagnostic

// Append adds diagnostics and returns the extended list.
func (ds Diagnostics) Append(more ...*Diagnostic) Diagnostics {
	for _, d := range more {
		if d != nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// Extend adds every diagnostic of other and returns the extended list.
func (ds Diagnostics) Extend(other Diagnostics) Diagnostics { return ds.Append(other...) }

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errs returns the error diagnostics only.
func (ds Diagnostics) Errs() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

func subjectKey(d *Diagnostic) (string, int, int) {
	if d.Subject == nil {
		return "", 0, 0
	}
	return d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
}

// Sort orders the diagnostics by file, line and column (stable: diagnostics
// at the same place keep the order they were reported in). Diagnostics
// without a subject come first.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		fi, li, ci := subjectKey(ds[i])
		fj, lj, cj := subjectKey(ds[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
}

// RemoveMultiples sorts the diagnostics and keeps, of the errors on the same
// line, only the first one (like go/scanner.ErrorList.RemoveMultiples): the
// others are usually consequences of it. Warnings are all kept.
func (ds Diagnostics) RemoveMultiples() Diagnostics {
	ds.Sort()
	out := ds[:0]
	type line struct {
		file string
		line int
	}
	seen := map[line]bool{}
	for _, d := range ds {
		if d.Severity == Error && d.Subject != nil {
			k := line{d.Subject.Filename, d.Subject.Start.Line}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, d)
	}
	for i := len(out); i < len(ds); i++ {
		ds[i] = nil
	}
	return out
}

// Error joins the diagnostics, one per line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns the diagnostics as an error when at least one of them is an
// error, and a nil error interface otherwise (never a typed nil). The
// returned error unwraps to each error diagnostic.
func (ds Diagnostics) Err() error {
	if !ds.HasErrors() {
		return nil
	}
	return diagError{ds.Errs()}
}

type diagError struct{ ds Diagnostics }

func (e diagError) Error() string { return e.ds.Error() }

// Unwrap returns each error diagnostic, so errors.As finds a *Diagnostic.
func (e diagError) Unwrap() []error {
	out := make([]error, len(e.ds))
	for i, d := range e.ds {
		out[i] = d
	}
	return out
}
