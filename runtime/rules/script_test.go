package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScripts runs every testdata/*.txtar scenario: samples at times in,
// expected alert transitions out (format: docs/rules.md).
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseScript(f, data)
			if err != nil {
				t.Fatal(err)
			}
			report, err := s.Run(loadRules, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if report != "" {
				t.Errorf("\n%s", report)
			}
		})
	}
}
