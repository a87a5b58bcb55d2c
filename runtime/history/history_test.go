package history_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/history/historytest"
	"github.com/reconmon/recon/sinks/parquet"
)

var t0 = time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)

// fixture archives, over six hours from t0 (crossing midnight): the series
// web/duration at two targets every 10 s, and web/code plus db/duration as
// neighbours; one point in 50 of web/duration@a is null and one is NaN.
func fixture(t *testing.T) (string, []historytest.Point) {
	t.Helper()
	dir := t.TempDir()
	var all []historytest.Point
	var batches []arrow.RecordBatch
	for h := range 6 {
		var pts []historytest.Point
		for i := range 360 {
			ts := t0.Add(time.Duration(h)*time.Hour + time.Duration(i)*10*time.Second).UnixNano()
			n := h*360 + i
			pts = append(pts,
				historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts + 1, Value: math.Sin(float64(n) / 30), Null: n%50 == 7},
				historytest.Point{Source: "web", Metric: "duration", Target: "b", Ts: ts + 2, Value: float64(n % 17)},
				historytest.Point{Source: "web", Metric: "code", Target: "a", Ts: ts, Value: 200},
				historytest.Point{Source: "db", Metric: "duration", Target: "a", Ts: ts, Value: -1},
			)
			if n == 100 {
				pts = append(pts, historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts + 3, Value: math.NaN()})
			}
		}
		// Two batches per hour, so an hour partition may hold several files.
		batches = append(batches, historytest.Batch(pts[:len(pts)/2]), historytest.Batch(pts[len(pts)/2:]))
		all = append(all, pts...)
	}
	if err := historytest.Write(dir, batches); err != nil {
		t.Fatal(err)
	}
	return dir, all
}

