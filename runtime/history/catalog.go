package history

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// CatalogEntry is one source and the metrics archived for it.
type CatalogEntry struct {
	Source  string   `json:"source"`
	Metrics []string `json:"metrics"`
}

// Catalog lists the sources and metrics of the most recent hour partitions
// (Options.CatalogHours of them), for a series picker. It reads each file's
// series index, which queries share.
func (a *Archive) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	parts, err := a.partitions("samples", func(int64) bool { return true })
	if err != nil {
		return nil, err
	}
	if len(parts) > a.catalogHours {
		parts = parts[len(parts)-a.catalogHours:]
	}
	pairs := make(map[[2]string]bool)
	r := newReader(a.cache)
	for _, p := range parts {
		files, err := a.parquetFiles(p.dir)
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("history catalog: %w", err)
			}
			idx, err := r.fileIndex(file)
			if errors.Is(err, os.ErrNotExist) {
				continue // compacted away since the listing
			}
			if err != nil {
				return nil, err
			}
			for _, g := range idx.groups {
				for _, run := range g.runs {
					pairs[[2]string{run.Source, run.Metric}] = true
				}
			}
		}
	}
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

// fileIndex returns the series index of the file at path, from the cache
// or by reading the file's key columns.
func (r *reader) fileIndex(key fileKey) (idx *seriesIndex, err error) {
	if idx := r.cache.get(key); idx != nil && idx.pairs == nil {
		return idx, nil
	}
	path := key.path
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer func() {
		if p := recover(); p != nil {
			idx, err = nil, fmt.Errorf("history: read %s: corrupt parquet file: %v", path, p)
		}
	}()
	pf, cols, err := r.open(f, key.size)
	if err != nil {
		return nil, fmt.Errorf("history: read %s: %w", path, err)
	}
	if idx, err = r.index(pf, key, cols); err != nil {
		return nil, fmt.Errorf("history: read %s: %w", path, err)
	}
	return idx, nil
}
