package dsl

import (
	"strings"
	"unicode/utf8"
)

// Format prints f in the canonical layout: two-space indentation, one
// attribute per line, `=` (and the words of rule items) aligned within a
// run of consecutive lines, trailing comments aligned, one blank line
// between top-level declarations (consecutive one-line `const`, `include`
// lines stay together), at most one blank line kept inside blocks, literals
// spelled as written, operators in their canonical spelling (and, or, not).
// Every comment is kept. Format is idempotent: formatting the parse of its
// output gives the same bytes.
func Format(f *File) []byte {
	p := &printer{comments: f.Comments}
	out := p.file(f)
	// Raw strings keep their line breaks untouched by indentation.
	out = strings.ReplaceAll(out, rawNewline, "\n")
	return []byte(out)
}

// rawNewline stands for a line break inside a raw string while lines are
// being indented; the lexer refuses NUL bytes, so it cannot occur in source.
const rawNewline = "\x00"

type printer struct {
	comments []*Comment
	next     int // index of the first comment not printed yet
}

// takeBefore returns the comments not printed yet that start before offset.
func (p *printer) takeBefore(offset int) []*Comment {
	start := p.next
	for p.next < len(p.comments) && p.comments[p.next].Pos.Offset < offset {
		p.next++
	}
	return p.comments[start:p.next]
}

// takeOnLine returns the comments not printed yet that start on line,
// before offset.
func (p *printer) takeOnLine(line, offset int) []*Comment {
	start := p.next
	for p.next < len(p.comments) && p.comments[p.next].Pos.Line == line && p.comments[p.next].Pos.Offset < offset {
		p.next++
	}
	return p.comments[start:p.next]
}

// entry is one line (or, for a multi-line value, one group of lines) of a
// block being printed.
type entry struct {
	blank   bool   // a blank line
	comment string // a comment on its own line
	// An item: head (aligned within its run when pad is set) and rest,
	// which may span lines.
	head, rest string
	pad        bool
	trail      string // trailing comment
}

func (e *entry) isItem() bool { return !e.blank && e.comment == "" }

// item is something printed as an entry: its span and how to print it.
type item struct {
	span   Span
	render func() (head, rest string, pad bool)
}

// container prints the items of a `{ … }` or `[ … ]` between the open and
// close offsets as entries, with the comments that fall among them.
func (p *printer) container(openLine int, items []item, closeOffset int) (openTrail string, entries []entry) {
	firstOffset := closeOffset
	if len(items) > 0 {
		firstOffset = items[0].span.Pos.Offset
	}
	var extra []entry
	if cs := p.takeOnLine(openLine, firstOffset); len(cs) > 0 {
		openTrail = cs[0].Text
		for _, c := range cs[1:] {
			extra = append(extra, entry{comment: c.Text})
		}
	}
	entries = extra
	prevLine := openLine
	for i, it := range items {
		for _, c := range p.takeBefore(it.span.Pos.Offset) {
			if c.Pos.Line > prevLine+1 && len(entries) > 0 {
				entries = append(entries, entry{blank: true})
			}
			entries = append(entries, entry{comment: c.Text})
			prevLine = c.EndPos.Line
		}
		if it.span.Pos.Line > prevLine+1 && len(entries) > 0 {
			entries = append(entries, entry{blank: true})
		}
		head, rest, pad := it.render()
		e := entry{head: head, rest: rest, pad: pad}
		next := closeOffset
		if i+1 < len(items) {
			next = items[i+1].span.Pos.Offset
		}
		trail := p.takeBefore(it.span.EndPos.Offset)
		trail = append(trail[:len(trail):len(trail)], p.takeOnLine(it.span.EndPos.Line, next)...)
		var after []entry
		if len(trail) > 0 {
			e.trail = trail[0].Text
			for _, c := range trail[1:] {
				after = append(after, entry{comment: c.Text})
			}
		}
		entries = append(entries, e)
		entries = append(entries, after...)
		prevLine = it.span.EndPos.Line
		if len(trail) > 0 {
			prevLine = max(prevLine, trail[len(trail)-1].EndPos.Line)
		}
	}
	for _, c := range p.takeBefore(closeOffset) {
		if c.Pos.Line > prevLine+1 && len(entries) > 0 {
			entries = append(entries, entry{blank: true})
		}
		entries = append(entries, entry{comment: c.Text})
		prevLine = c.EndPos.Line
	}
	return openTrail, entries
}

