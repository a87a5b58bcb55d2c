package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	script, err := filepath.Abs("../../runtime/rules/testdata/for_clear.txtar")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runReconc(t, t.TempDir(), "test", script)
	if code != 0 || !strings.HasPrefix(out, "PASS ") {
		t.Fatalf("reconc test: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, _ := runReconc(t, t.TempDir(), "test"); code != exitUsage {
		t.Fatalf("reconc test without files: exit %d, want %d", code, exitUsage)
	}
}

func TestImportNagiosCompiles(t *testing.T) {
	site, err := filepath.Abs("../../sources/nagios/nagiosimport/testdata/site")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "site.recon")
	code, _, errOut := runReconc(t, dir, "import", "nagios", "-o", out, filepath.Join(site, "nagios.cfg"))
	if code != 0 {
		t.Fatalf("reconc import nagios: exit %d: %s", code, errOut)
	}
	code, _, errOut = runReconc(t, dir, "check", out)
	if code != 0 {
		t.Fatalf("the imported file does not check: exit %d: %s", code, errOut)
	}
	if code, _, _ := runReconc(t, dir, "import", "zabbix", "x"); code != exitUsage {
		t.Fatalf("reconc import zabbix: exit %d, want usage", code)
	}
}

func TestArchiveCompactEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "samples"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runReconc(t, dir, "archive", "compact", dir)
	if code != 0 || !strings.Contains(out, "compacted 0 partitions") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, errOut := runReconc(t, dir, "archive", "compact", filepath.Join(dir, "missing")); code != exitDiag || !strings.Contains(errOut, "missing") {
		t.Fatalf("missing dir: exit %d: %s", code, errOut)
	}
	if code, _, _ := runReconc(t, dir, "archive", "prune", dir); code != exitUsage {
		t.Fatalf("archive prune: exit %d, want usage (there is no prune)", code)
	}
}
