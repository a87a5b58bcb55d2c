package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// reconc is the binary under test, built once by TestMain.
var reconc string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reconc-test")
	if err != nil {
		panic(err)
	}
	reconc = filepath.Join(dir, "reconc")
	out, err := exec.Command("go", "build", "-o", reconc, ".").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build reconc: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runReconc runs the binary in dir and returns its exit status and output.
func runReconc(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(reconc, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RECON_CLI_TEST=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run reconc %v: %v", args, err)
	return 0, "", ""
}

func writeFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodSrc = `pipeline "cli"

source ssh tcp {
  target = "127.0.0.1"
  port   = 22
}
`

const badSrc = `pipeline "cli"

source ssh tcp {
  target = "127.0.0.1"
  prot   = 22
}

stream live { clone = shh }
`

func TestCompile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "good.recon", goodSrc)
	code, stdout, stderr := runReconc(t, dir, "compile", "good.recon")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var plan struct {
		Format   int    `json:"format"`
		Hash     string `json:"hash"`
		Pipeline string `json:"pipeline"`
		Sinks    []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("stdout is not a plan: %v\n%s", err, stdout)
	}
	if plan.Format != 1 || !strings.HasPrefix(plan.Hash, "sha256:") || plan.Pipeline != "cli" || len(plan.Sinks) != 1 {
		t.Errorf("plan %+v", plan)
	}
	// Flags after the file, and -o: the same bytes as on stdout.
	code, out2, stderr := runReconc(t, dir, "compile", "good.recon", "-o", "plan.json")
	if code != 0 || out2 != "" || stderr != "" {
		t.Fatalf("compile -o: exit %d stdout %q stderr %q", code, out2, stderr)
	}
	written, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != stdout {
		t.Error("-o wrote different bytes than stdout")
	}
}

func TestCompileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.recon", badSrc)
	code, stdout, stderr := runReconc(t, dir, "compile", "bad.recon", "-o", "plan.json")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := `bad.recon:5:3: unknown attribute "prot" of tcp; did you mean "port"?
    5 |   prot   = 22
      |   ^^^^
bad.recon:8:23: unknown source "shh"; did you mean "ssh"?
    8 | stream live { clone = shh }
      |                       ^^^
`
	if stderr != want || stdout != "" {
		t.Errorf("stderr:\n%s\nwant:\n%s\nstdout %q", stderr, want, stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "plan.json")); !os.IsNotExist(err) {
		t.Error("a plan was written despite errors")
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "good.recon", goodSrc)
	writeFile(t, dir, "bad.recon", badSrc)
	if code, stdout, stderr := runReconc(t, dir, "check", "good.recon"); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("check good: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	code, _, stderr := runReconc(t, dir, "check", "good.recon", "bad.recon")
	if code != 1 || strings.Count(stderr, "bad.recon:") != 2 {
		t.Errorf("check good bad: exit %d stderr:\n%s", code, stderr)
	}
	code, stdout, _ := runReconc(t, dir, "check", "--format", "json", "bad.recon")
	var ds []struct {
		Severity string
		Summary  string
		Range    struct {
			Filename string
			Start    struct{ Line, Column int }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &ds); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	if code != 1 || len(ds) != 2 || ds[0].Severity != "error" || ds[0].Range.Filename != "bad.recon" ||
		ds[0].Range.Start.Line != 5 || ds[0].Range.Start.Column != 3 || !strings.Contains(ds[1].Summary, `"shh"`) {
		t.Errorf("check --format json: exit %d, %+v", code, ds)
	}
	if code, stdout, _ := runReconc(t, dir, "check", "--format=json", "good.recon"); code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("json for a good file: exit %d %q", code, stdout)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := "pipeline \"cli\"\nsource ssh tcp { target = \"127.0.0.1\"  port = 22 }  # the ssh port\n"
	path := writeFile(t, dir, "messy.recon", messy)
	code, formatted, stderr := runReconc(t, dir, "fmt", "messy.recon")
	if code != 0 || stderr != "" || formatted == messy || !strings.Contains(formatted, "# the ssh port") {
		t.Fatalf("fmt: exit %d stderr %q output:\n%s", code, stderr, formatted)
	}
	code, diff, _ := runReconc(t, dir, "fmt", "-d", "messy.recon")
	if code != 0 || !strings.HasPrefix(diff, "--- messy.recon.orig\n+++ messy.recon\n@@ ") {
		t.Errorf("fmt -d: exit %d\n%s", code, diff)
	}
	if code, _, _ := runReconc(t, dir, "fmt", "-w", "messy.recon"); code != 0 {
		t.Fatalf("fmt -w: exit %d", code)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != formatted {
		t.Errorf("fmt -w wrote:\n%s\nwant:\n%s", got, formatted)
	}
	if code, diff, _ := runReconc(t, dir, "fmt", "-d", "messy.recon"); code != 0 || diff != "" {
		t.Errorf("formatted file still differs: exit %d\n%s", code, diff)
	}
	writeFile(t, dir, "broken.recon", "source ssh tcp {\n  port 22\n}\n")
	code, stdout, stderr := runReconc(t, dir, "fmt", "-w", "broken.recon")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "broken.recon:2:") {
		t.Errorf("syntax error: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
}

// TestExamplesFormatted runs the binary over the examples: each one checks
// cleanly and is already in canonical form.
func TestExamplesFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.recon"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	args := append([]string{"check"}, files...)
	if code, _, stderr := runReconc(t, ".", args...); code != 0 || stderr != "" {
		t.Errorf("check examples: exit %d\n%s", code, stderr)
	}
	args = append([]string{"fmt", "-d"}, files...)
	if code, stdout, stderr := runReconc(t, ".", args...); code != 0 || stdout != "" || stderr != "" {
		t.Errorf("fmt -d examples: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		out  string // expected in stdout+stderr
	}{
		{nil, 2, "Commands:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"--help"}, 0, "reconc compile examples/quickstart.recon -o plan.json"},
		{[]string{"help", "fmt"}, 0, "-w"},
		{[]string{"help", "help"}, 0, "reconc help [COMMAND]"},
		{[]string{"help", "nope"}, 2, `unknown command "nope"`},
		{[]string{"compile"}, 2, "reconc compile FILE"},
		{[]string{"compile", "a.recon", "b.recon"}, 2, "reconc compile FILE"},
		{[]string{"compile", "-x", "a.recon"}, 2, "flag provided but not defined"},
		{[]string{"compile", "-h"}, 0, "Examples:"},
		{[]string{"check"}, 2, "reconc check"},
		{[]string{"check", "--format", "xml", "a.recon"}, 2, "--format"},
		{[]string{"fmt", "-w", "-d", "a.recon"}, 2, "reconc fmt"},
		{[]string{"compile", "missing.recon"}, 1, "cannot read missing.recon"},
	} {
		code, stdout, stderr := runReconc(t, dir, c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.out) {
			t.Errorf("reconc %q: exit %d (want %d), output lacks %q:\n%s%s", c.args, code, c.code, c.out, stdout, stderr)
		}
	}
}
