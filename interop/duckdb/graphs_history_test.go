package duckdb_test

import (
	"context"
	"database/sql"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/history/historytest"
)

// graphArchive archives, over 30 hours and in several files per hour, the
// series under test (web/duration at two targets, every 7 s, with nulls, a
// NaN and irregular values) among neighbours, and returns its directory.
func graphArchive(t *testing.T, start time.Time) string {
	t.Helper()
	dir := t.TempDir()
	w := historytest.NewWriter(dir)
	var batches []arrow.RecordBatch
	var pts []historytest.Point
	x := uint64(12345)
	rnd := func() float64 { // xorshift: deterministic, irregular values
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return float64(x%100000) / 997
	}
	for i := range 30 * 3600 / 7 {
		ts := start.Add(time.Duration(i) * 7 * time.Second).UnixNano()
		pts = append(pts,
			historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts + int64(i%1000), Value: rnd(), Null: i%97 == 3},
			historytest.Point{Source: "web", Metric: "duration", Target: "b", Ts: ts + 5, Value: -rnd()},
			historytest.Point{Source: "web", Metric: "code", Target: "a", Ts: ts, Value: 200},
			historytest.Point{Source: "api", Metric: "duration", Target: "a", Ts: ts, Value: rnd()},
			historytest.Point{Source: "zeta", Metric: "duration", Target: "a", Ts: ts, Value: rnd()},
		)
		if i == 4000 {
			pts = append(pts, historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts + 1, Value: math.NaN()})
		}
		if len(pts) >= 5000 {
			batches = append(batches, historytest.Batch(pts))
			pts = pts[:0]
		}
		if len(batches) == 3 { // archive in parts: hours at the seams get several files
			if err := w.Write(batches); err != nil {
				t.Fatal(err)
			}
			batches = nil
		}
	}
	batches = append(batches, historytest.Batch(pts))
	if err := w.Write(batches); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestGraphHistoryMatchesDuckDB checks the history API against DuckDB on
// the same files: raw points exactly as archived when they fit, and the
// same min, max, count (and avg up to rounding) per bucket otherwise.
func TestGraphHistoryMatchesDuckDB(t *testing.T) {
	start := time.Date(2026, 5, 31, 20, 0, 0, 0, time.UTC)
	dir := graphArchive(t, start)
	db := openDuckDB(t)
	glob := filepath.Join(dir, "samples", "**", "*.parquet")
	ctx := context.Background()

	cases := []graphQuery{
		{"raw within an hour", "a", start.Add(10 * time.Minute), start.Add(40 * time.Minute), 1000, "web", "duration"},
		{"raw across midnight", "b", start.Add(3*time.Hour + 50*time.Minute), start.Add(4*time.Hour + 20*time.Minute), 500, "web", "duration"},
		{"buckets over 30 hours", "a", start.Add(-time.Hour), start.Add(31 * time.Hour), 700, "web", "duration"},
		{"buckets, odd width", "b", start.Add(17 * time.Second), start.Add(29*time.Hour + 3*time.Second), 333, "web", "duration"},
		{"buckets, one fewer than points", "a", start.Add(time.Hour), start.Add(time.Hour + 7*time.Second*514), 513, "web", "duration"},
		// Buckets wider than an hour: runs of a file within one bucket
		// are added as their stored summaries.
		{"buckets of four hours", "a", start.Add(-time.Hour), start.Add(31 * time.Hour), 8, "web", "duration"},
		{"wide buckets, odd width", "b", start.Add(-17 * time.Minute), start.Add(30*time.Hour + 29*time.Minute), 7, "web", "duration"},
		// Other series of the same files: from the stored index, looked
		// up after web/duration in the same Archive.
		{"another metric, raw", "a", start.Add(5 * time.Hour), start.Add(5*time.Hour + 50*time.Minute), 1000, "web", "code"},
		{"another source, buckets", "a", start.Add(-time.Hour), start.Add(31 * time.Hour), 300, "api", "duration"},
		{"another source, wide buckets", "a", start.Add(-time.Hour), start.Add(31 * time.Hour), 5, "api", "duration"},
	}
	// The first Archive reads the Parquet files and stores each day's
	// index file; the second (a restarted recond) answers from those.
	for _, pass := range []string{"first read", "from the stored index"} {
		arch, err := history.New(history.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(pass+"/"+c.name, func(t *testing.T) {
				graphCase(t, ctx, db, arch, glob, c)
			})
		}
	}
}

// graphQuery is one query of a series.
type graphQuery struct {
	name           string
	target         string
	from, to       time.Time
	points         int
	source, metric string
}

// graphWhere selects a series' finite points in a range, as the history
// API does.
const graphWhere = `FROM read_parquet(?, hive_partitioning = true)
		WHERE source = ? AND metric = ? AND target = ? AND epoch_ns(ts) >= ? AND epoch_ns(ts) < ?
		AND value IS NOT NULL AND isfinite(value)`

