package dsl

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; whatever parses formats to text that
// parses again, formats to the same bytes and keeps every comment.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.recon", "testdata/*/*.input", "../examples/*.recon"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		file, ds := Parse("fuzz.recon", src)
		if file == nil {
			if !ds.HasErrors() {
				t.Fatal("no file and no error")
			}
			for _, d := range ds {
				if d.Subject == nil || d.Subject.Start.Offset > len(src) || d.Subject.End.Offset < d.Subject.Start.Offset {
					t.Fatalf("diagnostic %q has a bad range %+v", d.Summary, d.Subject)
				}
			}
			return
		}
		once := Format(file)
		file2, ds := Parse("fuzz.recon", once)
		if ds.HasErrors() {
			t.Fatalf("formatted output does not parse: %v\n--- input\n%s\n--- output\n%s", ds.Err(), src, once)
		}
		twice := Format(file2)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent\n--- input\n%q\n--- once\n%s\n--- twice\n%s", src, once, twice)
		}
		if len(file2.Comments) != len(file.Comments) {
			t.Fatalf("comments: %d → %d\n--- input\n%q\n--- once\n%s", len(file.Comments), len(file2.Comments), src, once)
		}
	})
}
