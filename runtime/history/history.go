// Package history answers time-range queries over the Parquet sample archive
// (design §3.4) for the graph page: one metric's series between two times,
// either as the raw archived points or, when the range holds more points than
// the chart can show, as per-bucket min/max/avg/count.
//
// The bucketing is for display only: the archive is read as written and is
// never changed, and a narrower range (a zoom) reaches the raw points again.
//
// A query reads as little as it can: hive partitions (date=/hour=) outside
// the range are never listed, files and row groups whose column statistics
// (ts, source, metric) exclude the query are skipped, and within a row group
// only the rows of the wanted series are decoded, and only the ts, value and
// series-key columns are read.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxPoints caps the points (raw points or buckets) a query may ask for.
const MaxPoints = 20000

// Options configures an Archive.
type Options struct {
	// Dir is the archive root: the directory that holds samples/.
	Dir string
	// Logger receives a line per unreadable file; nil means slog.Default().
	Logger *slog.Logger
	// Workers bounds the files read at once; 0 means GOMAXPROCS.
	Workers int
	// CatalogHours is how many of the most recent hour partitions the
	// catalog scans; 0 means 48.
	CatalogHours int
	// CacheBytes bounds the memory kept between queries (default 256 MiB):
	// per file, where each series lies (sparing later queries reading the
	// key columns), and the points of the series queried (sparing them
	// opening the file at all). Files are immutable, so the cache is
	// exact: an entry is keyed by path, size and modification time.
	CacheBytes int64
}

// Archive queries one archive directory. It holds no open files between
// queries and is safe for concurrent use.
type Archive struct {
	dir          string
	log          *slog.Logger
	workers      int
	catalogHours int

	cache *indexCache
	dirs  *dirCache

	// dayLocks serialise the writers of a day's index file (by day).
	dayLocks [16]sync.Mutex
	// dropHourIndexes removes the previous format's index files once.
	dropHourIndexes sync.Once
}

// New returns an Archive over opts.Dir. The directory need not exist yet:
// an archive with no samples answers every query with no points.
func New(opts Options) (*Archive, error) {
	if opts.Dir == "" {
		return nil, errors.New("history: no archive directory")
	}
	a := &Archive{
		dir:          opts.Dir,
		log:          opts.Logger,
		workers:      opts.Workers,
		catalogHours: opts.CatalogHours,
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 256 << 20
	}
	a.cache = newIndexCache(opts.CacheBytes)
	a.dirs = newDirCache()
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.workers <= 0 {
		a.workers = runtime.GOMAXPROCS(0)
	}
	if a.catalogHours <= 0 {
		a.catalogHours = 48
	}
	return a, nil
}

// Query selects one metric of one source between From (inclusive) and To
// (exclusive).
type Query struct {
	Source string
	Metric string
	// Target selects one target; "" returns every target of the metric, one
	// series each.
	Target string
	From   time.Time
	To     time.Time
	// Points is the most points the caller can draw: when the range holds
	// more raw points than this (for one target), that target's series is
	// returned as Points buckets of (To-From)/Points each.
	Points int
}

func (q *Query) check() error {
	switch {
	case q.Source == "":
		return errors.New("source is required")
	case q.Metric == "":
		return errors.New("metric is required")
	case !q.From.Before(q.To):
		return fmt.Errorf("from (%s) must be before to (%s)", q.From.UTC().Format(time.RFC3339Nano), q.To.UTC().Format(time.RFC3339Nano))
	case q.Points < 1 || q.Points > MaxPoints:
		return fmt.Errorf("points must be between 1 and %d, not %d", MaxPoints, q.Points)
	case !fitsNS(q.From) || !fitsNS(q.To):
		return errors.New("from and to must lie between the years 1678 and 2262 (Unix nanoseconds)")
	case q.To.Sub(q.From) == math.MaxInt64:
		return errors.New("the range is too long (at most 292 years)")
	}
	return nil
}

// fitsNS reports whether t is representable as Unix nanoseconds.
func fitsNS(t time.Time) bool { return time.Unix(0, t.UnixNano()).Equal(t) }

// SeriesKey names one archived series.
type SeriesKey struct {
	Source string `json:"source"`
	Metric string `json:"metric"`
	Target string `json:"target"`
}

