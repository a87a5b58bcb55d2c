package mib

import (
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"
)

// cache memoizes Load for Cached.
var cache = struct {
	sync.Mutex
	sets map[string]cached
}{sets: map[string]cached{}}

type cached struct {
	stamp uint64
	set   *Set
}

// Cached is Load, memoized: every source (and every clone of it) that
// names the same directories and modules shares one Set. The set is loaded
// again when a file in the directories is added, removed or changed (name,
// size or modification time).
func Cached(dirs, modules []string) (*Set, error) {
	stamp, err := dirStamp(dirs)
	if err != nil {
		return nil, err
	}
	key := strings.Join(dirs, "\x00") + "\x01" + strings.Join(modules, "\x00")
	cache.Lock()
	defer cache.Unlock()
	if c, ok := cache.sets[key]; ok && c.stamp == stamp {
		return c.set, nil
	}
	set, err := Load(dirs, modules)
	if err != nil {
		return nil, err
	}
	cache.sets[key] = cached{stamp: stamp, set: set}
	return set, nil
}

// dirStamp hashes the name, size and modification time of every file in
// dirs.
func dirStamp(dirs []string) (uint64, error) {
	h := fnv.New64a()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return 0, fmt.Errorf("MIB directory: %w", err)
		}
		fmt.Fprintf(h, "%s\x00", dir)
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return h.Sum64(), nil
}
