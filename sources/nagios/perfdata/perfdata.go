// Package perfdata parses Nagios plugin output as the Monitoring Plugins
// development guidelines define it:
//
//	TEXT OUTPUT | PERFDATA
//	LONG TEXT LINE 1
//	LONG TEXT LINE 2 | PERFDATA
//	PERFDATA
//
// Perfdata items are 'label'=value[UOM];[warn];[crit];[min];[max], separated
// by spaces; labels may be quoted with single quotes (a doubled quote stands
// for one quote inside); warn and crit are Nagios ranges (10, 10:, ~:10,
// 10:20, @10:20).
//
// The parser does not allocate once its Output has grown to the size of the
// outputs it sees: results are slices of the input (or of the Output's own
// scratch buffer for unescaped labels), valid until the next Parse.
package perfdata

import (
	"bytes"
	"strconv"
)

// Perf is one perfdata item. Byte slices point into the parsed input or the
// Output's scratch buffer.
type Perf struct {
	Label []byte
	// Value is the reported value; HasValue is false for the value "U"
	// (the plugin could not determine it).
	Value    float64
	HasValue bool
	UOM      []byte
	Warn     []byte
	Crit     []byte
	Min      []byte
	Max      []byte
}

// Output is a parsed plugin output. Reuse one Output across Parse calls to
// keep its buffers.
type Output struct {
	// Text is the first line before '|', trimmed.
	Text []byte
	// LongText is the lines after the first, up to the '|' that starts the
	// long perfdata section, trimmed; nil when there are none.
	LongText []byte
	Perf     []Perf
	// Errors counts perfdata items skipped as unparseable; FirstError
	// describes the first.
	Errors     int
	FirstError string

	scratch []byte
}

// Reset clears o for reuse, keeping its buffers.
func (o *Output) Reset() {
	o.Text, o.LongText = nil, nil
	o.Perf = o.Perf[:0]
	o.Errors, o.FirstError = 0, ""
	o.scratch = o.scratch[:0]
}

// Parse parses data (a plugin's stdout) into o, replacing its contents.
// It never fails: malformed perfdata is counted in o.Errors and skipped.
func Parse(data []byte, o *Output) {
	o.Reset()
	// Unescaped labels are never longer than the input: with that capacity
	// the scratch buffer never moves and earlier labels stay valid.
	if cap(o.scratch) < len(data) {
		o.scratch = make([]byte, 0, len(data))
	}
	first, rest, more := cutLine(data)
	text, perf, hasPerf := bytes.Cut(first, pipe)
	o.Text = bytes.TrimSpace(text)
	if hasPerf {
		o.parsePerf(perf)
	}
	if !more {
		return
	}
	// Long text runs until a line containing '|'; everything after that
	// '|' (to the end of the output) is perfdata.
	if i := bytes.IndexByte(rest, '|'); i >= 0 {
		o.LongText = bytes.TrimSpace(rest[:i])
		o.parsePerf(rest[i+1:])
	} else {
		o.LongText = bytes.TrimSpace(rest)
	}
	if len(o.LongText) == 0 {
		o.LongText = nil
	}
}

var pipe = []byte{'|'}

func cutLine(b []byte) (line, rest []byte, found bool) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return bytes.TrimSuffix(b[:i], []byte{'\r'}), b[i+1:], true
	}
	return b, nil, false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// parsePerf parses space-separated perfdata items.
func (o *Output) parsePerf(b []byte) {
	for {
		for len(b) > 0 && isSpace(b[0]) {
			b = b[1:]
		}
		if len(b) == 0 {
			return
		}
		var p Perf
		var err string
		b, err = o.parseItem(b, &p)
		if err != "" {
			o.fail(err)
			// Skip to the next item.
			for len(b) > 0 && !isSpace(b[0]) {
				b = b[1:]
			}
			continue
		}
		o.Perf = append(o.Perf, p)
	}
}

func (o *Output) fail(msg string) {
	if o.Errors == 0 {
		o.FirstError = msg
	}
	o.Errors++
}