// layout renders entries as lines (no indentation), aligning heads and
// trailing comments within runs of consecutive one-line items.
func layout(entries []entry) []string {
	lines := make([]string, 0, len(entries))
	for i := 0; i < len(entries); {
		e := &entries[i]
		if !e.isItem() {
			if e.blank {
				lines = append(lines, "")
			} else {
				lines = append(lines, e.comment)
			}
			i++
			continue
		}
		// A run: consecutive one-line items; a multi-line item is a run
		// of its own.
		j := i + 1
		if !strings.Contains(e.rest, "\n") {
			for j < len(entries) && entries[j].isItem() && !strings.Contains(entries[j].rest, "\n") {
				j++
			}
		}
		width := 0
		for k := i; k < j; k++ {
			if entries[k].pad {
				width = max(width, utf8.RuneCountInString(entries[k].head))
			}
		}
		run := make([]string, 0, j-i)
		for k := i; k < j; k++ {
			run = append(run, joinHead(entries[k], width))
		}
		// Align the trailing comments of consecutive lines that have one.
		for k := i; k < j; {
			if entries[k].trail == "" {
				k++
				continue
			}
			m := k
			col := 0
			for m < j && entries[m].trail != "" {
				col = max(col, utf8.RuneCountInString(lastLine(run[m-i])))
				m++
			}
			for n := k; n < m; n++ {
				s := run[n-i]
				run[n-i] = s + strings.Repeat(" ", col-utf8.RuneCountInString(lastLine(s))+1) + entries[n].trail
			}
			k = m
		}
		lines = append(lines, run...)
		i = j
	}
	return lines
}

func lastLine(s string) string { return s[strings.LastIndexByte(s, '\n')+1:] }

func joinHead(e entry, width int) string {
	switch {
	case e.head == "":
		return e.rest
	case e.rest == "":
		return e.head
	case e.pad:
		return e.head + strings.Repeat(" ", width-utf8.RuneCountInString(e.head)+1) + e.rest
	}
	return e.head + " " + e.rest
}

