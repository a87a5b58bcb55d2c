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
)

// CatalogEntry is one source and the metrics archived for it.
type CatalogEntry struct {
	Source  string   `json:"source"`
	Metrics []string `json:"metrics"`
}

// Catalog lists the sources and metrics of the most recent hour partitions
// (Options.CatalogHours of them), for a series picker. What a file holds is
// remembered by path, size and modification time: archive files are
// immutable, so a file is read once.
func (a *Archive) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	parts, err := a.partitions(func(int64) bool { return true })
	if err != nil {
		return nil, err
	}
	if len(parts) > a.catalogHours {
		parts = parts[len(parts)-a.catalogHours:]
	}
	seen := make(map[fileKey]bool)
	pairs := make(map[[2]string]bool)
	r := newReader()
	for _, p := range parts {
		files, err := parquetFiles(p.dir)
		if err != nil {
			return nil, err
		}
		for _, path := range files {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("history catalog: %w", err)
			}
			keys, key, err := a.fileSeries(r, path)
			if errors.Is(err, os.ErrNotExist) {
				continue // compacted away since the listing
			}
			if err != nil {
				return nil, err
			}
			seen[key] = true
			for _, k := range keys {
				pairs[[2]string{k.Source, k.Metric}] = true
			}
		}
	}
	a.mu.Lock()
	for k := range a.catalog {
		if !seen[k] {
			delete(a.catalog, k)
		}
	}
	a.mu.Unlock()

	bySource := make(map[string][]string)
	for p := range pairs {
		bySource[p[0]] = append(bySource[p[0]], p[1])
	}
	out := make([]CatalogEntry, 0, len(bySource))
	for src, metrics := range bySource {
		slices.Sort(metrics)
		out = append(out, CatalogEntry{Source: src, Metrics: metrics})
	}
	slices.SortFunc(out, func(x, y CatalogEntry) int { return cmp.Compare(x.Source, y.Source) })
	return out, nil
}

// fileKey identifies one version of an archive file.
type fileKey struct {
	path  string
	size  int64
	mtime time.Time
}

// fileSeries returns the (source, metric) pairs of one file, from the cache
// or by reading its source and metric columns.
func (a *Archive) fileSeries(r *reader, path string) ([]SeriesKey, fileKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fileKey{}, err
	}
	key := fileKey{path: path, size: fi.Size(), mtime: fi.ModTime()}
	a.mu.Lock()
	keys, ok := a.catalog[key]
	a.mu.Unlock()
	if ok {
		return keys, key, nil
	}
	keys, err = r.seriesOf(path)
	if err != nil {
		return nil, key, err
	}
	a.mu.Lock()
	a.catalog[key] = keys
	a.mu.Unlock()
	return keys, key, nil
}

// seriesOf reads the distinct (source, metric) pairs of a file.
func (r *reader) seriesOf(path string) (keys []SeriesKey, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			keys, err = nil, fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
	pf, err := pq.OpenFile(f, fi.Size(), pq.SkipBloomFilters(true), pq.SkipPageIndex(true))
	if err != nil {
		return nil, fmt.Errorf("history: read %s: %w", path, err)
	}
	cols, err := lookupColumns(pf.Schema())
	if err != nil {
		return nil, fmt.Errorf("history: read %s: %w", path, err)
	}
	for _, rg := range pf.RowGroups() {
		n := rg.NumRows()
		sources := make([]string, 0, 16)
		runEnds := make([]int64, 0, 16)
		err := r.scanColumn(rg.ColumnChunks()[cols.source], 0, n, func(row int64, v pq.Value) bool {
			if k := len(sources); k == 0 || sources[k-1] != string(v.ByteArray()) {
				if k > 0 {
					runEnds[k-1] = row
				}
				sources = append(sources, string(v.ByteArray()))
				runEnds = append(runEnds, n)
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("history: read %s: %w", path, err)
		}
		si := 0
		last := SeriesKey{}
		err = r.scanColumn(rg.ColumnChunks()[cols.metric], 0, n, func(row int64, v pq.Value) bool {
			for row >= runEnds[si] {
				si++
			}
			k := SeriesKey{Source: sources[si], Metric: string(v.ByteArray())}
			if k != last {
				keys = append(keys, k)
				last = k
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("history: read %s: %w", path, err)
		}
	}
	return keys, nil
}
