package history

import (
	"testing"
	"time"
)

// TestCacheCountsCarriedPoints: an index extended with another series
// keeps the points read for its first series, and the cache counts them.
func TestCacheCountsCarriedPoints(t *testing.T) {
	c := newIndexCache(1 << 20)
	key := fileKey{path: "/a/x.parquet", size: 10, mtime: time.Unix(1, 0)}
	run := &seriesRun{SeriesKey: SeriesKey{Source: "web", Metric: "duration", Target: "a"}, start: 0, end: 3}
	first := &seriesIndex{sorted: true, groups: []indexGroup{{runs: []*seriesRun{run}}}, runs: 1, pairs: []smPair{{"web", "duration"}}}
	c.put(key, first)
	c.keep(key, run, &points{ts: []int64{1, 2, 3}, vs: []float64{1, 2, 3}})
	if want := int64(runBytes + 3*pointBytes); c.bytes != want {
		t.Fatalf("cache holds %d bytes, want %d", c.bytes, want)
	}
	other := &seriesRun{SeriesKey: SeriesKey{Source: "db", Metric: "duration", Target: "a"}, start: 3, end: 5}
	more := &seriesIndex{sorted: true, groups: []indexGroup{{runs: []*seriesRun{other}}}, runs: 1, pairs: []smPair{{"db", "duration"}}}
	both := first.withPair(more)
	c.put(key, both)
	if want := int64(2*runBytes + 3*pointBytes); c.bytes != want {
		t.Fatalf("cache holds %d bytes after the second series, want %d", c.bytes, want)
	}
	if !both.covers("web", "duration") || !both.covers("db", "duration") || both.covers("web", "code") {
		t.Fatalf("extended index covers %v", both.pairs)
	}
	if got := both.find(0, "web", "duration", "a"); len(got) != 1 || got[0].pts.Load() == nil {
		t.Fatalf("the first series' run lost its points: %v", got)
	}
	if len(first.groups[0].runs) != 1 {
		t.Fatalf("extending an index changed it: %d runs", len(first.groups[0].runs))
	}
}
