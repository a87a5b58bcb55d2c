package diag

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func rng(file string, line, col, off, n int) Range {
	return Range{Filename: file, Start: Pos{Offset: off, Line: line, Column: col}, End: Pos{Offset: off + n, Line: line, Column: col + n}}
}

func TestTextRendersSourceLineAndCaret(t *testing.T) {
	src := []byte("stream live {\n\tclone = hompage\n}\n")
	ds := Diagnostics{Errorf(rng("web.recon", 2, 10, 23, 7), `unknown source "hompage"; did you mean "homepage"?`)}
	ds[0].Detail = "declare it with `source hompage MODULE { … }`"
	var b bytes.Buffer
	if err := Text(&b, ds, map[string][]byte{"web.recon": src}); err != nil {
		t.Fatal(err)
	}
	want := "web.recon:2:10: unknown source \"hompage\"; did you mean \"homepage\"?\n" +
		"    declare it with `source hompage MODULE { … }`\n" +
		"    2 |     clone = hompage\n" +
		"      |             ^^^^^^^\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWarningPrefixAndNoSource(t *testing.T) {
	var b bytes.Buffer
	ds := Diagnostics{Warningf(rng("a.recon", 1, 1, 0, 1), "unused const")}
	if err := Text(&b, ds, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "a.recon:1:1: warning: unused const\n" {
		t.Errorf("got %q", got)
	}
}

func TestErrIsNilWithoutErrors(t *testing.T) {
	var ds Diagnostics
	if err := ds.Err(); err != nil {
		t.Fatalf("empty diagnostics give a non-nil error: %#v", err)
	}
	ds = ds.Append(Warningf(rng("a", 1, 1, 0, 1), "w"))
	if err := ds.Err(); err != nil {
		t.Fatalf("warnings only give a non-nil error: %#v", err)
	}
	ds = ds.Append(Errorf(rng("a", 2, 1, 5, 1), "boom"))
	err := ds.Err()
	var d *Diagnostic
	if err == nil || !errors.As(err, &d) || d.Summary != "boom" {
		t.Fatalf("Err() = %v, want the error diagnostic", err)
	}
}

func TestSortAndOnePerLine(t *testing.T) {
	ds := Diagnostics{
		Errorf(rng("b.recon", 1, 1, 0, 1), "b1"),
		Errorf(rng("a.recon", 3, 5, 20, 1), "a3 second"),
		Errorf(rng("a.recon", 3, 2, 17, 1), "a3 first"),
		Warningf(rng("a.recon", 3, 9, 24, 1), "a3 warning"),
		Errorf(rng("a.recon", 1, 7, 6, 1), "a1"),
	}
	ds = ds.RemoveMultiples()
	var got []string
	for _, d := range ds {
		got = append(got, d.Summary)
	}
	want := []string{"a1", "a3 first", "a3 warning", "b1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, nil); err != nil || b.String() != "[]\n" {
		t.Fatalf("no diagnostics: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := JSON(&b, Diagnostics{Errorf(rng("x.recon", 4, 3, 40, 5), "bad")}); err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Severity, Summary string
		Range             struct {
			Filename   string
			Start, End struct{ Line, Column, Offset int }
		}
	}
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Severity != "error" || out[0].Range.Filename != "x.recon" ||
		out[0].Range.Start.Line != 4 || out[0].Range.Start.Column != 3 || out[0].Range.End.Offset != 45 {
		t.Errorf("got %+v", out)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"homepage", "home", "gateway", "resolver"}
	for name, want := range map[string]string{
		"hompage":  "homepage",
		"homepag":  "homepage",
		"gatewya":  "gateway",
		"x":        "",
		"resolvr":  "resolver",
		"unrelate": "",
		"homepage": "",
	} {
		if got := Suggest(name, cands); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", name, got, want)
		}
	}
	// Ties are broken the same way whatever the order.
	if a, b := Suggest("ab", []string{"ac", "ad"}), Suggest("ab", []string{"ad", "ac"}); a != b || a != "ac" {
		t.Errorf("tie: %q / %q", a, b)
	}
}

func TestTextAtEndOfFile(t *testing.T) {
	src := []byte("const x = (1\n")
	var b bytes.Buffer
	if err := Text(&b, Diagnostics{Errorf(rng("e.recon", 2, 1, len(src), 0), "unexpected end of file")}, map[string][]byte{"e.recon": src}); err != nil {
		t.Fatal(err)
	}
	want := "e.recon:2:1: unexpected end of file\n    2 |\n      | ^\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
