package historytest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// The benchmark archive: one year of a 60 s series among neighbours.
//
// A full archive of 10,000 series at 60 s for a year (5.3 billion rows)
// cannot be generated on the benchmark machine, so this one holds:
//   - the year series YearSource/BenchMetric@BenchTarget, every 60 s for
//     the 365 days from YearStart (525,600 points);
//   - YearNeighbours other series at 60 s for the whole year, with sources
//     sorting on both sides of the year series' (so every hour file holds
//     50 series and row-group statistics cannot skip it on source alone);
//   - the other series of 10,000 (svc-0000 … svc-9999), at 60 s for the
//     last day of the year only, so the last 24 hour files hold all 10,000
//     series (600,000 rows each) and pruning within a file matters.
//
// 40.6 million rows in all.
const (
	BenchSeries    = 10000
	YearNeighbours = 49
	BenchMetric    = "latency"
	BenchTarget    = "host"
)

// YearStart is the first point of the year series.
var YearStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// YearEnd is one past the year series' last point.
var YearEnd = YearStart.Add(365 * 24 * time.Hour)

// YearSource is the source of the year series.
const YearSource = "svc-5000"

func benchSource(i int) string { return fmt.Sprintf("svc-%04d", i) }

// BenchValue is the year series' value at minute m (deterministic, so
// results can be checked).
func BenchValue(series, m int) float64 {
	return 0.05 + 0.02*math.Sin(float64(m)/720+float64(series)) + float64((m*7919+series)%1000)/1e5
}

const benchMarker = ".recon-bench-archive-v1"

// BenchArchive builds the benchmark archive in dir, unless a complete one
// is already there (a marker file is written last), and reports whether it
// built one.
func BenchArchive(dir string) (built bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, benchMarker)); err == nil {
		return false, nil
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return false, fmt.Errorf("historytest: %s holds files but no complete benchmark archive; remove it first", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	w := NewWriter(dir)
	first := 5000 - YearNeighbours/2
	yearSeries := make([]int, 0, YearNeighbours+1)
	for i := first; i <= first+YearNeighbours; i++ {
		yearSeries = append(yearSeries, i)
	}
	const minutes = 365 * 24 * 60
	const perBatch = 64 << 10
	const perWrite = 32 // batches per archiver run (2 M rows)
	var batches []arrow.RecordBatch
	pts := make([]Point, 0, perBatch)
	flush := func(final bool) error {
		if len(pts) > 0 && (len(pts) >= perBatch || final) {
			batches = append(batches, Batch(pts))
			pts = pts[:0]
		}
		if len(batches) >= perWrite || (final && len(batches) > 0) {
			if err := w.Write(batches); err != nil {
				return err
			}
			batches = nil
		}
		return nil
	}
	lastDay := minutes - 24*60
	for m := range minutes {
		ts := YearStart.Add(time.Duration(m) * time.Minute).UnixNano()
		for _, s := range yearSeries {
			pts = append(pts, Point{Source: benchSource(s), Metric: BenchMetric, Target: BenchTarget, Ts: ts, Value: BenchValue(s, m)})
		}
		if m >= lastDay {
			for s := range BenchSeries {
				if s >= first && s <= first+YearNeighbours {
					continue
				}
				pts = append(pts, Point{Source: benchSource(s), Metric: BenchMetric, Target: BenchTarget, Ts: ts, Value: BenchValue(s, m)})
				if len(pts) >= perBatch {
					if err := flush(false); err != nil {
						return false, err
					}
				}
			}
		}
		if err := flush(false); err != nil {
			return false, err
		}
	}
	if err := flush(true); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, benchMarker), nil, 0o644); err != nil {
		return false, err
	}
	return true, nil
}
