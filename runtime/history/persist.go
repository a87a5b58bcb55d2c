package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go/format"
)

// The series indexes of a partition's files are kept on disk, one index
// file per hour partition under indexDir of the archive, so that a new
// process (recond restarted) does not list every partition and open every
// file of a long range with the Parquet library to find where a series
// lies: it reads one small file per hour and then only the ts and value
// chunks of the series (see readLean), or nothing at all for runs whose
// summary stands for them.
//
// An index file records the partition directory's listing (names, sizes,
// modification times) and the directory's modification time, which
// changes whenever a file is added, removed or renamed into it (how the
// archiver and compaction write): the recorded listing is used only while
// the directory's modification time is the recorded one (and older than
// racyWindow), else the directory is listed again. An index entry is used
// only for a file of the same name, size and modification time; a file
// compacted, rewritten or added since is read again and the index file
// rewritten. The directory is hidden: the archiver and readers of
// samples/**/*.parquet never see it.
const indexDir = ".history-index"

const indexMagic = "RHX4"

// persistAfter is how long after an hour ends its partition's index is
// written: the current hour changes with every flush of the archiver.
const persistAfter = time.Hour

// indexEntry is one file of a partition as stored, with its index when it
// was built (nil for a file no query needed to index).
type indexEntry struct {
	name  string
	size  int64
	mtime int64
	idx   *seriesIndex
}

// indexPath is the index file of the hour partition p.
func (a *Archive) indexPath(p partition) string {
	return filepath.Join(a.dir, indexDir, "samples", time.Unix(0, p.hour).UTC().Format("2006-01-02T15")+".idx")
}

// encodeIndex serialises a partition's index: a string table, the
// directory's modification time, then per file its key and, when indexed,
// per row group its ts bounds, chunk locations and runs, then a CRC.
func encodeIndex(dirMtime int64, entries []indexEntry) []byte {
	strs := map[string]int{}
	var table []string
	id := func(s string) uint64 {
		i, ok := strs[s]
		if !ok {
			i = len(table)
			strs[s] = i
			table = append(table, s)
		}
		return uint64(i)
	}
	var body []byte
	body = binary.AppendVarint(body, dirMtime)
	body = binary.AppendUvarint(body, uint64(len(entries)))
	for _, e := range entries {
		body = appendString(body, e.name)
		body = binary.AppendVarint(body, e.size)
		body = binary.AppendVarint(body, e.mtime)
		body = appendBool(body, e.idx != nil)
		if e.idx == nil {
			continue
		}
		body = appendBool(body, e.idx.sorted)
		body = binary.AppendUvarint(body, uint64(len(e.idx.groups)))
		for _, g := range e.idx.groups {
			body = appendBool(body, g.hasTs)
			body = binary.AppendVarint(body, g.tsMin)
			body = binary.AppendVarint(body, g.tsMax)
			body = appendBool(body, g.lean)
			body = appendChunk(body, g.ts)
			body = appendChunk(body, g.value)
			body = binary.AppendUvarint(body, uint64(len(g.runs)))
			for _, r := range g.runs {
				body = binary.AppendUvarint(body, id(r.Source))
				body = binary.AppendUvarint(body, id(r.Metric))
				body = binary.AppendUvarint(body, id(r.Target))
				// Runs are contiguous from row 0: only lengths are kept;
				// times are kept relative to the group's ts minimum.
				body = binary.AppendVarint(body, r.end-r.start)
				body = appendBool(body, r.agg.ok)
				if r.agg.ok {
					body = binary.AppendVarint(body, r.agg.count)
					body = binary.AppendVarint(body, r.agg.tsMin-g.tsMin)
					body = binary.AppendVarint(body, r.agg.tsMax-r.agg.tsMin)
					body = binary.LittleEndian.AppendUint64(body, math.Float64bits(r.agg.min))
					body = binary.LittleEndian.AppendUint64(body, math.Float64bits(r.agg.max))
					body = binary.LittleEndian.AppendUint64(body, math.Float64bits(r.agg.sum))
				}
			}
		}
	}
	out := append([]byte(indexMagic), binary.AppendUvarint(nil, uint64(len(table)))...)
	for _, s := range table {
		out = appendString(out, s)
	}
	out = append(out, body...)
	return binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(out))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendChunk(b []byte, c chunkRef) []byte {
	b = binary.AppendVarint(b, c.offset)
	b = binary.AppendVarint(b, c.length)
	b = binary.AppendVarint(b, int64(c.codec))
	return appendBool(b, c.optional)
}

