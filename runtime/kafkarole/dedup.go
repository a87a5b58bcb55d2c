package kafkarole

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// originPos is a position in a collector's journal: the journal offset of
// the batch and the piece of it (a batch split into several messages).
type originPos struct {
	Offset int64 `json:"offset"`
	Piece  int64 `json:"piece"`
}

func (p originPos) after(q originPos) bool {
	return p.Offset > q.Offset || (p.Offset == q.Offset && p.Piece > q.Piece)
}

// parseOriginPos reads a kafkabus.HeaderOriginPos value.
func parseOriginPos(s string) (originPos, error) {
	o, pc, ok := strings.Cut(s, ":")
	if !ok {
		return originPos{}, fmt.Errorf("origin position %q: want offset:piece", s)
	}
	off, err1 := strconv.ParseInt(o, 10, 64)
	piece, err2 := strconv.ParseInt(pc, 10, 64)
	if err := errors.Join(err1, err2); err != nil || off < 0 || piece < 0 {
		return originPos{}, fmt.Errorf("origin position %q: want offset:piece", s)
	}
	return originPos{off, piece}, nil
}

// dedupFile is what a partition's dedup state file holds: the last range
// the archivers committed ([First, Next) in Kafka offsets) and, per origin,
// the last position kept before and after it. A new owner of the
// partition resumes at Next when the commit reached Kafka, or at First
// when it did not (the range is then rewritten under the same names and
// must be filtered exactly as the first time).
type dedupFile struct {
	First  int64                `json:"first"`
	Next   int64                `json:"next"`
	Before map[string]originPos `json:"before"`
	After  map[string]originPos `json:"after"`
}

type originUpdate struct {
	offset int64
	origin string
	pos    originPos
}

// dedup drops, within one partition, the messages a restarted collector
// forwarded a second time: a message whose origin position is not after
// the last one kept from the same origin.
type dedup struct {
	path      string
	next      int64 // Kafka offset the committed state reflects
	committed map[string]originPos
	current   map[string]originPos // committed + pending
	pending   []originUpdate
}

func dedupPath(archiveDir, topic string, part int32) string {
	return filepath.Join(archiveDir, ".kafka", topic, fmt.Sprintf("p%d.json", part))
}

// loadDedup restores the state of a partition assigned at Kafka offset
// start (negative when the group never committed). It reports false when
// a saved state does not match start: positions from before it are
// unknown and a replayed batch may then be kept twice.
func loadDedup(path string, start int64) (*dedup, bool, error) {
	d := &dedup{path: path, next: start, committed: map[string]originPos{}}
	data, err := os.ReadFile(path)
	matched := true
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, fmt.Errorf("read dedup state: %w", err)
	default:
		var f dedupFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, false, fmt.Errorf("dedup state %s is damaged (%v): move it away to start", path, err)
		}
		switch start {
		case f.Next:
			d.committed = f.After
		case f.First:
			d.committed = f.Before
		default:
			matched = false
		}
		if d.committed == nil {
			d.committed = map[string]originPos{}
		}
	}
	d.current = maps.Clone(d.committed)
	return d, matched, nil
}

// keep decides on a fetched message at Kafka offset off: false for a
// duplicate. Messages without an origin are always kept.
func (d *dedup) keep(off int64, origin string, pos originPos) bool {
	if origin == "" {
		return true
	}
	if last, ok := d.current[origin]; ok && !pos.after(last) {
		return false
	}
	d.current[origin] = pos
	d.pending = append(d.pending, originUpdate{off, origin, pos})
	return true
}

// commit makes the state as of Kafka offset off (inclusive) durable; the
// caller commits off to Kafka afterwards.
func (d *dedup) commit(off int64) error {
	after := maps.Clone(d.committed)
	n := 0
	for _, u := range d.pending {
		if u.offset <= off {
			after[u.origin] = u.pos
			n++
		}
	}
	f := dedupFile{First: d.next, Next: off + 1, Before: d.committed, After: after}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode dedup state: %w", err)
	}
	if err := writeFileDurable(d.path, data); err != nil {
		return err
	}
	d.pending = append(d.pending[:0], d.pending[n:]...)
	d.committed, d.next = after, off+1
	return nil
}

// writeFileDurable writes path through a temp file: write, fsync, rename,
// fsync the directory.
func writeFileDurable(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
