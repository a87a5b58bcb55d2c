package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// dirItem is one entry of a listed archive directory: a subdirectory, or
// an archive file with the key its cached index is filed under.
type dirItem struct {
	name  string
	isDir bool
	file  fileKey
}

type dirListing struct {
	mtime time.Time
	items []dirItem
}

// dirCache remembers directory listings by the directory's modification
// time, which changes whenever an entry is created, removed or renamed
// (how the archiver and compaction add and replace files), so an unchanged
// partition costs one stat instead of a listing and a stat per file.
// Listings of directories modified within racyWindow are not reused: a
// change in the same clock tick as the listing could go unnoticed.
type dirCache struct {
	mu   sync.Mutex
	dirs map[string]dirListing
}

const racyWindow = 2 * time.Second

func newDirCache() *dirCache { return &dirCache{dirs: make(map[string]dirListing)} }

// list returns the subdirectories and archive files (*.parquet, hidden
// names skipped: temporary and intent files) of dir. A missing dir is
// empty.
func (c *dirCache) list(dir string) ([]dirItem, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: list archive: %w", err)
	}
	return c.listAt(dir, fi.ModTime())
}

// cached returns the listing of dir kept for modification time mtime.
func (c *dirCache) cached(dir string, mtime time.Time) ([]dirItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.dirs[dir]
	if ok && l.mtime.Equal(mtime) {
		return l.items, true
	}
	return nil, false
}

// keep records the listing of dir at modification time mtime, unless dir
// changed within racyWindow.
func (c *dirCache) keep(dir string, mtime time.Time, items []dirItem) {
	if time.Since(mtime) > racyWindow {
		c.mu.Lock()
		c.dirs[dir] = dirListing{mtime: mtime, items: items}
		c.mu.Unlock()
	}
}

// listAt lists dir, whose modification time is mtime.
func (c *dirCache) listAt(dir string, mtime time.Time) ([]dirItem, error) {
	if items, ok := c.cached(dir, mtime); ok {
		return items, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: list archive: %w", err)
	}
	items := make([]dirItem, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
		case e.IsDir():
			items = append(items, dirItem{name: name, isDir: true})
		case e.Type().IsRegular() && strings.HasSuffix(name, ".parquet"):
			info, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("history: list archive: %w", err)
			}
			path := filepath.Join(dir, name)
			items = append(items, dirItem{name: name, file: fileKey{path: path, size: info.Size(), mtime: info.ModTime()}})
		}
	}
	c.keep(dir, mtime, items)
	return items, nil
}