// parseItem parses one item at the start of b and returns the rest. On an
// error it returns the unconsumed input and a message.
func (o *Output) parseItem(b []byte, p *Perf) ([]byte, string) {
	start := b
	if b[0] == '\'' {
		label, rest, ok := o.quotedLabel(b[1:])
		if !ok {
			return nil, "unterminated quoted label " + quote(start)
		}
		p.Label, b = label, rest
	} else {
		i := 0
		for i < len(b) && b[i] != '=' && !isSpace(b[i]) {
			i++
		}
		p.Label, b = b[:i], b[i:]
	}
	if len(p.Label) == 0 {
		return b, "empty label in " + quote(start)
	}
	if len(b) == 0 || b[0] != '=' {
		return b, "no '=' after label in " + quote(start)
	}
	b = b[1:]
	// Value, then UOM.
	i := 0
	for i < len(b) && isNumChar(b[i]) {
		i++
	}
	switch {
	case i > 0:
		v, err := strconv.ParseFloat(string(b[:i]), 64)
		if err != nil {
			return b, "bad value in " + quote(start)
		}
		p.Value, p.HasValue = v, true
	case len(b) > 0 && b[0] == 'U':
		i = 1
	default:
		return b, "no value in " + quote(start)
	}
	b = b[i:]
	i = 0
	for i < len(b) && b[i] != ';' && !isSpace(b[i]) {
		i++
	}
	p.UOM, b = b[:i], b[i:]
	if !validUOM(p.UOM) {
		return b, "bad unit in " + quote(start)
	}
	// ;warn;crit;min;max
	fields := [4]*[]byte{&p.Warn, &p.Crit, &p.Min, &p.Max}
	for _, f := range fields {
		if len(b) == 0 || b[0] != ';' {
			break
		}
		b = b[1:]
		i = 0
		for i < len(b) && b[i] != ';' && !isSpace(b[i]) {
			i++
		}
		*f, b = b[:i], b[i:]
	}
	if len(b) > 0 && !isSpace(b[0]) {
		return b, "trailing data in " + quote(start)
	}
	if !validRange(p.Warn) || !validRange(p.Crit) {
		return b, "bad threshold range in " + quote(start)
	}
	if !validNumber(p.Min) || !validNumber(p.Max) {
		return b, "bad min/max in " + quote(start)
	}
	return b, ""
}

// quotedLabel reads a label after its opening quote, unescaping ”. It
// returns the label, the input after the closing quote, and false when the
// quote is not closed. The label is a slice of b when it holds no escape.
func (o *Output) quotedLabel(b []byte) (label, rest []byte, ok bool) {
	escaped := false
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\'')
		if j < 0 {
			return nil, nil, false
		}
		i += j
		if i+1 < len(b) && b[i+1] == '\'' {
			escaped = true
			i += 2
			continue
		}
		break
	}
	raw := b[:i]
	rest = b[i+1:]
	if !escaped {
		return raw, rest, true
	}
	start := len(o.scratch)
	for k := 0; k < len(raw); k++ {
		o.scratch = append(o.scratch, raw[k])
		if raw[k] == '\'' {
			k++ // skip the second quote of ''
		}
	}
	return o.scratch[start:len(o.scratch):len(o.scratch)], rest, true
}

func isNumChar(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
}

// validUOM accepts the guidelines' units, and any other short run of
// letters, '%' or '/' (plugins in the wild report d, MiB, req/s …); the unit
// is kept as reported.
func validUOM(u []byte) bool {
	if len(u) > 16 {
		return false
	}
	for _, c := range u {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '%' && c != '/' {
			return false
		}
	}
	return true
}

// validNumber accepts "" or a number.
func validNumber(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	for _, c := range b {
		if !isNumChar(c) {
			return false
		}
	}
	_, err := strconv.ParseFloat(string(b), 64)
	return err == nil
}

// validRange accepts "" or a Nagios range: [@][start:][end] where start is
// a number or ~ (negative infinity), end a number, and at least one of them
// is present (10, 10:, ~:10, 10:20, @10:20).
func validRange(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if b[0] == '@' {
		b = b[1:]
	}
	start, end, hasColon := bytes.Cut(b, []byte{':'})
	if !hasColon {
		return len(end) == 0 && len(start) > 0 && validNumber(start)
	}
	if len(start) == 0 && len(end) == 0 {
		return false
	}
	if !(len(start) == 1 && start[0] == '~') && !validNumber(start) {
		return false
	}
	return validNumber(end)
}

// quote returns a short quoted excerpt of an item for error messages.
func quote(b []byte) string {
	i := 0
	for i < len(b) && !isSpace(b[i]) && i < 64 {
		i++
	}
	return strconv.Quote(string(b[:i]))
}

// Normalize converts a value in one of the guidelines' units with a base to
// that base: ms and us to s, KB, MB, GB and TB to B (powers of 1024, as the
// Monitoring Plugins compute them). ok is false for units that are already a
// base (s, B, %, c), have none, or are not known.
func Normalize(v float64, uom []byte) (base string, nv float64, ok bool) {
	switch string(uom) {
	case "ms":
		return "s", v / 1e3, true
	case "us":
		return "s", v / 1e6, true
	case "KB":
		return "B", v * (1 << 10), true
	case "MB":
		return "B", v * (1 << 20), true
	case "GB":
		return "B", v * (1 << 30), true
	case "TB":
		return "B", v * (1 << 40), true
	}
	return "", 0, false
}
