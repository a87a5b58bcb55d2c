package dsl

import (
	"os"
	"testing"
)

func TestParseSketch(t *testing.T) {
	src, err := os.ReadFile("testdata/sketch.recon")
	if err != nil {
		t.Fatal(err)
	}
	f, ds := Parse("sketch.recon", src)
	if ds.HasErrors() {
		t.Fatalf("parse: %v", ds.Err())
	}
	if len(f.Decls) == 0 {
		t.Fatal("no declarations")
	}
}
