package dsl

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the .recon lexer.
const (
	tokEOF lexer.TokenType = lexer.EOF - iota
	tokComment
	tokIdent
	tokKeyword
	tokString
	tokRawString
	tokInt
	tokFloat
	tokDuration
	tokSize
	tokPunct
)

var symbols = map[string]lexer.TokenType{
	"EOF":       tokEOF,
	"Comment":   tokComment,
	"Ident":     tokIdent,
	"Keyword":   tokKeyword,
	"String":    tokString,
	"RawString": tokRawString,
	"Int":       tokInt,
	"Float":     tokFloat,
	"Duration":  tokDuration,
	"Size":      tokSize,
	"Punct":     tokPunct,
}

// keywords cannot be used as names: they are operators or literals.
var keywords = map[string]bool{"and": true, "or": true, "not": true, "true": true, "false": true}

// Duration units, and size units with their multipliers.
var (
	durationUnits = []string{"ms", "s", "m", "h", "d"}
	sizeUnits     = map[string]int64{
		"B":   1,
		"KB":  1000,
		"MB":  1000 * 1000,
		"GB":  1000 * 1000 * 1000,
		"TB":  1000 * 1000 * 1000 * 1000,
		"KiB": 1 << 10,
		"MiB": 1 << 20,
		"GiB": 1 << 30,
		"TiB": 1 << 40,
	}
)

// lexError is a problem the lexer found: it still emits a token there, so
// that the parser can go on.
type lexError struct {
	pos, end lexer.Position
	msg      string
}

// scanner turns source bytes into tokens. It never fails: problems are
// collected in errs and the scanner carries on after them.
type scanner struct {
	filename string
	src      []byte
	text     string // src as a string: token values are slices of it
	off      int
	line     int
	lineOff  int // offset of the first byte of the current line
	toks     []lexer.Token
	errs     []lexError
}

func scan(filename string, src []byte) ([]lexer.Token, []lexError) {
	s := &scanner{filename: filename, src: src, text: string(src), line: 1, toks: make([]lexer.Token, 0, len(src)/4+1)}
	if i := bytes.IndexByte(src, 0); i >= 0 {
		// The printer relies on NUL never occurring in source.
		line := bytes.Count(src[:i], []byte("\n")) + 1
		col := i - bytes.LastIndexByte(src[:i], '\n')
		p := lexer.Position{Filename: filename, Offset: i, Line: line, Column: col}
		e := p
		e.Offset++
		e.Column++
		s.errorf(p, e, "NUL byte in source")
	}
	s.run()
	return s.toks, s.errs
}

func (s *scanner) pos(off int) lexer.Position {
	// off is on the current line or after it; callers only ask for offsets
	// at or after lineOff.
	return lexer.Position{Filename: s.filename, Offset: off, Line: s.line, Column: off - s.lineOff + 1}
}

func (s *scanner) errorf(start, end lexer.Position, format string, args ...any) {
	s.errs = append(s.errs, lexError{pos: start, end: end, msg: fmt.Sprintf(format, args...)})
}

func (s *scanner) emit(typ lexer.TokenType, start int) {
	s.toks = append(s.toks, lexer.Token{Type: typ, Value: s.text[start:s.off], Pos: s.pos(start)})
}

func (s *scanner) newline() {
	s.line++
	s.lineOff = s.off
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func (s *scanner) peek(i int) byte {
	if s.off+i < len(s.src) {
		return s.src[s.off+i]
	}
	return 0
}

func (s *scanner) run() {
	for s.off < len(s.src) {
		c := s.src[s.off]
		start := s.off
		switch {
		case c == '\n':
			s.off++
			s.newline()
		case c == ' ' || c == '\t' || c == '\r':
			s.off++
		case c == '#' || c == '/' && s.peek(1) == '/':
			for s.off < len(s.src) && s.src[s.off] != '\n' {
				s.off++
			}
			end := s.off
			for end > start && s.src[end-1] == '\r' {
				end--
			}
			s.toks = append(s.toks, lexer.Token{Type: tokComment, Value: s.text[start:end], Pos: s.pos(start)})
		case isLetter(c):
			for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
				s.off++
			}
			typ := tokIdent
			if keywords[string(s.src[start:s.off])] {
				typ = tokKeyword
			}
			s.emit(typ, start)
		case isDigit(c):
			s.number()
		case c == '"':
			s.str()
		case c == '`':
			s.rawStr()
		default:
			s.punct()
		}
	}
	s.toks = append(s.toks, lexer.Token{Type: tokEOF, Pos: s.pos(s.off)})
}

var twoCharOps = []string{"==", "!=", "<=", ">=", "=~", "!~", "&&", "||"}

