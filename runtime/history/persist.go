package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The series indexes of the archive files are kept on disk, one index
// file per day under indexDir of the archive, with a section per hour
// partition of the day, so that a new process (recond restarted) does not
// list every partition and open every file of a long range with the
// Parquet library to find where a series lies: a year's query reads 365
// index files, looks its series up in each archive file's stored index
// (stored.go: a directory of series, so only that series' runs are
// decoded), and then reads only the ts and value chunks of the series (see
// readLean), or nothing at all for runs whose summary stands for them.
//
// A section records the partition directory's listing (names, sizes,
// modification times) and the directory's modification time, which
// changes whenever a file is added, removed or renamed into it (how the
// archiver and compaction write): the recorded listing is used only while
// the directory's modification time is the recorded one (and older than
// racyWindow), else the directory is listed again. A stored file index is
// used only for a file of the same name, size and modification time; a
// file compacted, rewritten or added since is read again and the section
// rewritten. The directory is hidden: the archiver and readers of
// samples/**/*.parquet never see it.
const indexDir = ".history-index"

// indexMagic starts every index file and names its format; files of
// another format (RHX4: one file per hour, every run decoded on use) are
// not read: their partitions are indexed again, into day files, and the
// hour files removed.
const indexMagic = "RHX5"

// castagnoli is the CRC of index files (a CPU instruction on amd64 and
// arm64: a day of 10,000 series, 20 MB, is checked in about a millisecond).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// persistAfter is how long after an hour ends its partition's index is
// written: the current hour changes with every flush of the archiver.
const persistAfter = time.Hour

// dayNS is one day in nanoseconds.
const dayNS = 24 * hourNS

// dayOf returns the start of the UTC day holding the hour starting at
// hour (Unix nanoseconds).
func dayOf(hour int64) int64 {
	d := hour / dayNS * dayNS
	if d > hour {
		d -= dayNS
	}
	return d
}

// dayPart is one hour partition as a day index file records it.
type dayPart struct {
	hour     int // of the day, 0-23
	dirMtime int64
	files    []fileRecord
}

// fileRecord is one archive file of a partition as recorded: its name,
// size and modification time and, when a query needed it indexed, its
// stored index (see stored.go).
type fileRecord struct {
	name        []byte
	size, mtime int64
	index       []byte
}

// dayIndexPath is the index file of the day starting at day.
func (a *Archive) dayIndexPath(day int64) string {
	return filepath.Join(a.dir, indexDir, "samples", time.Unix(0, day).UTC().Format(time.DateOnly)+".idx")
}

// encodeDay serialises the sections of a day (in hour order): per hour
// its directory's modification time and per file its key and stored
// index, then a CRC of everything.
func encodeDay(parts []dayPart) []byte {
	b := append([]byte(nil), indexMagic...)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(p.hour))
		b = binary.AppendVarint(b, p.dirMtime)
		b = binary.AppendUvarint(b, uint64(len(p.files)))
		for _, f := range p.files {
			b = binary.AppendUvarint(b, uint64(len(f.name)))
			b = append(b, f.name...)
			b = binary.AppendVarint(b, f.size)
			b = binary.AppendVarint(b, f.mtime)
			b = binary.AppendUvarint(b, uint64(len(f.index)))
			b = append(b, f.index...)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeDay parses a day index file into its sections, whose names and
// stored indexes are slices of b. The stored indexes are only located
// here; a query decodes the little of them it needs.
func decodeDay(b []byte) ([]dayPart, error) {
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, errors.New("not a history index file of this version")
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("index file damaged: checksum mismatch")
	}
	d := &indexDecoder{b: b[len(indexMagic) : len(b)-4]}
	var parts []dayPart
	var files []fileRecord
	var ends []int
	for range d.count(3) {
		hour := d.uvarint()
		if hour > 23 || (len(parts) > 0 && int(hour) <= parts[len(parts)-1].hour) {
			d.fail("hours out of order")
		}
		parts = append(parts, dayPart{hour: int(hour), dirMtime: d.varint()})
		for range d.count(4) {
			f := fileRecord{name: d.bytes(d.count(1))}
			f.size, f.mtime = d.varint(), d.varint()
			f.index = d.bytes(d.count(1))
			if f.size < 0 || len(f.name) == 0 || bytes.ContainsAny(f.name, "/\\") {
				d.fail("bad file name or size")
			}
			if d.err != nil {
				break
			}
			files = append(files, f)
		}
		if d.err != nil {
			return nil, d.err
		}
		ends = append(ends, len(files))
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	lo := 0
	for i, hi := range ends {
		parts[i].files = files[lo:hi:hi]
		lo = hi
	}
	return parts, nil
}

// dayShare is the index file of one day as the partitions of the day a
// query reads share it: read once, by the first worker that needs it,
// into a pooled buffer released when the day's last partition is done.
// The day's index file is then rewritten, once, if its partitions need it.
type dayShare struct {
	start int64
	once  sync.Once
	buf   *[]byte
	parts []dayPart

	dirOnce sync.Once
	dir     dayDir // the day's directory, open while dirErr is nil
	dirErr  error

	mu      sync.Mutex
	left    int // partitions of the day not done
	updates []partUpdate
	closed  bool
}

// shareDays returns, for each of parts (in hour order), its day's share.
func shareDays(parts []partition) []*dayShare {
	out := make([]*dayShare, len(parts))
	var d *dayShare
	for i, p := range parts {
		if start := dayOf(p.hour); d == nil || d.start != start {
			d = &dayShare{start: start}
		}
		d.left++
		out[i] = d
	}
	return out
}

// dayBufs holds the buffers day index files are read into.
var dayBufs = sync.Pool{New: func() any { return new([]byte) }}

// load reads the day's index file, once; a missing or damaged file is no
// sections (they are rebuilt).
func (d *dayShare) load(a *Archive) {
	d.once.Do(func() {
		path := a.dayIndexPath(d.start)
		d.buf = dayBufs.Get().(*[]byte)
		b, err := readWhole(path, *d.buf, maxIndexBytes)
		*d.buf = b
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				a.log.Warn("history: read the day's index", "path", path, "err", err)
			}
			return
		}
		if d.parts, err = decodeDay(b); err != nil {
			a.log.Warn("history: the day's index is unusable; it will be rebuilt", "path", path, "err", err)
		}
	})
}

