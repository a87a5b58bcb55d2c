// Package duckdb holds the interop tests that read Recon's archive with
// DuckDB (duckdb-go), the way users query it. It is a nested module so that
// the product does not link DuckDB; it has no non-test code.
package duckdb
