package history_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/history/historytest"
)

// storedIndexQueries are answered from the points (raw, narrow buckets)
// and from run summaries (buckets wider than an hour, one aligned on
// hours and one not).
func storedIndexQueries() []history.Query {
	return []history.Query{
		{Source: "web", Metric: "duration", Target: "a", From: t0.Add(90 * time.Minute), To: t0.Add(100 * time.Minute), Points: 1000},
		{Source: "web", Metric: "duration", Target: "a", From: t0, To: t0.Add(6 * time.Hour), Points: 500},
		{Source: "web", Metric: "duration", From: t0, To: t0.Add(6 * time.Hour), Points: 3},
		{Source: "web", Metric: "duration", Target: "b", From: t0.Add(-17 * time.Minute), To: t0.Add(6*time.Hour + 29*time.Minute), Points: 4},
		// Other series of the same files, looked up in the same stored
		// indexes after web/duration.
		{Source: "db", Metric: "duration", From: t0, To: t0.Add(6 * time.Hour), Points: 7},
		{Source: "web", Metric: "code", Target: "a", From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Points: 1000},
		{Source: "web", Metric: "duration", Target: "a", From: t0, To: t0.Add(6 * time.Hour), Points: 50},
	}
}

func answers(t *testing.T, a *history.Archive) []*history.Result {
	t.Helper()
	var out []*history.Result
	for _, q := range storedIndexQueries() {
		res, err := a.Series(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return out
}

// TestStoredIndex: a new Archive (a restarted recond) answers from the
// index files the first one stored exactly as from the Parquet files, and
// a file added to a partition or replaced after its index was stored, or a
// damaged index file, never gives a stale answer.
func TestStoredIndex(t *testing.T) {
	dir, all := fixture(t)
	// An archive written a while ago: its partitions' listings are
	// settled, and the index files record them.
	for h := range 6 {
		hour := t0.Add(time.Duration(h) * time.Hour)
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(partitionDir(dir, hour), old, old); err != nil {
			t.Fatal(err)
		}
	}
	first := answers(t, open(t, dir))
	for h := range 6 {
		if _, err := os.Stat(indexPath(dir, t0.Add(time.Duration(h)*time.Hour))); err != nil {
			t.Fatalf("no index stored for hour %d: %v", h, err)
		}
	}
	restarted := open(t, dir)
	checkAnswers(t, "restarted", answers(t, restarted), first, all)
	// The restarted archive looked up only the series queried in the
	// stored indexes: the catalog still lists every series.
	cat, err := restarted.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cat); got != "[{db [duration]} {web [code duration]}]" {
		t.Fatalf("catalog after stored-index queries: %s", got)
	}

	// A late file lands in hour 2, and hour 4's first file is replaced by
	// one holding other values: both must show.
	late := t0.Add(2*time.Hour + 30*time.Minute + 5*time.Second)
	added := []historytest.Point{
		{Source: "web", Metric: "duration", Target: "a", Ts: late.UnixNano(), Value: 1e6},
		{Source: "web", Metric: "duration", Target: "b", Ts: late.UnixNano(), Value: -1e6},
	}
	replaced := replaceFirstFile(t, dir, t0.Add(4*time.Hour))
	all = append(removeHour(all, t0.Add(4*time.Hour)), replaced...)
	if err := historytest.NewWriterAt(dir, 1000).Write([]arrow.RecordBatch{historytest.Batch(added)}); err != nil {
		t.Fatal(err)
	}
	all = append(all, added...)
	checkAnswers(t, "after a file was added and one replaced", answers(t, open(t, dir)), nil, all)

	// Damaged index files are rebuilt, the answers unchanged.
	for _, p := range indexFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkAnswers(t, "with damaged index files", answers(t, open(t, dir)), nil, all)
}

// indexFiles returns the day index files of the archive in dir.
func indexFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, ".history-index", "samples", "*.idx"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no index files (%v)", err)
	}
	return files
}