// statHour returns the modification time of the directory of p, an hour
// of the day, stat'ed relative to the day's directory (opened once).
func (d *dayShare) statHour(p partition) (time.Time, error) {
	d.dirOnce.Do(func() { d.dir, d.dirErr = openDayDir(filepath.Dir(p.dir)) })
	if d.dirErr != nil {
		return time.Time{}, d.dirErr
	}
	return d.dir.statDir(filepath.Base(p.dir))
}

// close closes the day's directory, once all its partitions are done or
// the query ends; the share is not used after.
func (d *dayShare) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	d.dirOnce.Do(func() { d.dirErr = errors.New("closed") })
	if d.dirErr == nil {
		d.dir.close()
	}
}

// part returns the recorded section of the hour partition p, or nil.
func (d *dayShare) part(p partition) *dayPart {
	h := int((p.hour - d.start) / hourNS)
	for i := range d.parts {
		if d.parts[i].hour == h {
			return &d.parts[i]
		}
	}
	return nil
}

// done records that a partition of the day was read, with the update of
// its section if it needs one. The last partition of the day writes the
// updates and releases the buffer.
func (d *dayShare) done(a *Archive, u *partUpdate) {
	d.mu.Lock()
	if u != nil {
		d.updates = append(d.updates, *u)
	}
	d.left--
	last := d.left == 0
	d.mu.Unlock()
	if !last {
		return
	}
	d.close()
	if d.buf != nil {
		d.parts = nil
		dayBufs.Put(d.buf)
		d.buf = nil
	}
	if len(d.updates) > 0 {
		a.storeDay(d.start, d.updates, time.Now())
	}
}

// maxIndexBytes bounds the index file of one day (a day of 10,000 series
// in hour files takes about 20 MB).
const maxIndexBytes = 1 << 30

// partitionFiles lists the Parquet files of partition p and puts the
// stored indexes of its files that are still current, looked up for the
// query's source and metric, into the cache. The listing is the one kept
// in memory or recorded in the day's index file while the directory is
// unchanged, else the directory is read. stored says whether the index
// file already records this listing.
func (a *Archive) partitionFiles(p partition, r *reader, d *dayShare, want smPair) (files []fileKey, dirMtime time.Time, stored bool, err error) {
	dirMtime, err = d.statHour(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, time.Time{}, true, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("history: list archive: %w", err)
	}
	if items, ok := a.dirs.cached(p.dir, dirMtime); ok && a.allCovered(items, want) {
		return itemFiles(items), dirMtime, true, nil
	}
	d.load(a)
	rec := d.part(p)
	var items []dirItem
	if rec != nil && rec.dirMtime == dirMtime.UnixNano() && time.Since(dirMtime) > racyWindow {
		var ok bool
		if items, ok = a.dirs.cached(p.dir, dirMtime); !ok {
			items = make([]dirItem, len(rec.files))
			for i, f := range rec.files {
				name := string(f.name)
				items[i] = dirItem{name: name, file: fileKey{path: filepath.Join(p.dir, name), size: f.size, mtime: time.Unix(0, f.mtime)}}
			}
			a.dirs.keep(p.dir, dirMtime, items)
		}
		stored = true
	} else if items, err = a.dirs.listAt(p.dir, dirMtime); err != nil {
		return nil, time.Time{}, false, err
	}
	if rec == nil {
		return itemFiles(items), dirMtime, stored, nil
	}
	next := 0
	for _, it := range items {
		if it.isDir {
			continue
		}
		old := a.cache.get(it.file)
		if old != nil && old.covers(want.source, want.metric) {
			continue
		}
		f := rec.file(it.name, &next)
		if f == nil || len(f.index) == 0 || f.size != it.file.size || f.mtime != it.file.mtime.UnixNano() {
			continue
		}
		idx, err := r.lookupStored(f.index, want)
		if err != nil {
			a.log.Warn("history: a file's stored index is unusable; the file is read instead", "path", it.file.path, "err", err)
			continue
		}
		if old != nil && old.pairs != nil && len(old.groups) == len(idx.groups) {
			idx = old.withPair(idx)
		}
		a.cache.put(it.file, idx)
	}
	return itemFiles(items), dirMtime, stored, nil
}