// indexDecoder reads an index file, failing (never panicking) on any
// damage.
type indexDecoder struct {
	b   []byte
	err error
}

func (d *indexDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("index file damaged: %s", what)
	}
}

func (d *indexDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *indexDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items taking at least min bytes each.
func (d *indexDecoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("count larger than the file")
		return 0
	}
	return int(n)
}

// addOK reports whether a+b does not overflow.
func addOK(a, b int64) bool {
	c := a + b
	return (b >= 0) == (c >= a)
}

func (d *indexDecoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail("number past the end")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *indexDecoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("bad flag")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// internString reads a string, returning the interned copy.
func (d *indexDecoder) internString(intern map[string]string) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string past the end")
		return ""
	}
	s, ok := intern[string(d.b[:n])]
	if !ok {
		s = string(d.b[:n])
		intern[s] = s
	}
	d.b = d.b[n:]
	return s
}

func (d *indexDecoder) chunk() chunkRef {
	c := chunkRef{offset: d.varint(), length: d.varint()}
	codec := d.varint()
	c.optional = d.bool()
	if c.offset < 0 || c.length < 0 || c.offset > math.MaxInt64-c.length || codec < 0 || codec > math.MaxInt32 {
		d.fail("bad column chunk")
	}
	c.codec = format.CompressionCodec(codec)
	return c
}

