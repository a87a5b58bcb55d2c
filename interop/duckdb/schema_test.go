package duckdb

import (
	"database/sql"
	"testing"
)

// contractColumns is the samples table of design §3.1 as DuckDB types it:
// (name, type) in contract order, without the hive columns.
func contractColumns() [][2]string {
	return [][2]string{
		{"ts", "TIMESTAMP WITH TIME ZONE"}, {"pipeline", "VARCHAR"}, {"source", "VARCHAR"},
		{"module", "VARCHAR"}, {"target", "VARCHAR"}, {"metric", "VARCHAR"}, {"value", "DOUBLE"},
		{"text", "VARCHAR"}, {"unit", "VARCHAR"}, {"labels", "MAP(VARCHAR, VARCHAR)"}, {"node", "VARCHAR"},
	}
}

// describeColumns returns the (name, type) pairs DuckDB's DESCRIBE gives
// for a SELECT * over from.
func describeColumns(t *testing.T, db *sql.DB, from string) [][2]string {
	t.Helper()
	rows, err := db.Query("DESCRIBE SELECT * FROM " + from)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols [][2]string
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, [2]string{name, typ})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols
}
