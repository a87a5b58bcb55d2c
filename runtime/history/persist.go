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
	"time"

	"github.com/parquet-go/parquet-go/format"
)

// The series indexes of a partition's files are kept on disk beside them,
// in indexFile of the hour directory, so that a new process (recond
// restarted) does not open every file of a long range with the Parquet
// library to find where a series lies: it reads one small file per hour
// and then only the ts and value chunks of the series (see readLean).
//
// An entry is used only for the file of the same name, size and
// modification time as when it was written; a file compacted, rewritten or
// added since is read again and the index file rewritten. Hidden names are
// ignored by the archiver's listings and by readers of *.parquet.
const indexFile = ".history-index"

const indexMagic = "RHX2"

// persistAfter is how long after an hour ends its partition's index is
// written: the current hour changes with every flush of the archiver.
const persistAfter = time.Hour

// indexEntry is one file's index as stored.
type indexEntry struct {
	name  string
	size  int64
	mtime int64
	idx   *seriesIndex
}

// encodeIndex serialises entries: a string table, then per file its key
// and per row group its ts bounds, chunk locations and runs, then a CRC.
func encodeIndex(entries []indexEntry) []byte {
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
	body = binary.AppendUvarint(body, uint64(len(entries)))
	for _, e := range entries {
		body = appendString(body, e.name)
		body = binary.AppendVarint(body, e.size)
		body = binary.AppendVarint(body, e.mtime)
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
				body = binary.AppendVarint(body, r.start)
				body = binary.AppendVarint(body, r.end-r.start)
				body = appendBool(body, r.agg.ok)
				if r.agg.ok {
					body = binary.AppendVarint(body, r.agg.count)
					body = binary.AppendVarint(body, r.agg.tsMin)
					body = binary.AppendVarint(body, r.agg.tsMax)
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

func (d *indexDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string past the end")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
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
func decodeIndex(b []byte, intern map[string]string) ([]indexEntry, error) {
	if len(b) < len(indexMagic)+4 || string(b[:len(indexMagic)]) != indexMagic {
		return nil, errors.New("not a history index file")
	}
	sum := binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(b[:len(b)-4]) != sum {
		return nil, errors.New("index file damaged: checksum mismatch")
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
	entries := make([]indexEntry, d.count(4))
	for i := range entries {
		e := &entries[i]
		e.name, e.size, e.mtime = d.string(), d.varint(), d.varint()
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
				r.start = d.varint()
				n := d.varint()
				if r.start != row || n <= 0 || r.start > math.MaxInt64-n {
					d.fail("runs not contiguous")
				}
				r.end = r.start + n
				row = r.end
				if r.agg.ok = d.bool(); r.agg.ok {
					r.agg.count, r.agg.tsMin, r.agg.tsMax = d.varint(), d.varint(), d.varint()
					r.agg.min, r.agg.max, r.agg.sum = d.float(), d.float(), d.float()
					if r.agg.count < 0 || r.agg.count > n || r.agg.tsMin > r.agg.tsMax {
						d.fail("bad run summary")
					}
				}
				ig.runs[k] = r
			}
			idx.runs += len(slab)
		}
		e.idx = idx
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return entries, nil
}

// loadIndex puts the stored indexes of a partition's files that are still
// current (same name, size and modification time) into the cache. A
// missing or damaged index file loads nothing: the files are then read
// with the Parquet library and the index file is rewritten.
func (a *Archive) loadIndex(p partFiles, r *reader, intern map[string]string) {
	missing := false
	for _, f := range p.files {
		if a.cache.get(f) == nil {
			missing = true
			break
		}
	}
	if !missing {
		return
	}
	b, err := r.readIndexFile(filepath.Join(p.dir, indexFile))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("history: read the partition's index", "dir", p.dir, "err", err)
		}
		return
	}
	entries, err := decodeIndex(b, intern)
	if err != nil {
		a.log.Warn("history: the partition's index is unusable; it will be rebuilt", "dir", p.dir, "err", err)
		return
	}
	byName := make(map[string]*indexEntry, len(entries))
	for i := range entries {
		byName[entries[i].name] = &entries[i]
	}
	for _, f := range p.files {
		e, ok := byName[filepath.Base(f.path)]
		if ok && e.size == f.size && e.mtime == f.mtime.UnixNano() && a.cache.get(f) == nil {
			a.cache.put(f, e.idx)
		}
	}
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

// storeIndex writes the partition's index file when a file's index was
// built during this query and the hour is old enough to be settled. Only
// indexes of the files listed (those current) are written.
func (a *Archive) storeIndex(p partFiles, now time.Time) {
	if p.hour+hourNS+int64(persistAfter) > now.UnixNano() {
		return
	}
	entries := make([]indexEntry, 0, len(p.files))
	for _, f := range p.files {
		if idx := a.cache.get(f); idx != nil {
			entries = append(entries, indexEntry{name: filepath.Base(f.path), size: f.size, mtime: f.mtime.UnixNano(), idx: idx})
		}
	}
	if len(entries) == 0 {
		return
	}
	if err := writeDurable(p.dir, indexFile, encodeIndex(entries)); err != nil {
		a.log.Debug("history: write the partition's index", "dir", p.dir, "err", err)
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