// decodeIndex parses an index file written by encodeIndex. Names are
// interned in intern (shared by the partitions a worker reads, which
// repeat the same sources and metrics).
func decodeIndex(b []byte, intern map[string]string) (dirMtime int64, _ []indexEntry, _ error) {
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return 0, nil, errors.New("not a history index file")
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(b[:len(b)-4]) != sum {
		return 0, nil, errors.New("index file damaged: checksum mismatch")
	}
	d := &indexDecoder{b: b[len(indexMagic) : len(b)-4]}
	table := make([]string, d.count(1))
	for i := range table {
		table[i] = d.internString(intern)
	}
	str := func() string {
		i := d.uvarint()
		if i >= uint64(len(table)) {
			d.fail("string index out of range")
			return ""
		}
		return table[i]
	}
	dirMtime = d.varint()
	entries := make([]indexEntry, d.count(4))
	for i := range entries {
		e := &entries[i]
		e.name, e.size, e.mtime = d.internString(intern), d.varint(), d.varint()
		if e.size < 0 || e.name == "" || strings.ContainsAny(e.name, "/\\") {
			d.fail("bad file name or size")
		}
		if !d.bool() {
			if d.err != nil {
				return 0, nil, d.err
			}
			continue
		}
		idx := &seriesIndex{sorted: d.bool()}
		idx.groups = make([]indexGroup, d.count(8))
		for g := range idx.groups {
			ig := &idx.groups[g]
			ig.hasTs, ig.tsMin, ig.tsMax = d.bool(), d.varint(), d.varint()
			ig.lean = d.bool()
			ig.ts, ig.value = d.chunk(), d.chunk()
			slab := make([]seriesRun, d.count(5))
			ig.runs = make([]*seriesRun, len(slab))
			row := int64(0)
			for k := range slab {
				r := &slab[k]
				r.Source, r.Metric, r.Target = str(), str(), str()
				n := d.varint()
				if n <= 0 || row > math.MaxInt64-n {
					d.fail("bad run length")
				}
				r.start, r.end = row, row+n
				row = r.end
				if r.agg.ok = d.bool(); r.agg.ok {
					count, off, span := d.varint(), d.varint(), d.varint()
					if count < 0 || count > n || span < 0 || !addOK(ig.tsMin, off) || !addOK(ig.tsMin+off, span) {
						d.fail("bad run summary")
					}
					r.agg.count, r.agg.tsMin = count, ig.tsMin+off
					r.agg.tsMax = r.agg.tsMin + span
					r.agg.min, r.agg.max, r.agg.sum = d.float(), d.float(), d.float()
				}
				ig.runs[k] = r
			}
			idx.runs += len(slab)
		}
		e.idx = idx
		if d.err != nil {
			return 0, nil, d.err
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return dirMtime, entries, nil
}

// partitionFiles lists the Parquet files of partition p and puts their
// stored indexes that are still current into the cache. The listing is the
// one kept in memory or recorded in the index file while the directory is
// unchanged, else the directory is read. stored says whether the index
// file already records this listing.
func (a *Archive) partitionFiles(p partition, r *reader, intern map[string]string) (files []fileKey, dirMtime time.Time, stored bool, err error) {
	fi, err := os.Stat(p.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, true, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("history: list archive: %w", err)
	}
	dirMtime = fi.ModTime()
	if items, ok := a.dirs.cached(p.dir, dirMtime); ok && a.allCached(items) {
		return itemFiles(items), dirMtime, true, nil
	}
	recorded, entries := a.readIndex(p, r, intern)
	var items []dirItem
	if recorded == dirMtime.UnixNano() && time.Since(dirMtime) > racyWindow {
		items = make([]dirItem, len(entries))
		for i, e := range entries {
			items[i] = dirItem{name: e.name, file: fileKey{path: filepath.Join(p.dir, e.name), size: e.size, mtime: time.Unix(0, e.mtime)}}
		}
		a.dirs.keep(p.dir, dirMtime, items)
		stored = true
	} else if items, err = a.dirs.listAt(p.dir, dirMtime); err != nil {
		return nil, time.Time{}, false, err
	}
	byName := make(map[string]*indexEntry, len(entries))
	for i := range entries {
		byName[entries[i].name] = &entries[i]
	}
	for _, it := range items {
		if it.isDir {
			continue
		}
		f := it.file
		e, ok := byName[it.name]
		if ok && e.idx != nil && e.size == f.size && e.mtime == f.mtime.UnixNano() && a.cache.get(f) == nil {
			a.cache.put(f, e.idx)
		}
	}
	return itemFiles(items), dirMtime, stored, nil
}

// allCached reports whether every file of a listing has its index in the
// cache.
func (a *Archive) allCached(items []dirItem) bool {
	for _, it := range items {
		if !it.isDir && a.cache.get(it.file) == nil {
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

// readIndex returns the partition's index file's recorded directory time
// and entries; a missing or damaged file is no entries (it is rebuilt).
func (a *Archive) readIndex(p partition, r *reader, intern map[string]string) (int64, []indexEntry) {
	path := a.indexPath(p)
	b, err := r.readIndexFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("history: read the partition's index", "path", path, "err", err)
		}
		return 0, nil
	}
	mtime, entries, err := decodeIndex(b, intern)
	if err != nil {
		a.log.Warn("history: the partition's index is unusable; it will be rebuilt", "path", path, "err", err)
		return 0, nil
	}
	return mtime, entries
}

// readIndexFile reads the file at path into the reader's buffer, valid
// until the next call.
func (r *reader) readIndexFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxIndexBytes {
		return nil, fmt.Errorf("index file of %d bytes", fi.Size())
	}
	if int64(cap(r.idxBuf)) < fi.Size() {
		r.idxBuf = make([]byte, fi.Size())
	}
	b := r.idxBuf[:fi.Size()]
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// maxIndexBytes bounds the index file of one hour (10,000 series take
// about 0.6 MB).
const maxIndexBytes = 256 << 20

// storeIndex writes the partition's index file (its listing, and the
// indexes of its files in the cache) once the hour is old enough to be
// settled.
func (a *Archive) storeIndex(p partFiles, dirMtime, now time.Time) {
	if p.hour+hourNS+int64(persistAfter) > now.UnixNano() {
		return
	}
	entries := make([]indexEntry, 0, len(p.files))
	for _, f := range p.files {
		entries = append(entries, indexEntry{name: filepath.Base(f.path), size: f.size, mtime: f.mtime.UnixNano(), idx: a.cache.get(f)})
	}
	path := a.indexPath(p.partition)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		a.log.Debug("history: write the partition's index", "path", path, "err", err)
		return
	}
	if err := writeDurable(filepath.Dir(path), filepath.Base(path), encodeIndex(dirMtime.UnixNano(), entries)); err != nil {
		a.log.Debug("history: write the partition's index", "path", path, "err", err)
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
