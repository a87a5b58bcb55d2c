package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseScript: a test script (reconc test reads user files) never
// panics the parser.
func FuzzParseScript(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("-- r.json --\n{}\n-- script --\nseries a b start=1s step=-1s: 1+2x3 _ 4x\nexpect 1s r ok previous=x value=y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseScript("fuzz.txtar", data)
		if err == nil && s == nil {
			t.Fatal("nil script without an error")
		}
	})
}

// FuzzRestore: a damaged state file is refused with an error, never a
// panic, and never half applied.
func FuzzRestore(f *testing.F) {
	p := benchPlan(2)
	dir := f.TempDir()
	e, err := New(Options{Plan: p, DataDir: dir, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	rec := benchBatch(2, 3, 0)
	defer rec.Release()
	if err := e.Ingest(rec); err != nil {
		f.Fatal(err)
	}
	if err := e.Save(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, StateFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := New(Options{Plan: p, DataDir: d, Logger: discardLogger()})
		if err != nil {
			return
		}
		// A state that loads must be usable.
		if err := e.Ingest(rec); err != nil {
			t.Fatal(err)
		}
		e.Eval(e.maxTime())
	})
}