// TestStoredIndexOldFormat: index files of the previous format (one per
// hour) are never read: a restarted archive answers from the Parquet
// files, writes day files, and removes the old ones.
func TestStoredIndexOldFormat(t *testing.T) {
	dir, all := fixture(t)
	old := time.Now().Add(-time.Hour)
	for h := range 6 {
		if err := os.Chtimes(partitionDir(dir, t0.Add(time.Duration(h)*time.Hour)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	idir := filepath.Join(dir, ".history-index", "samples")
	if err := os.MkdirAll(idir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An hour file of the old format whose body would be read as garbage,
	// and a day-named file of the old magic.
	hourFile := filepath.Join(idir, t0.Format("2006-01-02T15")+".idx")
	if err := os.WriteFile(hourFile, []byte("RHX4\x00\x01garbage\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(indexPath(dir, t0), []byte("RHX4\x00\x00\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkAnswers(t, "over old index files", answers(t, open(t, dir)), nil, all)
	if _, err := os.Stat(hourFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the old format's hour file is still there (%v)", err)
	}
	b, err := os.ReadFile(indexPath(dir, t0))
	if err != nil || !bytes.HasPrefix(b, []byte("RHX5")) {
		t.Fatalf("day index file not rewritten in the current format (%v)", err)
	}
	checkAnswers(t, "restarted", answers(t, open(t, dir)), nil, all)
}

func partitionDir(dir string, hour time.Time) string {
	return filepath.Join(dir, "samples", "date="+hour.Format(time.DateOnly), "hour="+hour.Format("15"))
}

func indexPath(dir string, hour time.Time) string {
	return filepath.Join(dir, ".history-index", "samples", hour.Format(time.DateOnly)+".idx")
}

// replaceFirstFile replaces the files of the hour partition of hour by
// one file of other points (renamed over the first file's name, as
// compaction does) and returns those points.
func replaceFirstFile(t *testing.T, dir string, hour time.Time) []historytest.Point {
	t.Helper()
	pdir := partitionDir(dir, hour)
	names, err := filepath.Glob(filepath.Join(pdir, "*.parquet"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no file in %s: %v", pdir, err)
	}
	var pts []historytest.Point
	for i := range 30 {
		ts := hour.Add(time.Duration(i) * 2 * time.Minute).UnixNano()
		pts = append(pts,
			historytest.Point{Source: "web", Metric: "duration", Target: "a", Ts: ts, Value: 42 + float64(i)},
			historytest.Point{Source: "web", Metric: "duration", Target: "b", Ts: ts, Value: -42 - float64(i)})
	}
	other := t.TempDir()
	if err := historytest.Write(other, []arrow.RecordBatch{historytest.Batch(pts)}); err != nil {
		t.Fatal(err)
	}
	made, err := filepath.Glob(filepath.Join(other, "samples", "*", "*", "*.parquet"))
	if err != nil || len(made) != 1 {
		t.Fatalf("replacement archive holds %v (%v), want one file", made, err)
	}
	for _, n := range names[1:] {
		if err := os.Remove(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(made[0], names[0]); err != nil {
		t.Fatal(err)
	}
	return pts
}

// removeHour drops the points of the hour starting at hour.
func removeHour(all []historytest.Point, hour time.Time) []historytest.Point {
	var out []historytest.Point
	for _, p := range all {
		if p.Ts < hour.UnixNano() || p.Ts >= hour.Add(time.Hour).UnixNano() {
			out = append(out, p)
		}
	}
	return out
}

// checkAnswers compares answers with the ones expected from the points
// all (and, when prev is not nil, with earlier answers, exactly).
func checkAnswers(t *testing.T, when string, got, prev []*history.Result, all []historytest.Point) {
	t.Helper()
	for i, q := range storedIndexQueries() {
		if prev != nil && !sameSeries(got[i].Series, prev[i].Series) {
			t.Errorf("%s: query %d answered differently than before", when, i)
		}
		targets := map[string]bool{}
		for _, p := range all {
			if p.Source == q.Source && p.Metric == q.Metric && (q.Target == "" || p.Target == q.Target) {
				targets[p.Target] = true
			}
		}
		if len(got[i].Series) != len(targets) {
			t.Fatalf("%s: query %d: %d series, want %d", when, i, len(got[i].Series), len(targets))
		}
		for _, s := range got[i].Series {
			ts, vs := want(all, q.Source, q.Metric, s.Target, q.From, q.To)
			if s.Count != int64(len(ts)) {
				t.Fatalf("%s: query %d target %s: %d points, want %d", when, i, s.Target, s.Count, len(ts))
			}
			if len(ts) <= q.Points {
				if !s.Raw || len(s.T) != len(ts) {
					t.Fatalf("%s: query %d target %s: raw=%v with %d points, want %d raw", when, i, s.Target, s.Raw, len(s.T), len(ts))
				}
				sortByTime(ts, vs)
				for k := range ts {
					if s.T[k] != ts[k] || s.V[k] != vs[k] {
						t.Fatalf("%s: query %d target %s: point %d is (%d, %v), want (%d, %v)", when, i, s.Target, k, s.T[k], s.V[k], ts[k], vs[k])
					}
				}
				continue
			}
			checkBuckets(t, when, i, q, s, ts, vs)
		}
	}
}

func sortByTime(ts []int64, vs []float64) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j] < ts[j-1]; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

// checkBuckets recomputes the buckets of points (ts, vs) for q.
func checkBuckets(t *testing.T, when string, i int, q history.Query, s history.Series, ts []int64, vs []float64) {
	t.Helper()
	from, to := q.From.UnixNano(), q.To.UnixNano()
	type agg struct {
		lo, hi, sum float64
		n           int64
	}
	buckets := map[int64]*agg{}
	for k, v := range ts {
		b := bucketOf(v, from, to, q.Points)
		a, ok := buckets[b]
		if !ok {
			a = &agg{lo: vs[k], hi: vs[k]}
			buckets[b] = a
		}
		a.lo, a.hi = math.Min(a.lo, vs[k]), math.Max(a.hi, vs[k])
		a.sum += vs[k]
		a.n++
	}
	if s.Raw || len(s.T) != len(buckets) {
		t.Fatalf("%s: query %d target %s: raw=%v with %d buckets, want %d", when, i, s.Target, s.Raw, len(s.T), len(buckets))
	}
	for k, start := range s.T {
		b := bucketOf(start, from, to, q.Points)
		a := buckets[b]
		if a == nil || s.Min[k] != a.lo || s.Max[k] != a.hi || s.N[k] != a.n || math.Abs(s.Avg[k]-a.sum/float64(a.n)) > 1e-9*math.Max(1, math.Abs(s.Avg[k])) {
			t.Fatalf("%s: query %d target %s: bucket %d (min %v max %v avg %v n %d), want %+v", when, i, s.Target, b, s.Min[k], s.Max[k], s.Avg[k], s.N[k], a)
		}
	}
}

// bucketOf is floor((ts-from) * points / (to-from)), in 128 bits.
func bucketOf(ts, from, to int64, points int) int64 {
	hi, lo := bits.Mul64(uint64(ts-from), uint64(points))
	b, _ := bits.Div64(hi, lo, uint64(to-from))
	return int64(b)
}

// looseRow is a row of a file not written by the archiver.
type looseRow struct {
	Ts     int64    `parquet:"ts"`
	Source string   `parquet:"source"`
	Metric string   `parquet:"metric"`
	Target string   `parquet:"target"`
	Value  *float64 `parquet:"value,optional"`
}

// TestStoredIndexUnsortedFile: a file whose rows are not in key order (in
// time order, its series interleaved: a run per row) is answered from its
// stored index as from the file, for one target, for every target, and
// after another series of the same file was looked up.
func TestStoredIndexUnsortedFile(t *testing.T) {
	dir := t.TempDir()
	hour := t0
	pdir := partitionDir(dir, hour)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var rows []looseRow
	var all []historytest.Point
	for i := range 600 {
		ts := hour.Add(time.Duration(i) * 5 * time.Second).UnixNano()
		for _, p := range []historytest.Point{
			{Source: "web", Metric: "duration", Target: []string{"a", "b"}[i%2], Ts: ts, Value: float64(i % 37)},
			{Source: "db", Metric: "duration", Target: "a", Ts: ts + 1, Value: -float64(i)},
		} {
			v := p.Value
			rows = append(rows, looseRow{Ts: p.Ts, Source: p.Source, Metric: p.Metric, Target: p.Target, Value: &v})
			all = append(all, p)
		}
	}
	f, err := os.Create(filepath.Join(pdir, "loose.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	w := pq.NewGenericWriter[looseRow](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(pdir, old, old); err != nil {
		t.Fatal(err)
	}
	queries := []history.Query{
		{Source: "db", Metric: "duration", Target: "a", From: hour, To: hour.Add(time.Hour), Points: 1000},
		{Source: "web", Metric: "duration", Target: "a", From: hour, To: hour.Add(time.Hour), Points: 1000},
		{Source: "web", Metric: "duration", Target: "b", From: hour.Add(10 * time.Minute), To: hour.Add(20 * time.Minute), Points: 1000},
		{Source: "web", Metric: "duration", From: hour, To: hour.Add(time.Hour), Points: 1000},
		{Source: "web", Metric: "duration", From: hour, To: hour.Add(time.Hour), Points: 7},
	}
	for round, a := range []*history.Archive{open(t, dir), open(t, dir)} {
		for i, q := range queries {
			res, err := a.Series(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range res.Series {
				ts, vs := want(all, q.Source, q.Metric, s.Target, q.From, q.To)
				if len(ts) > q.Points {
					checkBuckets(t, fmt.Sprintf("round %d", round), i, q, s, ts, vs)
					continue
				}
				if !s.Raw || !slices.Equal(s.T, ts) || !slices.Equal(s.V, vs) {
					t.Fatalf("round %d query %d target %s: raw=%v %d points, want %d", round, i, s.Target, s.Raw, len(s.T), len(ts))
				}
			}
			if wantSeries := map[bool]int{true: 1, false: 2}[q.Target != ""]; len(res.Series) != wantSeries {
				t.Fatalf("round %d query %d: %d series, want %d", round, i, len(res.Series), wantSeries)
			}
		}
		if round == 0 {
			if _, err := os.Stat(indexPath(dir, hour)); err != nil {
				t.Fatalf("no index stored: %v", err)
			}
		}
	}
}

// TestConcurrentStoredQueries runs the stored-index queries at once on one
// restarted archive, several times over: lookups of different series in
// the same stored indexes (and their merges in the cache) must give the
// answers a lone query gives.
func TestConcurrentStoredQueries(t *testing.T) {
	dir, all := fixture(t)
	old := time.Now().Add(-time.Hour)
	for h := range 6 {
		if err := os.Chtimes(partitionDir(dir, t0.Add(time.Duration(h)*time.Hour)), old, old); err != nil {
			t.Fatal(err)
		}
	}
	answers(t, open(t, dir)) // writes the day index files
	a := open(t, dir)
	qs := storedIndexQueries()
	got := make([][]*history.Result, 4)
	errs := make(chan error, len(got)*len(qs))
	var wg sync.WaitGroup
	for r := range got {
		got[r] = make([]*history.Result, len(qs))
		for i, q := range qs {
			wg.Go(func() {
				res, err := a.Series(context.Background(), q)
				if err != nil {
					errs <- err
					return
				}
				got[r][i] = res
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := range got {
		checkAnswers(t, fmt.Sprintf("concurrent round %d", r), got[r], nil, all)
	}
}

// TestCancelledQueryKeepsNoFiles: a query cancelled while it reads leaves
// no file or directory open.
func TestCancelledQueryKeepsNoFiles(t *testing.T) {
	dir, _ := fixture(t)
	open(t, dir) // the fixture's files are written
	before := openFiles(t)
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		a := open(t, dir)
		go cancel()
		_, err := a.Series(ctx, history.Query{Source: "web", Metric: "duration", From: t0, To: t0.Add(6 * time.Hour), Points: 10})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	if after := openFiles(t); after != before {
		t.Fatalf("%d files open after cancelled queries, %d before", after, before)
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(fds)
}