// Series is one target's points in a Result. Exactly one of the two shapes
// is filled: Raw with T and V (every archived point with a finite value, in
// time order), or buckets with T (bucket starts), Min, Max, Avg and N (points
// per bucket), only for buckets that hold points.
//
// Times are Unix nanoseconds.
type Series struct {
	SeriesKey
	Raw bool `json:"raw"`
	// Count is the number of raw points in the range.
	Count int64 `json:"count"`
	// BucketNS is the bucket width in nanoseconds (0 for raw points).
	BucketNS int64     `json:"bucket_ns,omitempty"`
	T        []int64   `json:"t"`
	V        []float64 `json:"v,omitempty"`
	Min      []float64 `json:"min,omitempty"`
	Max      []float64 `json:"max,omitempty"`
	Avg      []float64 `json:"avg,omitempty"`
	N        []int64   `json:"n,omitempty"`
}

// ScanStats says how much of the archive a query touched.
type ScanStats struct {
	Partitions       int   `json:"partitions"`
	Files            int   `json:"files"`
	FilesSkipped     int   `json:"files_skipped"`
	RowGroups        int   `json:"row_groups"`
	RowGroupsSkipped int   `json:"row_groups_skipped"`
	RowsDecoded      int64 `json:"rows_decoded"`
}

// Result is a query's answer: one Series per target found, ordered by target.
type Result struct {
	From   int64     `json:"from"`
	To     int64     `json:"to"`
	Points int       `json:"points"`
	Series []Series  `json:"series"`
	Scan   ScanStats `json:"scan"`
}

// ErrInvalidQuery is wrapped by the errors of queries that no archive can
// answer (missing names, an empty or impossible range, bad point counts).
var ErrInvalidQuery = errors.New("invalid history query")

// Series runs q over the archive.
func (a *Archive) Series(ctx context.Context, q Query) (*Result, error) {
	if err := q.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	from, to := q.From.UnixNano(), q.To.UnixNano()
	// A file that compaction replaced between the listing and the read
	// would leave its rows out: the query then runs once more, over a
	// fresh listing that holds the merged file instead.
	noAgg := false
	for attempt := 1; ; attempt++ {
		parts, err := a.hoursInRange(from, to)
		if err != nil {
			return nil, err
		}
		sc := &scan{q: q, from: from, to: to, n: q.Points, noAgg: noAgg}
		vanished, err := a.run(ctx, parts, sc)
		if err != nil {
			return nil, err
		}
		if vanished && attempt == 1 {
			continue
		}
		if !sc.applyAggs() {
			// Few points after all: read them (once more, every run as
			// points).
			noAgg = true
			continue
		}
		return sc.result(), nil
	}
}

// run lists and reads the files of parts with a bounded number of
// workers, a partition at a time each, with an accumulator per worker, and
// merges the accumulators into sc. The partitions of a day share one read
// of the day's index file. vanished says that a listed file was gone when
// read.
func (a *Archive) run(ctx context.Context, parts []partition, sc *scan) (vanished bool, err error) {
	days := shareDays(parts)
	defer func() {
		// Days not done (a query cancelled or failed) keep no open
		// directory.
		for i, d := range days {
			if i == 0 || d != days[i-1] {
				d.close()
			}
		}
	}()
	workers := min(a.workers, max(1, len(parts)))
	next := make(chan int)
	accs := make([]*accumulator, workers)
	errs := make([]error, workers)
	want := smPair{sc.q.Source, sc.q.Metric}
	var gone atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		accs[w] = sc.newAccumulator()
		wg.Go(func() {
			r := newReader(a.cache)
			for i := range next {
				part, d := parts[i], days[i]
				if errs[w] != nil {
					d.done(a, nil)
					continue
				}
				files, dirMtime, stored, err := a.partitionFiles(part, r, d, want)
				if err != nil {
					errs[w] = err
					d.done(a, nil)
					continue
				}
				if !dirMtime.IsZero() {
					accs[w].stats.Partitions++
				}
				built := r.built
				for _, file := range files {
					if err := r.readFile(file, sc, accs[w]); err != nil {
						if errors.Is(err, os.ErrNotExist) {
							a.log.Info("history: archive file replaced during a query (compaction)", "path", file.path)
							gone.Store(true)
							continue
						}
						errs[w] = err
						break
					}
				}
				var u *partUpdate
				if errs[w] == nil && (r.built > built || !stored) {
					u = &partUpdate{partFiles{part, files}, dirMtime}
				}
				d.done(a, u)
			}
		})
	}
	var ctxErr error
