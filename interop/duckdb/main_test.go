package duckdb

import (
	"os"
	"testing"
)

// TestMain removes what the tests build once for the whole package (the
// recond binary) after they ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if recondBinDir != "" {
		os.RemoveAll(recondBinDir)
	}
	os.Exit(code)
}
