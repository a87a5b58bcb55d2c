package dsl

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the printer tests")

func mustParse(t testing.TB, name string, src []byte) *File {
	t.Helper()
	f, ds := Parse(name, src)
	if ds.HasErrors() {
		t.Fatalf("parse %s: %v", name, ds.Err())
	}
	return f
}

// TestFormatGolden formats testdata/fmt/*.input and compares with the
// .golden files (go test -run TestFormatGolden -update rewrites them).
func TestFormatGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/fmt/*.input")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := Format(mustParse(t, in, src))
			golden := strings.TrimSuffix(in, ".input") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Format(%s) differs from %s:\n--- got\n%s\n--- want\n%s", in, golden, got, want)
			}
		})
	}
}

// recoFiles lists every .recon file (and printer input) of the examples
// and of testdata that parses.
func reconFiles(t *testing.T) []string {
	var files []string
	for _, root := range []string{"../examples", "testdata"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && path == root {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() && d.Name() == "errors" {
				return filepath.SkipDir
			}
			if !d.IsDir() && (strings.HasSuffix(path, ".recon") || strings.HasSuffix(path, ".input") || strings.HasSuffix(path, ".golden")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// TestFormatIdempotentKeepsComments formats every file twice: the second
// pass changes nothing, the output parses to the same declarations, and
// every comment's text is still there.
func TestFormatIdempotentKeepsComments(t *testing.T) {
	files := reconFiles(t)
	if len(files) < 3 {
		t.Fatalf("only %d files to format", len(files))
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f := mustParse(t, file, src)
			once := Format(f)
			f2 := mustParse(t, file+" (formatted)", once)
			twice := Format(f2)
			if !bytes.Equal(once, twice) {
				t.Errorf("not idempotent:\n--- once\n%s\n--- twice\n%s", once, twice)
			}
			if len(f2.Decls) != len(f.Decls) {
				t.Errorf("formatting changed the number of declarations: %d → %d", len(f.Decls), len(f2.Decls))
			}
			if len(f2.Comments) != len(f.Comments) {
				t.Errorf("formatting changed the number of comments: %d → %d", len(f.Comments), len(f2.Comments))
			}
			for _, c := range f.Comments {
				if !bytes.Contains(once, []byte(c.Text)) {
					t.Errorf("comment %q lost", c.Text)
				}
			}
		})
	}
}
