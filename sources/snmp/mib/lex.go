package mib

import "fmt"

// tokKind classifies a token of SMI source.
type tokKind uint8

const (
	tokIdent  tokKind = iota // identifiers and keywords (OBJECT-TYPE, mib-2, ...)
	tokNumber                // unsigned or negative decimal
	tokString                // "..." (text dropped: only the kind matters)
	tokQuoted                // '0101'B, 'ff'H
	tokAssign                // ::=
	tokPunct                 // { } ( ) , ; . .. | [ ] and anything else single-character
)

type token struct {
	kind tokKind
	text string
	line int
}

func (t token) is(kind tokKind, text string) bool { return t.kind == kind && t.text == text }

// lex splits SMI source into tokens, dropping comments (-- to the end of
// the line or to the next --) and the contents of strings.
func lex(src []byte) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			i += 2
			for i < len(src) && src[i] != '\n' {
				if src[i] == '-' && i+1 < len(src) && src[i+1] == '-' {
					i += 2
					break
				}
				i++
			}
		case c == '"':
			start := line
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("line %d: unterminated string", start)
				}
				if src[i] == '"' {
					if i+1 < len(src) && src[i+1] == '"' { // "" is a quote inside
						i += 2
						continue
					}
					i++
					break
				}
				if src[i] == '\n' {
					line++
				}
				i++
			}
			toks = append(toks, token{kind: tokString, line: start})
		case c == '\'':
			start := line
			i++
			for i < len(src) && src[i] != '\'' {
				if src[i] == '\n' {
					line++
				}
				i++
			}
			if i >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated quoted value", start)
			}
			i++
			if i < len(src) && (src[i]|0x20 == 'b' || src[i]|0x20 == 'h') {
				i++
			}
			toks = append(toks, token{kind: tokQuoted, line: start})
		case isLetter(c):
			j := i + 1
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j]) || src[j] == '_' ||
				(src[j] == '-' && !(j+1 < len(src) && src[j+1] == '-'))) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: string(src[i:j]), line: line})
			i = j
		case isDigit(c) || (c == '-' && i+1 < len(src) && isDigit(src[i+1])):
			j := i + 1
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: string(src[i:j]), line: line})
			i = j
		case c == ':' && i+2 < len(src) && src[i+1] == ':' && src[i+2] == '=':
			toks = append(toks, token{kind: tokAssign, text: "::=", line: line})
			i += 3
		case c == '.' && i+1 < len(src) && src[i+1] == '.':
			toks = append(toks, token{kind: tokPunct, text: "..", line: line})
			i += 2
		default:
			toks = append(toks, token{kind: tokPunct, text: string(c), line: line})
			i++
		}
	}
	return toks, nil
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