func open(t *testing.T, dir string) *history.Archive {
	t.Helper()
	a, err := history.New(history.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// want filters the fixture like a query: in range, non-null, finite.
func want(all []historytest.Point, source, metric, target string, from, to time.Time) (ts []int64, vs []float64) {
	for _, p := range all {
		if p.Source != source || p.Metric != metric || p.Target != target || p.Null || math.IsNaN(p.Value) {
			continue
		}
		if p.Ts < from.UnixNano() || p.Ts >= to.UnixNano() {
			continue
		}
		ts = append(ts, p.Ts)
		vs = append(vs, p.Value)
	}
	return ts, vs
}

func TestRawPointsWhenTheyFit(t *testing.T) {
	dir, all := fixture(t)
	a := open(t, dir)
	from, to := t0.Add(110*time.Minute), t0.Add(130*time.Minute) // crosses midnight
	res, err := a.Series(context.Background(), history.Query{Source: "web", Metric: "duration", From: from, To: to, Points: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 2 {
		t.Fatalf("got %d series, want targets a and b", len(res.Series))
	}
	for _, s := range res.Series {
		wt, wv := want(all, "web", "duration", s.Target, from, to)
		if !s.Raw || !slices.Equal(s.T, wt) || !slices.Equal(s.V, wv) || s.Count != int64(len(wt)) {
			t.Errorf("target %s: raw=%v, %d points, want raw %d points exactly as archived", s.Target, s.Raw, len(s.T), len(wt))
		}
	}
	if res.Scan.Partitions != 2 {
		t.Errorf("listed %d hour partitions for 23:50–00:10, want 2", res.Scan.Partitions)
	}
}

func TestBucketsWhenTooManyPoints(t *testing.T) {
	dir, all := fixture(t)
	a := open(t, dir)
	from, to := t0.Add(-30*time.Minute), t0.Add(7*time.Hour)
	const n = 97
	res, err := a.Series(context.Background(), history.Query{Source: "web", Metric: "duration", Target: "a", From: from, To: to, Points: n})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 || res.Series[0].Raw {
		t.Fatalf("want one bucketed series, got %+v", res.Series)
	}
	s := res.Series[0]
	wt, wv := want(all, "web", "duration", "a", from, to)
	width := to.Sub(from).Nanoseconds()
	type agg struct {
		min, max, sum float64
		n             int64
	}
	buckets := map[int64]*agg{}
	for i, ts := range wt {
		b := int64((float64(ts-from.UnixNano()) * n) / float64(width)) // exact enough here: no ts sits on a boundary
		g := buckets[b]
		if g == nil {
			g = &agg{min: wv[i], max: wv[i]}
			buckets[b] = g
		}
		g.min, g.max, g.sum, g.n = math.Min(g.min, wv[i]), math.Max(g.max, wv[i]), g.sum+wv[i], g.n+1
	}
	if len(s.T) != len(buckets) || s.Count != int64(len(wt)) {
		t.Fatalf("%d buckets of %d points, want %d buckets of %d points", len(s.T), s.Count, len(buckets), len(wt))
	}
	for i, start := range s.T {
		b := (start - from.UnixNano()) * n / width
		g := buckets[b]
		if g == nil || s.Min[i] != g.min || s.Max[i] != g.max || s.N[i] != g.n || math.Abs(s.Avg[i]-g.sum/float64(g.n)) > 1e-12 {
			t.Errorf("bucket %d at %d: min %v max %v n %d, want %+v", b, start, s.Min[i], s.Max[i], s.N[i], g)
		}
	}
}

func TestZoomReachesRawPoints(t *testing.T) {
	dir, _ := fixture(t)
	a := open(t, dir)
	q := history.Query{Source: "web", Metric: "duration", Target: "b", From: t0, To: t0.Add(6 * time.Hour), Points: 200}
	wide, err := a.Series(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	q.From, q.To = t0.Add(time.Hour), t0.Add(time.Hour+30*time.Minute)
	narrow, err := a.Series(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if wide.Series[0].Raw || !narrow.Series[0].Raw || len(narrow.Series[0].T) != 180 {
		t.Fatalf("wide raw=%v, narrow raw=%v with %d points; want buckets, then 180 raw points", wide.Series[0].Raw, narrow.Series[0].Raw, len(narrow.Series[0].T))
	}
}

func TestStatisticsPruneRowGroups(t *testing.T) {
	dir, _ := fixture(t)
	a := open(t, dir)
	// No row group holds source "zz": every file is opened, none decoded.
	res, err := a.Series(context.Background(), history.Query{Source: "zz", Metric: "duration", From: t0, To: t0.Add(6 * time.Hour), Points: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 0 || res.Scan.RowGroups != 0 || res.Scan.RowsDecoded != 0 || res.Scan.FilesSkipped == 0 {
		t.Errorf("absent source: %d series, scan %+v; want nothing decoded", len(res.Series), res.Scan)
	}
	// A range outside the archive lists no partition at all.
	res, err = a.Series(context.Background(), history.Query{Source: "web", Metric: "duration", From: t0.Add(-48 * time.Hour), To: t0.Add(-24 * time.Hour), Points: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scan.Partitions != 0 || res.Scan.Files != 0 || len(res.Series) != 0 {
		t.Errorf("range before the archive: scan %+v", res.Scan)
	}
	// One series among four decodes a quarter of the rows or less.
	res, err = a.Series(context.Background(), history.Query{Source: "web", Metric: "code", From: t0, To: t0.Add(6 * time.Hour), Points: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scan.RowsDecoded != 6*360 || len(res.Series) != 1 || res.Series[0].Count != 6*360 {
		t.Errorf("web/code: decoded %d rows for %d series; want exactly its %d rows", res.Scan.RowsDecoded, len(res.Series), 6*360)
	}
}

func TestCatalog(t *testing.T) {
	dir, _ := fixture(t)
	a := open(t, dir)
	cat, err := a.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []history.CatalogEntry{{Source: "db", Metrics: []string{"duration"}}, {Source: "web", Metrics: []string{"code", "duration"}}}
	if len(cat) != len(want) {
		t.Fatalf("catalog %+v, want %+v", cat, want)
	}
	for i := range want {
		if cat[i].Source != want[i].Source || !slices.Equal(cat[i].Metrics, want[i].Metrics) {
			t.Errorf("catalog %+v, want %+v", cat, want)
		}
	}
}

func TestBadQueriesAndFiles(t *testing.T) {
	dir, all := fixture(t)
	a := open(t, dir)
	ctx := context.Background()
	for _, q := range []history.Query{
		{Metric: "m", From: t0, To: t0.Add(time.Hour), Points: 10},
		{Source: "s", From: t0, To: t0.Add(time.Hour), Points: 10},
		{Source: "s", Metric: "m", From: t0, To: t0, Points: 10},
		{Source: "s", Metric: "m", From: t0, To: t0.Add(time.Hour), Points: 0},
		{Source: "s", Metric: "m", From: t0, To: t0.Add(time.Hour), Points: history.MaxPoints + 1},
	} {
		if _, err := a.Series(ctx, q); err == nil {
			t.Errorf("query %+v: no error", q)
		}
	}
	// A damaged file is an error naming it, not a panic; a temp file is ignored.
	pdir := filepath.Join(dir, "samples", "date=2026-03-01", "hour=22")
	if err := os.WriteFile(filepath.Join(pdir, ".x.parquet.tmp"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Series(ctx, history.Query{Source: "web", Metric: "duration", From: t0, To: t0.Add(time.Hour), Points: 10}); err != nil {
		t.Fatalf("temp file was read: %v", err)
	}
	// Neither a file where an hour directory could be (the fixture's 20:00
	// and 21:00 do not exist), nor a directory the archiver would not name
	// so, is read or an error.
	day := filepath.Join(dir, "samples", "date=2026-03-01")
	if err := os.WriteFile(filepath.Join(day, "hour=21"), []byte("not a partition"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(day, "hour=7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(day, "hour=7", "x.parquet"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := a.Series(ctx, history.Query{Source: "web", Metric: "duration", Target: "a", From: t0.Add(-20 * time.Hour), To: t0.Add(time.Hour), Points: 1000})
	if wantTs, _ := want(all, "web", "duration", "a", t0, t0.Add(time.Hour)); err != nil || len(res.Series) != 1 || res.Series[0].Count != int64(len(wantTs)) || res.Scan.Partitions != 1 {
		t.Fatalf("over a file named like an hour: %v, %d series, scan %+v; want %d points from 1 partition", err, len(res.Series), res.Scan, len(wantTs))
	}
	bad := filepath.Join(pdir, "zz-bad.parquet")
	if err := os.WriteFile(bad, []byte("PAR1 not really PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = a.Series(ctx, history.Query{Source: "web", Metric: "duration", From: t0, To: t0.Add(time.Hour), Points: 10})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("damaged file: error %v, want one naming %s", err, bad)
	}
	// An archive with no samples yet answers with no series.
	empty := open(t, t.TempDir())
	res, err = empty.Series(ctx, history.Query{Source: "web", Metric: "duration", From: t0, To: t0.Add(time.Hour), Points: 10})
	if err != nil || len(res.Series) != 0 {
		t.Fatalf("empty archive: %v, %+v", err, res)
	}
}

// TestCompactionKeepsAnswers queries, compacts the archive (every file is
// replaced by a newly written one), and queries again: the caches keyed by
// file must not serve the replaced files, and the answer must not change.
func TestCompactionKeepsAnswers(t *testing.T) {
	dir, _ := fixture(t)
	a := open(t, dir)
	ctx := context.Background()
	queries := []history.Query{
		{Source: "web", Metric: "duration", From: t0, To: t0.Add(6 * time.Hour), Points: 5000},
		{Source: "web", Metric: "duration", Target: "a", From: t0, To: t0.Add(6 * time.Hour), Points: 100},
	}
	var before []*history.Result
	for _, q := range queries {
		res, err := a.Series(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, res)
	}
	res, err := parquet.Compact(ctx, dir, parquet.CompactOptions{ClosedBefore: t0.Add(7 * time.Hour), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res.FilesIn == 0 {
		t.Fatal("compaction replaced no file")
	}
	for i, q := range queries {
		after, err := a.Series(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSeries(before[i].Series, after.Series) {
			t.Errorf("query %d: the answer changed across compaction", i)
		}
	}
}

func TestExtremeRanges(t *testing.T) {
	dir, all := fixture(t)
	a := open(t, dir)
	ctx := context.Background()
	for _, q := range []history.Query{
		{Source: "web", Metric: "duration", From: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), To: t0, Points: 10},
		{Source: "web", Metric: "duration", From: t0, To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Points: 10},
		{Source: "web", Metric: "duration", From: time.Unix(0, math.MinInt64+1), To: time.Unix(0, math.MaxInt64), Points: 10},
	} {
		if _, err := a.Series(ctx, q); err == nil {
			t.Errorf("range %v – %v: no error", q.From, q.To)
		}
	}
	// The widest range that is allowed, around the whole archive: every
	// point in one bucket.
	from, to := time.Unix(0, -1<<62+1), time.Unix(0, 1<<62-1)
	res, err := a.Series(ctx, history.Query{Source: "web", Metric: "duration", Target: "b", From: from, To: to, Points: 1})
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := want(all, "web", "duration", "b", from, to)
	if len(res.Series) != 1 || res.Series[0].Raw || len(res.Series[0].T) != 1 || res.Series[0].N[0] != int64(len(wt)) || res.Series[0].T[0] != from.UnixNano() {
		t.Fatalf("one bucket over 292 years: %+v", res.Series)
	}
}

// sameSeries compares answers exactly, except bucket averages, whose sums
// may add up in another order when the rows sit in other files.
func sameSeries(a, b []history.Series) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.SeriesKey != y.SeriesKey || x.Raw != y.Raw || x.Count != y.Count || x.BucketNS != y.BucketNS ||
			!slices.Equal(x.T, y.T) || !slices.Equal(x.V, y.V) || !slices.Equal(x.Min, y.Min) ||
			!slices.Equal(x.Max, y.Max) || !slices.Equal(x.N, y.N) || len(x.Avg) != len(y.Avg) {
			return false
		}
		for j := range x.Avg {
			if math.Abs(x.Avg[j]-y.Avg[j]) > 1e-12*math.Max(1, math.Abs(x.Avg[j])) {
				return false
			}
		}
	}
	return true
}