// graphCase checks one history query against DuckDB's answer on the same
// files.
func graphCase(t *testing.T, ctx context.Context, db *sql.DB, arch *history.Archive, glob string, c graphQuery) {
	where := graphWhere
	res, err := arch.Series(ctx, history.Query{Source: c.source, Metric: c.metric, Target: c.target, From: c.from, To: c.to, Points: c.points})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 {
		t.Fatalf("%d series, want 1", len(res.Series))
	}
	s := res.Series[0]
	from, to := c.from.UnixNano(), c.to.UnixNano()
	var total int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) "+where, glob, c.source, c.metric, c.target, from, to).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if s.Count != total {
		t.Fatalf("history counts %d points, DuckDB %d", s.Count, total)
	}
	if total <= int64(c.points) {
		if !s.Raw {
			t.Fatalf("%d points fit in %d but came bucketed", total, c.points)
		}
		rows, err := db.QueryContext(ctx, "SELECT epoch_ns(ts), value "+where+" ORDER BY ts", glob, c.source, c.metric, c.target, from, to)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ts []int64
		var vs []float64
		for rows.Next() {
			var tv int64
			var v float64
			if err := rows.Scan(&tv, &v); err != nil {
				t.Fatal(err)
			}
			ts, vs = append(ts, tv), append(vs, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		// DuckDB reads the archive's UTC-adjusted nanosecond
		// timestamps as TIMESTAMPTZ, in microseconds: compare
		// times at that precision (the ranges start on whole
		// seconds, so no point crosses a range edge by it).
		got := make([]int64, len(s.T))
		for i, v := range s.T {
			got[i] = v / 1000 * 1000
		}
		if !slices.Equal(got, ts) || !slices.Equal(s.V, vs) {
			for i := range min(len(ts), len(s.T)) {
				if got[i] != ts[i] || s.V[i] != vs[i] {
					t.Fatalf("raw point %d: history (%d, %v), DuckDB (%d, %v); %d vs %d points", i, got[i], s.V[i], ts[i], vs[i], len(s.T), len(ts))
				}
			}
			t.Fatalf("raw points differ from DuckDB's (%d vs %d points)", len(s.T), len(ts))
		}
		return
	}
	if s.Raw {
		t.Fatalf("%d points do not fit in %d but came raw", total, c.points)
	}
	rows, err := db.QueryContext(ctx, `SELECT CAST((CAST(epoch_ns(ts) AS HUGEINT) - ?) * ? // (? - ?) AS BIGINT) AS b,
				min(value), max(value), avg(value), count(*) `+where+` GROUP BY b ORDER BY b`,
		from, c.points, to, from, glob, c.source, c.metric, c.target, from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	width := float64(to-from) / float64(c.points)
	for rows.Next() {
		var b, n int64
		var lo, hi, avg float64
		if err := rows.Scan(&b, &lo, &hi, &avg, &n); err != nil {
			t.Fatal(err)
		}
		if i >= len(s.T) {
			t.Fatalf("DuckDB has more buckets than the %d returned", len(s.T))
		}
		got := int64(math.Round(float64(s.T[i]-from) / width))
		if got != b || s.Min[i] != lo || s.Max[i] != hi || s.N[i] != n || math.Abs(s.Avg[i]-avg) > 1e-9*math.Max(1, math.Abs(avg)) {
			t.Fatalf("bucket %d: history (bucket %d) min %v max %v avg %v n %d; DuckDB min %v max %v avg %v n %d",
				b, got, s.Min[i], s.Max[i], s.Avg[i], s.N[i], lo, hi, avg, n)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(s.T) {
		t.Fatalf("history returned %d buckets, DuckDB %d", len(s.T), i)
	}
}

// BenchmarkGraphYearDuckDB is DuckDB's time for the aggregation that the
// history API's BenchmarkYearSeries measures (runtime/history): the year
// series of the benchmark archive at 2,000 min/max/avg/count buckets, on
// the same files. Set RECON_BENCH_ARCHIVE to the directory both use.
func BenchmarkGraphYearDuckDB(b *testing.B) {
	dir := os.Getenv("RECON_BENCH_ARCHIVE")
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := historytest.BenchArchive(dir); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	from, to := historytest.YearStart.UnixNano(), historytest.YearEnd.UnixNano()
	const points = 2000
	query := `SELECT CAST((CAST(epoch_ns(ts) AS HUGEINT) - ?) * ? // (? - ?) AS BIGINT) AS b,
			min(value), max(value), avg(value), count(*)
		FROM read_parquet(?, hive_partitioning = true)
		WHERE source = ? AND metric = ? AND target = ? AND epoch_ns(ts) >= ? AND epoch_ns(ts) < ?
			AND value IS NOT NULL AND isfinite(value)
		GROUP BY b ORDER BY b`
	glob := filepath.Join(dir, "samples", "**", "*.parquet")
	for b.Loop() {
		rows, err := db.QueryContext(context.Background(), query, from, points, to, from, glob,
			historytest.YearSource, historytest.BenchMetric, historytest.BenchTarget, from, to)
		if err != nil {
			b.Fatal(err)
		}
		buckets, total := 0, int64(0)
		for rows.Next() {
			var bk, n int64
			var lo, hi, avg float64
			if err := rows.Scan(&bk, &lo, &hi, &avg, &n); err != nil {
				b.Fatal(err)
			}
			buckets++
			total += n
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if buckets != points || total != 525600 {
			b.Fatalf("DuckDB: %d buckets of %d points, want %d of 525600", buckets, total, points)
		}
	}
}
