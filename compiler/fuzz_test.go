package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCompile compiles arbitrary bytes: no input may panic, an error-free
// result must come with a plan that marshals, and compiling twice must give
// the same plan.
func FuzzCompile(f *testing.F) {
	for _, pattern := range []string{"testdata/errors/*.recon", "testdata/plans/*.recon", "../examples/*.recon"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	opts := Options{
		Registry:  testRegistry(),
		LookupEnv: func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok },
		// Includes resolve to one fixed file, so that include paths are
		// exercised without touching the file system.
		ReadFile: func(name string) ([]byte, error) {
			if filepath.Base(name) == "inc.recon" {
				return []byte("source included tcp { target = \"127.0.0.1\"  port = 1 }\n"), nil
			}
			return nil, errors.New("not found")
		},
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, ds := CompileSource("fuzz.recon", src, opts)
		if ds.HasErrors() {
			if p != nil {
				t.Fatal("plan returned with errors")
			}
			for _, d := range ds {
				if d.Subject == nil {
					t.Fatalf("diagnostic without a position: %v", d)
				}
			}
			return
		}
		a, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := CompileSource("fuzz.recon", src, opts)
		b, err := p2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			t.Fatal("compiling twice gave different plans")
		}
	})
}