// indent prefixes every non-empty line with two spaces.
func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		for _, sub := range strings.Split(l, "\n") {
			if sub != "" {
				b.WriteString("  ")
				b.WriteString(sub)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// braces prints `{ … }` around entries; an empty one is `{}`.
func braces(open, close, openTrail string, entries []entry) string {
	if len(entries) == 0 && openTrail == "" {
		return open + close
	}
	s := open
	if openTrail != "" {
		s += " " + openTrail
	}
	return s + "\n" + indent(layout(entries)) + close
}

func (p *printer) file(f *File) string {
	var b strings.Builder
	var prev Decl  // previous declaration printed, nil at the start or after a comment
	prevLine := 0  // source line where the previous element ended
	prevText := "" // previous declaration as printed
	// Comments that stood inside the previous declaration beyond its first
	// trailing one: printed on their own lines, so they are laid out as the
	// parse of the output will see them, as comments before what follows.
	var carried []*Comment
	for i, d := range f.Decls {
		start := d.(posNode).start()
		leading := append(carried, p.takeBefore(start.Offset)...)
		carried = nil
		text := p.decl(d)
		for _, c := range leading {
			if prevLine > 0 && (c.Pos.Line > prevLine+1 || prev != nil && !groupable(prev, prevText, d, text)) {
				b.WriteByte('\n')
			}
			b.WriteString(c.Text)
			b.WriteByte('\n')
			prevLine = c.EndPos.Line
			prev = nil
		}
		if prevLine > 0 && (start.Line > prevLine+1 || prev != nil && !groupable(prev, prevText, d, text)) {
			b.WriteByte('\n')
		}
		b.WriteString(text)
		end := d.(posNode).end()
		next := f.EndPos.Offset + 1
		if i+1 < len(f.Decls) {
			next = f.Decls[i+1].(posNode).start().Offset
		}
		trail := p.takeBefore(end.Offset)
		trail = append(trail[:len(trail):len(trail)], p.takeOnLine(end.Line, next)...)
		prevLine = end.Line
		if len(trail) > 0 {
			b.WriteString(" ")
			b.WriteString(trail[0].Text)
			prevLine = max(prevLine, trail[0].EndPos.Line)
			carried = trail[1:]
		}
		b.WriteByte('\n')
		prev, prevText = d, text
	}
	for _, c := range append(carried, p.takeBefore(f.EndPos.Offset+1)...) {
		if prevLine > 0 && (c.Pos.Line > prevLine+1 || prev != nil) {
			b.WriteByte('\n')
		}
		b.WriteString(c.Text)
		b.WriteByte('\n')
		prevLine = c.EndPos.Line
		prev = nil
	}
	return b.String()
}

// groupable reports whether two declarations stay on consecutive lines:
// one-line pipeline, include and const declarations of the same kind.
func groupable(a Decl, aText string, b Decl, bText string) bool {
	if strings.ContainsAny(aText, "\n"+rawNewline) || strings.ContainsAny(bText, "\n"+rawNewline) {
		return false
	}
	switch a.(type) {
	case *Include:
		_, ok := b.(*Include)
		return ok
	case *Const:
		_, ok := b.(*Const)
		return ok
	}
	return false
}

func (p *printer) decl(d Decl) string {
	switch d := d.(type) {
	case *Pipeline:
		return "pipeline " + p.expr(d.Name)
	case *Include:
		return "include " + p.expr(d.Path)
	case *Const:
		return "const " + d.Name.Name + " = " + p.expr(d.Value)
	case *Defaults:
		return "defaults " + p.block(d.Body)
	case *Source:
		return "source " + d.Name.Name + " " + d.Module.Name + " " + p.block(d.Body)
	case *Stream:
		return "stream " + d.Name.Name + " " + p.block(d.Body)
	case *Sink:
		return "sink " + d.Name.Name + " " + d.Kind.Name + " " + p.block(d.Body)
	case *Rule:
		return "rule " + d.Name.Name + " " + p.ruleBody(d.Body)
	}
	return ""
}

func (p *printer) block(blk *Block) string {
	items := make([]item, len(blk.Attrs))
	for i, a := range blk.Attrs {
		items[i] = item{span: a.Span, render: func() (string, string, bool) {
			return a.Name.Name, "= " + p.expr(a.Value), true
		}}
	}
	trail, entries := p.container(blk.Pos.Line, items, blk.EndPos.Offset-1)
	return braces("{", "}", trail, entries)
}

func (p *printer) ruleBody(body *RuleBody) string {
	items := make([]item, len(body.Items))
	for i, it := range body.Items {
		items[i] = item{span: spanOf(it), render: func() (string, string, bool) { return p.ruleItem(it) }}
	}
	trail, entries := p.container(body.Pos.Line, items, body.EndPos.Offset-1)
	return braces("{", "}", trail, entries)
}

func spanOf(n Node) Span {
	s := n.(posNode)
	return Span{Pos: s.start(), EndPos: s.end()}
}

func (p *printer) ruleItem(it RuleItem) (head, rest string, pad bool) {
	switch it := it.(type) {
	case *Attr:
		return it.Name.Name, "= " + p.expr(it.Value), true
	case *From:
		sels := make([]string, len(it.Selectors))
		for i, s := range it.Selectors {
			switch {
			case s.All:
				sels[i] = "*"
			case s.Module != nil:
				sels[i] = "module(" + s.Module.Name + ")"
			default:
				sels[i] = s.Name.Name
			}
		}
		rest = "= " + strings.Join(sels, ", ")
		if it.Where != nil {
			rest += " where " + p.expr(it.Where)
		}
		return "from", rest, true
	case *GroupBy:
		return "group", "by " + p.exprList(it.Exprs), false
	case *Condition:
		rest = "when " + p.expr(it.When)
		if it.For != nil {
			rest += " for " + p.expr(it.For)
		}
		if it.FollowedBy != nil {
			rest += " not followed by " + p.expr(it.FollowedBy) + " within " + p.expr(it.Within)
		}
		return it.Severity, rest, true
	case *Clear:
		return "clear", "when " + p.expr(it.When), true
	}
	return "", "", false
}

func (p *printer) exprList(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = p.expr(e)
	}
	return strings.Join(parts, ", ")
}

// multiLine reports whether a list or map is printed one element per line:
// when it spans lines in the source.
func multiLine(s Span) bool { return s.Pos.Line != s.EndPos.Line }

func (p *printer) expr(e Expr) string {
	switch e := e.(type) {
	case *Ident:
		return e.Name
	case *StringLit:
		return strings.ReplaceAll(e.Raw, "\n", rawNewline)
	case *NumberLit:
		return e.Raw
	case *DurationLit:
		return e.Raw
	case *SizeLit:
		return e.Raw
	case *BoolLit:
		if e.Value {
			return "true"
		}
		return "false"
	case *ListLit:
		if !multiLine(e.Span) {
			return "[" + p.exprList(e.Elems) + "]"
		}
		items := make([]item, len(e.Elems))
		for i, el := range e.Elems {
			items[i] = item{span: spanOf(el), render: func() (string, string, bool) { return "", p.expr(el) + ",", false }}
		}
		trail, entries := p.container(e.Pos.Line, items, e.EndPos.Offset-1)
		return braces("[", "]", trail, entries)
	case *MapLit:
		if !multiLine(e.Span) {
			if len(e.Entries) == 0 {
				return "{}"
			}
			parts := make([]string, len(e.Entries))
			for i, ent := range e.Entries {
				parts[i] = p.mapKey(ent) + " = " + p.expr(ent.Value)
			}
			return "{ " + strings.Join(parts, ", ") + " }"
		}
		items := make([]item, len(e.Entries))
		for i, ent := range e.Entries {
			items[i] = item{span: ent.Span, render: func() (string, string, bool) {
				return p.mapKey(ent), "= " + p.expr(ent.Value), true
			}}
		}
		trail, entries := p.container(e.Pos.Line, items, e.EndPos.Offset-1)
		return braces("{", "}", trail, entries)
	case *CallExpr:
		return e.Func.Name + "(" + p.exprList(e.Args) + ")"
	case *IndexExpr:
		return p.expr(e.X) + "[" + p.expr(e.Index) + "]"
	case *UnaryExpr:
		if e.Op == OpNot {
			return "not " + p.expr(e.X)
		}
		return e.Op + p.expr(e.X)
	case *BinaryExpr:
		return p.expr(e.X) + " " + e.Op + " " + p.expr(e.Y)
	case *ParenExpr:
		return "(" + p.expr(e.X) + ")"
	}
	return ""
}

func (p *printer) mapKey(e *MapEntry) string {
	if e.Name != nil {
		return e.Name.Name
	}
	return p.expr(e.Quoted)
}
