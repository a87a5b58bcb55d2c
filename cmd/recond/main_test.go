package main

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRefusesUnknownPlanFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, []byte(`{"format": 99, "pipeline": "x", "sources": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", path, "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "plan format 99 is not supported") {
		t.Fatalf("exit %d, stderr %q; want 1 and a clear message", code, errb.String())
	}
}

func TestRecondFileWithErrorsShowsDiagnostics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.recon")
	if err := os.WriteFile(path, []byte("pipeline \"x\"\n\nsource s generator {\n  period = 1s\n  rate = \"fast\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", path, "--data", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "bad.recon:5:") || !strings.Contains(errb.String(), "does not compile") {
		t.Fatalf("exit %d, stderr %q; want 1 with file:line diagnostics", code, errb.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "-listen") {
		t.Fatalf("--help: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "recond ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"run"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "exactly one") {
		t.Fatalf("run without a plan: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"run", "x.json", "--log-format", "xml"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--log-format") {
		t.Fatalf("bad log format: exit %d, %q", code, errb.String())
	}
}

func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	t.Setenv("GOMEMLIMIT", "")
	var out, errb bytes.Buffer
	if code := run([]string{"run", "x.json", "--memory-limit", "lots"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--memory-limit") {
		t.Fatalf("bad limit: exit %d, %q", code, errb.String())
	}
	log := slog.New(slog.DiscardHandler)
	if err := setMemoryLimit(DefaultMemoryLimit, log); err != nil || debug.SetMemoryLimit(-1) != 256<<20 {
		t.Fatalf("default: %v, limit %d", err, debug.SetMemoryLimit(-1))
	}
	if err := setMemoryLimit("0", log); err != nil || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("0: %v, limit %d", err, debug.SetMemoryLimit(-1))
	}
	// GOMEMLIMIT wins: the flag changes nothing.
	t.Setenv("GOMEMLIMIT", "1GiB")
	if err := setMemoryLimit("64MiB", log); err != nil || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT: %v, limit %d", err, debug.SetMemoryLimit(-1))
	}
}
