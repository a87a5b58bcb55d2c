package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// tabWidth is how many columns a tab in a source line takes in Text output.
const tabWidth = 4

// Text writes the diagnostics for a person: for each one, a line
// "file:line:col: summary" ("warning: " before a warning's summary), the
// detail lines indented, then, when the source of the subject's file is in
// src, the numbered source line and a caret underline across the subject on
// that line.
func Text(w io.Writer, ds Diagnostics, src map[string][]byte) error {
	var b bytes.Buffer
	for _, d := range ds {
		b.WriteString(d.Error())
		b.WriteByte('\n')
		if d.Detail != "" {
			for _, line := range strings.Split(strings.TrimRight(d.Detail, "\n"), "\n") {
				if line == "" {
					b.WriteByte('\n')
					continue
				}
				b.WriteString("    ")
				b.WriteString(line)
				b.WriteByte('\n')
			}
		}
		if d.Subject != nil {
			writeSnippet(&b, *d.Subject, src[d.Subject.Filename])
		}
	}
	_, err := w.Write(b.Bytes())
	if err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

// lineBounds returns the byte range [start, end) of the line holding offset,
// without its line ending.
func lineBounds(src []byte, offset int) (int, int) {
	if offset > len(src) {
		offset = len(src)
	}
	start := bytes.LastIndexByte(src[:offset], '\n') + 1
	end := len(src)
	if i := bytes.IndexByte(src[offset:], '\n'); i >= 0 {
		end = offset + i
	}
	if end > start && src[end-1] == '\r' {
		end--
	}
	return start, end
}

// displayWidth is the number of columns text takes once tabs are expanded.
func displayWidth(text []byte) int {
	n := 0
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		text = text[size:]
		if r == '\t' {
			n += tabWidth
		} else {
			n++
		}
	}
	return n
}

func writeSnippet(b *bytes.Buffer, r Range, src []byte) {
	if src == nil || !r.Start.IsValid() || r.Start.Offset < 0 || r.Start.Offset > len(src) {
		return
	}
	start, end := lineBounds(src, r.Start.Offset)
	line := src[start:end]
	num := fmt.Sprintf("%d", r.Start.Line)
	width := max(5, len(num))
	expanded := bytes.ReplaceAll(line, []byte("\t"), []byte(strings.Repeat(" ", tabWidth)))
	fmt.Fprintf(b, "%s\n", bytes.TrimRight(fmt.Appendf(nil, "%*s | %s", width, num, expanded), " "))

	from := r.Start.Offset
	to := r.End.Offset
	if to > end || to < from || r.End.Line != r.Start.Line {
		to = end
	}
	pad := displayWidth(src[start:from])
	carets := max(1, displayWidth(src[from:to]))
	fmt.Fprintf(b, "%*s | %s%s\n", width, "", strings.Repeat(" ", pad), strings.Repeat("^", carets))
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Offset int `json:"offset"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonDiag struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
	Context  *jsonRange `json:"context,omitempty"`
}

func toJSONRange(r *Range) *jsonRange {
	if r == nil {
		return nil
	}
	return &jsonRange{
		Filename: r.Filename,
		Start:    jsonPos{Line: r.Start.Line, Column: r.Start.Column, Offset: r.Start.Offset},
		End:      jsonPos{Line: r.End.Line, Column: r.End.Column, Offset: r.End.Offset},
	}
}

// JSON writes the diagnostics as a JSON array for editors and CI tools:
// objects with severity ("error"|"warning"), summary, detail, range and
// context ({filename, start{line,column,offset}, end{…}}). No diagnostics
// give "[]".
func JSON(w io.Writer, ds Diagnostics) error {
	out := make([]jsonDiag, 0, len(ds))
	for _, d := range ds {
		out = append(out, jsonDiag{
			Severity: d.Severity.String(),
			Summary:  d.Summary,
			Detail:   d.Detail,
			Range:    toJSONRange(d.Subject),
			Context:  toJSONRange(d.Context),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write diagnostics as JSON: %w", err)
	}
	return nil
}
