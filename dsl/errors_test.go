package dsl

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/reconmon/recon/diag"
)

// errorComment is an expected error written in a test file:
// `# ERROR line:col "message regexp"`. It is found by scanning the text, so
// that it also works where the lexer would not see a comment (inside an
// unterminated string).
var errorComment = regexp.MustCompile(`# ERROR (\d+):(\d+) ("(?:[^"\\]|\\.)*")`)

type expectedError struct {
	line, col int
	re        *regexp.Regexp
	seen      bool
}

func TestSyntaxErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.recon")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("want at least 15 error cases, have %d", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []*expectedError
			for _, m := range errorComment.FindAllSubmatch(src, -1) {
				line, _ := strconv.Atoi(string(m[1]))
				col, _ := strconv.Atoi(string(m[2]))
				pattern, err := strconv.Unquote(string(m[3]))
				if err != nil {
					t.Fatalf("bad ERROR comment %s: %v", m[0], err)
				}
				want = append(want, &expectedError{line: line, col: col, re: regexp.MustCompile(pattern)})
			}
			if len(want) == 0 {
				t.Fatal("no # ERROR comment in the file")
			}
			f, ds := Parse(file, src)
			if f != nil {
				t.Errorf("Parse returned a file along with errors")
			}
			for _, d := range ds {
				ok := false
				for _, w := range want {
					if !w.seen && d.Subject != nil && d.Subject.Start.Line == w.line && d.Subject.Start.Column == w.col && w.re.MatchString(d.Summary) {
						w.seen, ok = true, true
						break
					}
				}
				if !ok {
					t.Errorf("unexpected error %s", d.Error())
				}
				if d.Subject == nil || d.Subject.Filename != file || d.Subject.End.Offset < d.Subject.Start.Offset {
					t.Errorf("error %q has a bad range %+v", d.Summary, d.Subject)
				}
			}
			for _, w := range want {
				if !w.seen {
					t.Errorf("missing error %d:%d matching %q", w.line, w.col, w.re)
				}
			}
		})
	}
}

func TestErrorsAreSortedOnePerLine(t *testing.T) {
	src := "defaults {\n  period = 5x  timeout = 7y\n  a = \"\\q\"\n}\nconst c = 3zz\n"
	_, ds := Parse("x.recon", []byte(src))
	var got []string
	for _, d := range ds {
		got = append(got, d.Error())
	}
	want := []string{
		"x.recon:2:13: unknown duration unit `x` (use ms, s, m, h, d)",
		"x.recon:3:8: unknown escape `\\q` in string (use \\n \\t \\r \\\\ \\\" \\$ \\uXXXX)",
		"x.recon:5:12: unknown duration unit `zz` (use ms, s, m, h, d)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestErrorRendering shows a syntax error the way reconc prints it: the
// message, the numbered source line and a caret under the offending token.
func TestErrorRendering(t *testing.T) {
	src := []byte("source ssh tcp {\n\tport 22\n}\n")
	_, ds := Parse("web.recon", src)
	var b strings.Builder
	if err := diag.Text(&b, ds, map[string][]byte{"web.recon": src}); err != nil {
		t.Fatal(err)
	}
	want := "web.recon:2:7: expected `=` after attribute name `port`, found `22`\n" +
		"    2 |     port 22\n" +
		"      |          ^^\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
