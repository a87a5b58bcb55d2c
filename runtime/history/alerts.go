package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/internal/pqfile"
	"github.com/reconmon/recon/runtime/alert"
)

// Transition is one archived alert transition, for marking a chart.
type Transition struct {
	// Time is when the transition happened, in Unix nanoseconds.
	Time     int64  `json:"t"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Previous string `json:"previous"`
	Message  string `json:"message"`
}

// MaxTransitions caps the transitions one Transitions call returns.
const MaxTransitions = 10000

// Transitions returns the alert transitions archived in the alerts table
// (design §3.2) between from (inclusive) and to (exclusive), in time order:
// state changes only, not repeated notifications. At most MaxTransitions
// are returned; truncated says whether more were left out.
func (a *Archive) Transitions(ctx context.Context, from, to time.Time) (out []Transition, truncated bool, err error) {
	if !from.Before(to) || !fitsNS(from) || !fitsNS(to) {
		return nil, false, fmt.Errorf("%w: transitions: from must be before to, both between the years 1678 and 2262", ErrInvalidQuery)
	}
	f, t := from.UnixNano(), to.UnixNano()
	parts, err := a.partitions("alerts", func(hour int64) bool { return hour+hourNS > f && hour < t })
	if err != nil {
		return nil, false, err
	}
	r := newReader(a.cache)
	out = []Transition{}
	for _, p := range parts {
		files, err := a.parquetFiles(p.dir)
		if err != nil {
			return nil, false, err
		}
		for _, file := range files {
			if err := ctx.Err(); err != nil {
				return nil, false, fmt.Errorf("history: transitions: %w", err)
			}
			if out, err = r.readTransitions(file.path, f, t, out); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // compacted away since the listing
				}
				return nil, false, err
			}
		}
	}
	slices.SortStableFunc(out, func(x, y Transition) int { return cmp.Compare(x.Time, y.Time) })
	if len(out) > MaxTransitions {
		return out[:MaxTransitions], true, nil
	}
	return out, false, nil
}

// readTransitions appends the transitions of one alerts file within
// [from, to) to out.
func (r *reader) readTransitions(path string, from, to int64, out []Transition) (_ []Transition, err error) {
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return out, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
	if err := checkFooter(f, fi.Size()); err != nil {
		return out, fmt.Errorf("history: read %s: %w", path, err)
	}
	pf, err := pqfile.Open(f, fi.Size(), pq.SkipBloomFilters(true), pq.SkipPageIndex(true))
	if err != nil {
		return out, fmt.Errorf("history: read %s: %w", path, err)
	}
	names := []string{alert.ColTime, alert.ColRule, alert.ColSeverity, alert.ColPrevious, alert.ColMessage, alert.ColRepeat}
	leaves := make([]int, len(names))
	for i, name := range names {
		leaf, ok := pf.Schema().Lookup(name)
		if !ok {
			return out, fmt.Errorf("history: read %s: no %q column", path, name)
		}
		leaves[i] = leaf.ColumnIndex
	}
	if err := r.pages.CheckPages(f, fi.Size(), pf.Metadata(), leaves, flatLeaves); err != nil {
		return out, fmt.Errorf("history: read %s: %w", path, err)
	}
	for _, rg := range pf.RowGroups() {
		chunks := rg.ColumnChunks()
		if lo, hi, ok := bounds(chunks[leaves[0]]); ok && (hi.Int64() < from || lo.Int64() >= to) {
			continue
		}
		n := rg.NumRows()
		rows := make([]Transition, n)
		keep := make([]bool, n)
		for i := range keep {
			keep[i] = true
		}
		for c, leaf := range leaves {
			err := r.scanColumn(chunks[leaf], 0, n, func(row int64, v pq.Value) bool {
				tr := &rows[row]
				switch c {
				case 0:
					tr.Time = v.Int64()
					keep[row] = keep[row] && tr.Time >= from && tr.Time < to
				case 1:
					tr.Rule = string(v.ByteArray())
				case 2:
					tr.Severity = string(v.ByteArray())
				case 3:
					tr.Previous = string(v.ByteArray())
				case 4:
					tr.Message = string(v.ByteArray())
				case 5:
					keep[row] = keep[row] && !v.Boolean() // a repeated notification is no transition
				}
				return true
			})
			if err != nil {
				return out, fmt.Errorf("history: read %s: %w", path, err)
			}
		}
		for i := range rows {
			if keep[i] {
				out = append(out, rows[i])
			}
		}
	}
	return out, nil
}