func (s *scanner) punct() {
	start := s.off
	if s.off+1 < len(s.src) {
		two := string(s.src[s.off : s.off+2])
		for _, op := range twoCharOps {
			if two == op {
				s.off += 2
				s.emit(tokPunct, start)
				return
			}
		}
	}
	c := s.src[s.off]
	if strings.IndexByte("=<>+-*/%!()[]{},;", c) >= 0 {
		s.off++
		s.emit(tokPunct, start)
		return
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	s.off += size
	switch {
	case c == '&' || c == '|':
		s.errorf(s.pos(start), s.pos(s.off), "unexpected %q (use `%c%c` or `%s`)", c, c, c, map[byte]string{'&': "and", '|': "or"}[c])
	case r == utf8.RuneError && size == 1:
		s.errorf(s.pos(start), s.pos(s.off), "invalid UTF-8 byte 0x%02x", c)
	default:
		s.errorf(s.pos(start), s.pos(s.off), "unexpected character %q", r)
	}
}

// digits advances over decimal digits and reports whether there was one.
func (s *scanner) digits() bool {
	start := s.off
	for s.off < len(s.src) && isDigit(s.src[s.off]) {
		s.off++
	}
	return s.off > start
}

// number scans an int, float, duration (1h30m, 250ms, 1.5s) or size (64KiB).
func (s *scanner) number() {
	start := s.off
	s.digits()
	isFloat := false
	if s.peek(0) == '.' && isDigit(s.peek(1)) {
		s.off++
		s.digits()
		isFloat = true
	}
	if c := s.peek(0); (c == 'e' || c == 'E') && (isDigit(s.peek(1)) || (s.peek(1) == '+' || s.peek(1) == '-') && isDigit(s.peek(2))) {
		s.off += 2
		s.digits()
		s.emit(tokFloat, start)
		s.checkNoUnit(start)
		return
	}
	if !isLetter(s.peek(0)) {
		if isFloat {
			s.emit(tokFloat, start)
		} else {
			s.emit(tokInt, start)
		}
		return
	}
	// A unit follows: a duration (possibly compound, 1h30m) or a size.
	kind := lexer.TokenType(0)
	for {
		unitStart := s.off
		for s.off < len(s.src) && isLetter(s.src[s.off]) {
			s.off++
		}
		unit := string(s.src[unitStart:s.off])
		switch {
		case isDurationUnit(unit):
			if kind == tokSize {
				s.errorf(s.pos(start), s.pos(s.off), "cannot mix size and duration units in %q", string(s.src[start:s.off]))
			}
			kind = tokDuration
		case sizeUnits[unit] != 0:
			if kind != 0 {
				s.errorf(s.pos(start), s.pos(s.off), "a size takes a single unit: %q", string(s.src[start:s.off]))
			}
			kind = tokSize
		default:
			s.errorf(s.pos(unitStart), s.pos(s.off), "%s", unknownUnit(unit))
		}
		if !isDigit(s.peek(0)) {
			break
		}
		numStart := s.off
		s.digits()
		if s.peek(0) == '.' && isDigit(s.peek(1)) {
			s.off++
			s.digits()
		}
		if !isLetter(s.peek(0)) {
			s.errorf(s.pos(numStart), s.pos(s.off), "missing unit after %q in %q (use ms, s, m, h, d)", string(s.src[numStart:s.off]), string(s.src[start:s.off]))
			break
		}
	}
	if kind == 0 {
		kind = tokDuration
	}
	if kind == tokSize && isFloat {
		s.errorf(s.pos(start), s.pos(s.off), "a size must be a whole number: %q (use a smaller unit)", string(s.src[start:s.off]))
	}
	s.emit(kind, start)
}

func isDurationUnit(u string) bool {
	for _, d := range durationUnits {
		if u == d {
			return true
		}
	}
	return false
}

func unknownUnit(u string) string {
	lu := strings.ToLower(u)
	if strings.HasSuffix(lu, "b") || strings.HasSuffix(lu, "ib") || strings.HasSuffix(lu, "byte") || strings.HasSuffix(lu, "bytes") {
		return fmt.Sprintf("unknown size unit `%s` (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", u)
	}
	return fmt.Sprintf("unknown duration unit `%s` (use ms, s, m, h, d)", u)
}

// checkNoUnit reports letters glued to a float such as 1e3s.
func (s *scanner) checkNoUnit(start int) {
	if !isLetter(s.peek(0)) {
		return
	}
	unitStart := s.off
	for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
		s.off++
	}
	s.errorf(s.pos(unitStart), s.pos(s.off), "unexpected %q after number %q", string(s.src[unitStart:s.off]), string(s.src[start:unitStart]))
	s.toks[len(s.toks)-1].Value = s.text[start:s.off]
}