feed:
	for i := range parts {
		select {
		case next <- i:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctxErr != nil {
		return false, fmt.Errorf("history query: %w", ctxErr)
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	for _, acc := range accs {
		sc.merge(acc)
	}
	return gone.Load(), nil
}

// hourNS is one hour in nanoseconds.
const hourNS = int64(time.Hour)

// partFiles is one hour partition and its Parquet files.
type partFiles struct {
	partition
	files []fileKey
}

// hoursInRange returns the hour partitions that may overlap [from, to),
// in hour order: the hours of the range in the days the samples table
// holds, named as the archiver (and compaction) name them,
// date=YYYY-MM-DD/hour=HH. The day directories are not listed: the worker
// that reads an hour stats its directory anyway, and an hour that does not
// exist is skipped there.
func (a *Archive) hoursInRange(from, to int64) ([]partition, error) {
	days, err := a.days("samples")
	if err != nil {
		return nil, err
	}
	var out []partition
	for _, d := range days {
		start, ddir := d.start, d.dir
		if start+dayNS <= from || start >= to {
			continue
		}
		for h := range int64(24) {
			if hour := start + h*hourNS; hour+hourNS > from && hour < to {
				out = append(out, partition{dir: ddir + string(filepath.Separator) + hourDirs[h], hour: hour})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hour < out[j].hour })
	return out, nil
}

// hourDirs are the names of the hour directories of a day.
var hourDirs = func() (names [24]string) {
	for h := range names {
		names[h] = fmt.Sprintf("hour=%02d", h)
	}
	return names
}()

// partition is one date=/hour= directory.
type partition struct {
	dir  string
	hour int64 // Unix nanoseconds of the hour's start
}

// partitions lists the hour partitions of table (samples, alerts) that
// keep accepts, oldest first. Directories that are not hive partitions are
// ignored; a missing table directory is an empty table.
func (a *Archive) partitions(table string, keep func(hour int64) bool) ([]partition, error) {
	days, err := a.days(table)
	if err != nil {
		return nil, err
	}
	var out []partition
	for _, d := range days {
		dayNS, ddir := d.start, d.dir
		if !overlapsDay(dayNS, keep) {
			continue
		}
		hours, err := a.dirs.list(ddir)
		if err != nil {
			return nil, err
		}
		for _, h := range hours {
			hs, ok := strings.CutPrefix(h.name, "hour=")
			if !ok || !h.isDir {
				continue
			}
			hn, err := strconv.Atoi(hs)
			if err != nil || hn < 0 || hn > 23 {
				continue
			}
			hour := dayNS + int64(hn)*hourNS
			if keep(hour) {
				out = append(out, partition{dir: filepath.Join(ddir, h.name), hour: hour})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hour < out[j].hour })
	return out, nil
}

// tableDay is a date=YYYY-MM-DD directory of a table.
type tableDay struct {
	dir   string
	start int64 // Unix nanoseconds of the day's start
}

// days lists the day directories of table; entries that are not
// date=YYYY-MM-DD directories are ignored.
func (a *Archive) days(table string) ([]tableDay, error) {
	root := filepath.Join(a.dir, table)
	items, err := a.dirs.list(root)
	if err != nil {
		return nil, err
	}
	var out []tableDay
	for _, d := range items {
		day, ok := strings.CutPrefix(d.name, "date=")
		if !ok || !d.isDir {
			continue
		}
		t, err := time.Parse(time.DateOnly, day)
		if err != nil {
			continue
		}
		out = append(out, tableDay{dir: filepath.Join(root, d.name), start: t.UnixNano()})
	}
	return out, nil
}

// overlapsDay reports whether keep accepts any hour of the day starting at
// dayNS, so that whole days outside a range are never listed.
func overlapsDay(dayNS int64, keep func(int64) bool) bool {
	for h := range int64(24) {
		if keep(dayNS + h*hourNS) {
			return true
		}
	}
	return false
}

// parquetFiles lists the archive files of one partition directory.
func (a *Archive) parquetFiles(dir string) ([]fileKey, error) {
	items, err := a.dirs.list(dir)
	if err != nil {
		return nil, err
	}
	var out []fileKey
	for _, it := range items {
		if !it.isDir {
			out = append(out, it.file)
		}
	}
	return out, nil
}

// scan is one query's plan and, after the workers are done, its merged
// accumulators.
type scan struct {
	q        Query
	from, to int64
	n        int

	// noAgg makes every run be read as points (see aggOK).
	noAgg bool

	series  map[string]*target
	pending []*seriesRun // runs to add as their summaries, of all workers
	stats   ScanStats
}

// aggOK reports whether run summary a may stand for the run's points: it
// lies in one bucket of the range, so that the bucket's min, max, sum and
// count are the same either way. Whether the target ends up bucketed at
// all is known only once every file is read (see applyAggs).
func (sc *scan) aggOK(a *runAgg) bool {
	if sc.noAgg || !a.ok {
		return false
	}
	return a.count == 0 || (a.tsMin >= sc.from && a.tsMax < sc.to && sc.bucket(a.tsMin) == sc.bucket(a.tsMax))
}

// applyAggs adds the pending run summaries to their targets' buckets, and
// reports false when a target with summaries holds no more than n points:
// its raw points are the answer, and the query must read them.
func (sc *scan) applyAggs() bool {
	if len(sc.pending) == 0 {
		return true
	}
	if sc.series == nil {
		sc.series = make(map[string]*target)
	}
	totals := make(map[string]int64)
	for _, run := range sc.pending {
		totals[run.Target] += run.agg.count
	}
	for name, n := range totals {
		if t := sc.series[name]; t != nil {
			n += t.count
		}
		if n > 0 && n <= int64(sc.n) {
			return false
		}
	}
	for _, run := range sc.pending {
		a := &run.agg
		if a.count == 0 {
			continue
		}
		t, ok := sc.series[run.Target]
		if !ok {
			t = newTarget(sc.n)
			sc.series[run.Target] = t
		}
		t.overflow = true
		t.t, t.v = nil, nil
		t.count += a.count
		b := sc.bucket(a.tsMin)
		if t.cnt[b] == 0 {
			t.min[b], t.max[b] = a.min, a.max
		} else {
			t.min[b] = math.Min(t.min[b], a.min)
			t.max[b] = math.Max(t.max[b], a.max)
		}
		t.sum[b] += a.sum
		t.cnt[b] += a.count
	}
	return true
}

// target accumulates one target's points: raw points while there are at
// most n of them, and buckets always (cheap, and needed once raw
// overflows).
type target struct {
	count    int64
	t        []int64
	v        []float64
	overflow bool
	min, max []float64
	sum      []float64
	cnt      []int64
}

// accumulator is one worker's share of a scan.
type accumulator struct {
	sc      *scan
	targets map[string]*target
	pending []*seriesRun
	stats   ScanStats
}

// addAgg records a run to add as its summary (see applyAggs).
func (acc *accumulator) addAgg(run *seriesRun) { acc.pending = append(acc.pending, run) }

func newTarget(n int) *target {
	return &target{
		min: make([]float64, n),
		max: make([]float64, n),
		sum: make([]float64, n),
		cnt: make([]int64, n),
	}
}

func (sc *scan) newAccumulator() *accumulator {
	return &accumulator{sc: sc, targets: make(map[string]*target)}
}

func (acc *accumulator) target(name string) *target {
	t, ok := acc.targets[name]
	if !ok {
		t = newTarget(acc.sc.n)
		acc.targets[name] = t
	}
	return t
}

// bucket returns the bucket of ts: floor((ts-from) * n / (to-from)),
// computed in 128 bits so that a year of nanoseconds times the bucket count
// cannot overflow.
func (sc *scan) bucket(ts int64) int {
	hi, lo := bits.Mul64(uint64(ts-sc.from), uint64(sc.n))
	b, _ := bits.Div64(hi, lo, uint64(sc.to-sc.from))
	return int(b)
}

// bucketStart is the first nanosecond of bucket b: the smallest ts with
// bucket(ts) == b, i.e. from + ceil(b * (to-from) / n).
func (sc *scan) bucketStart(b int) int64 {
	hi, lo := bits.Mul64(uint64(b), uint64(sc.to-sc.from))
	q, r := bits.Div64(hi, lo, uint64(sc.n))
	if r != 0 {
		q++
	}
	return sc.from + int64(q)
}

// add records one point; ts is within [from, to) and v is finite.
func (acc *accumulator) add(t *target, ts int64, v float64) {
	n := acc.sc.n
	t.count++
	if !t.overflow {
		if len(t.t) < n {
			t.t = append(t.t, ts)
			t.v = append(t.v, v)
		} else {
			t.overflow = true
			t.t, t.v = nil, nil
		}
	}
	b := acc.sc.bucket(ts)
	if t.cnt[b] == 0 {
		t.min[b], t.max[b] = v, v
	} else {
		t.min[b] = math.Min(t.min[b], v)
		t.max[b] = math.Max(t.max[b], v)
	}
	t.sum[b] += v
	t.cnt[b]++
}

// addPoints adds the points of one run that fall in the range. Points are
// in time order, so the range is found by binary search.
func (acc *accumulator) addPoints(target string, p *points) {
	sc := acc.sc
	lo, _ := slices.BinarySearch(p.ts, sc.from)
	hi, _ := slices.BinarySearch(p.ts, sc.to)
	if lo >= hi {
		return
	}
	t := acc.target(target)
	for i := lo; i < hi; i++ {
		acc.add(t, p.ts[i], p.vs[i])
	}
}

// merge folds a worker's accumulator into the scan.
func (sc *scan) merge(acc *accumulator) {
	if sc.series == nil {
		sc.series = make(map[string]*target)
	}
	sc.stats.Partitions += acc.stats.Partitions
	sc.stats.Files += acc.stats.Files
	sc.stats.FilesSkipped += acc.stats.FilesSkipped
	sc.stats.RowGroups += acc.stats.RowGroups
	sc.stats.RowGroupsSkipped += acc.stats.RowGroupsSkipped
	sc.stats.RowsDecoded += acc.stats.RowsDecoded
	sc.pending = append(sc.pending, acc.pending...)
	for name, src := range acc.targets {
		dst, ok := sc.series[name]
		if !ok {
			sc.series[name] = src
			continue
		}
		dst.count += src.count
		if dst.overflow || src.overflow || len(dst.t)+len(src.t) > sc.n {
			dst.overflow = true
			dst.t, dst.v = nil, nil
		} else {
			dst.t = append(dst.t, src.t...)
			dst.v = append(dst.v, src.v...)
		}
		for b, c := range src.cnt {
			if c == 0 {
				continue
			}
			if dst.cnt[b] == 0 {
				dst.min[b], dst.max[b] = src.min[b], src.max[b]
			} else {
				dst.min[b] = math.Min(dst.min[b], src.min[b])
				dst.max[b] = math.Max(dst.max[b], src.max[b])
			}
			dst.sum[b] += src.sum[b]
			dst.cnt[b] += c
		}
	}
}

// result shapes the merged scan as the answer.
func (sc *scan) result() *Result {
	res := &Result{From: sc.from, To: sc.to, Points: sc.n, Series: []Series{}, Scan: sc.stats}
	names := make([]string, 0, len(sc.series))
	for name := range sc.series {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := sc.series[name]
		s := Series{
			SeriesKey: SeriesKey{Source: sc.q.Source, Metric: sc.q.Metric, Target: name},
			Count:     t.count,
		}
		if !t.overflow {
			s.Raw = true
			s.T, s.V = sortPoints(t.t, t.v)
		} else {
			s.BucketNS = (sc.to - sc.from) / int64(sc.n)
			for b, c := range t.cnt {
				if c == 0 {
					continue
				}
				s.T = append(s.T, sc.bucketStart(b))
				s.Min = append(s.Min, t.min[b])
				s.Max = append(s.Max, t.max[b])
				s.Avg = append(s.Avg, t.sum[b]/float64(c))
				s.N = append(s.N, c)
			}
		}
		if s.T == nil {
			s.T = []int64{}
		}
		res.Series = append(res.Series, s)
	}
	return res
}

// sortPoints orders raw points by time: files of one hour partition may
// overlap before compaction, and workers finish in any order. The sort is
// stable so points with equal times keep their archive order.
func sortPoints(ts []int64, vs []float64) ([]int64, []float64) {
	if slices.IsSorted(ts) {
		if ts == nil {
			return []int64{}, []float64{}
		}
		return ts, vs
	}
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ts[idx[a]] < ts[idx[b]] })
	t2 := make([]int64, len(ts))
	v2 := make([]float64, len(vs))
	for i, j := range idx {
		t2[i], v2[i] = ts[j], vs[j]
	}
	return t2, v2
}
