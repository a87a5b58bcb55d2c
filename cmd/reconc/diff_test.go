package main

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n"
	new := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\nn\n"
	want := `--- x.recon.orig
+++ x.recon
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -11,3 +11,4 @@
 k
 l
 m
+n
`
	if got := unifiedDiff("x.recon", []byte(old), []byte(new)); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if got := unifiedDiff("x", []byte(old), []byte(old)); got != "" {
		t.Errorf("equal inputs gave a diff:\n%s", got)
	}
}

// TestDiffLinesRebuildsBoth checks on many small edits that the script
// turns old into new and keeps every line of both.
func TestDiffLinesRebuildsBoth(t *testing.T) {
	cases := [][2]string{
		{"", "x\n"}, {"x\n", ""}, {"a\nb\n", "b\na\n"}, {"a\nb\nc\n", "c\nb\na\n"},
		{"x", "x\n"}, {"1\n2\n3\n4\n", "0\n1\n3\n5\n"},
		{strings.Repeat("l\n", 50), strings.Repeat("l\n", 25) + "m\n" + strings.Repeat("l\n", 25)},
	}
	for _, c := range cases {
		a, b := splitLines(c[0]), splitLines(c[1])
		var gotA, gotB strings.Builder
		for _, op := range diffLines(a, b) {
			if op.kind != '+' {
				gotA.WriteString(op.text)
			}
			if op.kind != '-' {
				gotB.WriteString(op.text)
			}
		}
		if gotA.String() != c[0] || gotB.String() != c[1] {
			t.Errorf("diff(%q, %q) rebuilt %q, %q", c[0], c[1], gotA.String(), gotB.String())
		}
	}
}