// str scans a "..." string and checks its escapes and interpolations.
func (s *scanner) str() {
	start := s.off
	s.off++
	for {
		if s.off >= len(s.src) || s.src[s.off] == '\n' {
			s.errorf(s.pos(start), s.pos(s.off), "unterminated string (a string ends with `\"` on the same line)")
			s.emit(tokString, start)
			return
		}
		c := s.src[s.off]
		switch c {
		case '"':
			s.off++
			s.emit(tokString, start)
			return
		case '\\':
			s.escape()
		case '$':
			if s.peek(1) == '{' {
				s.interpolation()
			} else {
				s.off++
			}
		default:
			r, size := utf8.DecodeRune(s.src[s.off:])
			if r == utf8.RuneError && size == 1 {
				s.errorf(s.pos(s.off), s.pos(s.off+1), "invalid UTF-8 byte 0x%02x in string", c)
			}
			s.off += size
		}
	}
}

func (s *scanner) escape() {
	start := s.off
	s.off++
	if s.off >= len(s.src) || s.src[s.off] == '\n' {
		return // reported as unterminated string
	}
	c := s.src[s.off]
	s.off++
	switch c {
	case 'n', 't', 'r', '\\', '"', '$':
		return
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		hexStart := s.off
		for i := 0; i < n && s.off < len(s.src) && isHex(s.src[s.off]); i++ {
			s.off++
		}
		if s.off-hexStart != n {
			s.errorf(s.pos(start), s.pos(s.off), "escape `\\%c` needs %d hexadecimal digits", c, n)
			return
		}
		if v := hexValue(s.src[hexStart:s.off]); v > utf8.MaxRune || 0xD800 <= v && v < 0xE000 {
			s.errorf(s.pos(start), s.pos(s.off), "escape %q is not a valid Unicode code point", string(s.src[start:s.off]))
		}
	default:
		r, size := utf8.DecodeRune(s.src[s.off-1:])
		s.off += size - 1
		s.errorf(s.pos(start), s.pos(s.off), "unknown escape `\\%c` in string (use \\n \\t \\r \\\\ \\\" \\$ \\uXXXX)", r)
	}
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func hexValue(b []byte) rune {
	var v rune
	for _, c := range b {
		v <<= 4
		switch {
		case isDigit(c):
			v |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			v |= rune(c-'a') + 10
		default:
			v |= rune(c-'A') + 10
		}
	}
	return v
}

// interpolation scans "${name}" inside a string.
func (s *scanner) interpolation() {
	start := s.off
	s.off += 2
	nameStart := s.off
	if isLetter(s.peek(0)) {
		for s.off < len(s.src) && (isLetter(s.src[s.off]) || isDigit(s.src[s.off])) {
			s.off++
		}
	}
	if s.peek(0) == '}' && s.off > nameStart {
		s.off++
		return
	}
	for s.off < len(s.src) && s.src[s.off] != '}' && s.src[s.off] != '"' && s.src[s.off] != '\n' {
		s.off++
	}
	if s.peek(0) == '}' {
		s.off++
		s.errorf(s.pos(start), s.pos(s.off), "invalid interpolation %q: `${…}` holds one name (write `\\$` for a literal `$`)", string(s.src[start:s.off]))
		return
	}
	s.errorf(s.pos(start), s.pos(s.off), "unterminated interpolation: `${` needs a closing `}` (write `\\$` for a literal `$`)")
}

// rawStr scans a `...` raw string, which may span lines.
func (s *scanner) rawStr() {
	start := s.off
	startPos := s.pos(start)
	startLine, startLineOff := s.line, s.lineOff
	s.off++
	for s.off < len(s.src) && s.src[s.off] != '`' {
		if s.src[s.off] == '\n' {
			s.off++
			s.newline()
			continue
		}
		s.off++
	}
	if s.off >= len(s.src) {
		s.errorf(startPos, s.pos(s.off), "unterminated raw string (a raw string ends with a backquote)")
		s.toks = append(s.toks, lexer.Token{Type: tokRawString, Value: s.text[start:s.off], Pos: startPos})
		return
	}
	s.off++
	s.toks = append(s.toks, lexer.Token{Type: tokRawString, Value: s.text[start:s.off], Pos: lexer.Position{
		Filename: s.filename, Offset: start, Line: startLine, Column: start - startLineOff + 1,
	}})
}

// definition adapts the scanner to participle's lexer.Definition.
type definition struct {
	symbols map[string]lexer.TokenType
}

func (d definition) Symbols() map[string]lexer.TokenType { return d.symbols }

func (d definition) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filename, err)
	}
	return d.LexBytes(filename, src)
}

func (definition) LexBytes(filename string, src []byte) (lexer.Lexer, error) {
	toks, errs := scan(filename, src)
	if len(errs) > 0 {
		e := errs[0]
		return nil, &lexer.Error{Msg: e.msg, Pos: e.pos}
	}
	return &sliceLexer{toks: toks}, nil
}

// sliceLexer hands out tokens scanned beforehand.
type sliceLexer struct {
	toks []lexer.Token
	i    int
}

func (l *sliceLexer) Next() (lexer.Token, error) {
	t := l.toks[l.i]
	if l.i < len(l.toks)-1 {
		l.i++
	}
	return t, nil
}