// file returns the record of the file called name, or nil. The records
// and a directory listing are both in name order: the search starts at
// *next, which is moved past the record found, so that looking up a whole
// listing is linear.
func (p *dayPart) file(name string, next *int) *fileRecord {
	for k := range p.files {
		i := (*next + k) % len(p.files)
		if string(p.files[i].name) == name {
			*next = i + 1
			return &p.files[i]
		}
	}
	return nil
}

// lookupStored returns the index of a file restricted to want, from its
// stored index b.
func (r *reader) lookupStored(b []byte, want smPair) (*seriesIndex, error) {
	if err := openStoredIndex(&r.stored, b); err != nil {
		return nil, err
	}
	return r.stored.lookup(want.source, want.metric, r.intern)
}

// allCovered reports whether every file of a listing has in the cache an
// index that knows the series of want.
func (a *Archive) allCovered(items []dirItem, want smPair) bool {
	for _, it := range items {
		if it.isDir {
			continue
		}
		if idx := a.cache.get(it.file); idx == nil || !idx.covers(want.source, want.metric) {
			return false
		}
	}
	return true
}

func itemFiles(items []dirItem) []fileKey {
	var out []fileKey
	for _, it := range items {
		if !it.isDir {
			out = append(out, it.file)
		}
	}
	return out
}

// partUpdate is a partition whose section of the day's index file is to
// be rewritten: its listing and directory time as the query saw them.
type partUpdate struct {
	partFiles
	dirMtime time.Time
}

// storeDay rewrites the day's index file with new sections for the
// partitions of updates that are old enough to be settled, keeping the
// file's other sections. A file's stored index is the one in the cache
// when it is complete (read from the Parquet file), else the one the file
// recorded for the same version of the file, else none. Writers of one
// day are serialised; the file is read again under the lock so that
// concurrent work units of the same day keep each other's sections.
func (a *Archive) storeDay(start int64, updates []partUpdate, now time.Time) {
	updates = slices.DeleteFunc(updates, func(u partUpdate) bool { return u.hour+hourNS+int64(persistAfter) > now.UnixNano() })
	if len(updates) == 0 {
		return
	}
	mu := &a.dayLocks[uint64(start/dayNS)%uint64(len(a.dayLocks))]
	mu.Lock()
	defer mu.Unlock()
	path := a.dayIndexPath(start)
	var parts []dayPart
	if old, err := readWhole(path, nil, maxIndexBytes); err == nil {
		// A damaged file keeps no sections: they are rebuilt.
		parts, _ = decodeDay(old)
	}
	for _, u := range updates {
		hour := int((u.hour - start) / hourNS)
		i, found := slices.BinarySearchFunc(parts, hour, func(p dayPart, h int) int { return p.hour - h })
		var old *dayPart
		if found {
			old = &parts[i]
		}
		np := dayPart{hour: hour, dirMtime: u.dirMtime.UnixNano(), files: make([]fileRecord, 0, len(u.files))}
		next := 0
		for _, f := range u.files {
			name := filepath.Base(f.path)
			rec := fileRecord{name: []byte(name), size: f.size, mtime: f.mtime.UnixNano()}
			if idx := a.cache.get(f); idx != nil && idx.pairs == nil {
				rec.index = encodeFileIndex(nil, idx)
			} else if old != nil {
				if of := old.file(name, &next); of != nil && of.size == rec.size && of.mtime == rec.mtime {
					rec.index = of.index
				}
			}
			np.files = append(np.files, rec)
		}
		if found {
			parts[i] = np
		} else {
			parts = slices.Insert(parts, i, np)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.log.Debug("history: write the day's index", "path", path, "err", err)
		return
	}
	if err := writeDurable(dir, filepath.Base(path), encodeDay(parts)); err != nil {
		a.log.Debug("history: write the day's index", "path", path, "err", err)
		return
	}
	a.dropHourIndexes.Do(func() { a.removeHourIndexes(dir) })
}

// removeHourIndexes removes the index files of the previous format (one
// per hour, named <date>T<hour>.idx) from dir, once per Archive.
func (a *Archive) removeHourIndexes(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		a.log.Debug("history: list the index directory", "dir", dir, "err", err)
		return
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		stem, ok := strings.CutSuffix(name, ".idx")
		if !ok || len(stem) != len("2006-01-02T15") {
			continue
		}
		if _, err := time.Parse("2006-01-02T15", stem); err != nil {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Debug("history: remove an index file of the previous format", "path", name, "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		a.log.Info("history: removed the index files of the previous format", "dir", dir, "files", removed)
	}
}

// writeDurable writes data to dir/name through a temporary file: written,
// fsynced, renamed over name, and the directory fsynced, so that a crash
// leaves the old file or the new, never a part.
func writeDurable(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
