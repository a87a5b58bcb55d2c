package history

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go/format"
)

// The stored index of one archive file (a "file index", kept in the day
// index files of persist.go) is laid out so that a query looks up its
// series without decoding the rest:
//
//	flags            byte (1: rows in key order)
//	groups           uvarint count; per row group: hasTs, tsMin, tsMax, lean,
//	                 the ts and value chunk locations
//	strings          uvarint count n; n little-endian uint32 end offsets;
//	                 the bytes of the n strings
//	directory        uvarint count m; m entries of three little-endian
//	                 uint32: source and metric (string numbers) and the
//	                 offset of their runs in the run area; sorted by
//	                 source, then metric
//	run area         per directory entry: uvarint run count; per run: row
//	                 group, target (string number), first row, row count,
//	                 and its summary (count, time span, min, max, sum)
//
// A query binary-searches the directory for its source and metric and
// decodes only their runs: a file holding 10,000 series costs about what
// one holding 50 costs.

// comparePairs orders pairs by source, then metric.
func comparePairs(x, y smPair) int {
	return cmp.Or(strings.Compare(x.source, y.source), strings.Compare(x.metric, y.metric))
}

// dirEntryBytes is the size of one directory entry.
const dirEntryBytes = 12

// encodeFileIndex appends the stored form of idx, an index of every
// series of a file (pairs == nil), to b.
func encodeFileIndex(b []byte, idx *seriesIndex) []byte {
	if idx.sorted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(idx.groups)))
	for _, g := range idx.groups {
		b = appendBool(b, g.hasTs)
		b = binary.AppendVarint(b, g.tsMin)
		b = binary.AppendVarint(b, g.tsMax)
		b = appendBool(b, g.lean)
		b = appendChunk(b, g.ts)
		b = appendChunk(b, g.value)
	}
	// The runs of each (source, metric), whatever their row groups.
	type groupRun struct {
		g   int
		run *seriesRun
	}
	byPair := make(map[smPair][]groupRun)
	for g, ig := range idx.groups {
		for _, r := range ig.runs {
			k := smPair{r.Source, r.Metric}
			byPair[k] = append(byPair[k], groupRun{g, r})
		}
	}
	pairs := make([]smPair, 0, len(byPair))
	for k := range byPair {
		pairs = append(pairs, k)
	}
	slices.SortFunc(pairs, comparePairs)
	ids := make(map[string]uint32)
	var strs []string
	id := func(s string) uint32 {
		i, ok := ids[s]
		if !ok {
			i = uint32(len(strs))
			ids[s] = i
			strs = append(strs, s)
		}
		return i
	}
	var runs []byte
	dir := make([]byte, 0, len(pairs)*dirEntryBytes)
	for _, k := range pairs {
		dir = binary.LittleEndian.AppendUint32(dir, id(k.source))
		dir = binary.LittleEndian.AppendUint32(dir, id(k.metric))
		dir = binary.LittleEndian.AppendUint32(dir, uint32(len(runs)))
		rs := byPair[k]
		runs = binary.AppendUvarint(runs, uint64(len(rs)))
		for _, gr := range rs {
			r, g := gr.run, idx.groups[gr.g]
			runs = binary.AppendUvarint(runs, uint64(gr.g))
			runs = binary.AppendUvarint(runs, uint64(id(r.Target)))
			runs = binary.AppendVarint(runs, r.start)
			runs = binary.AppendVarint(runs, r.end-r.start)
			runs = appendBool(runs, r.agg.ok)
			if r.agg.ok {
				runs = binary.AppendVarint(runs, r.agg.count)
				runs = binary.AppendVarint(runs, r.agg.tsMin-g.tsMin)
				runs = binary.AppendVarint(runs, r.agg.tsMax-r.agg.tsMin)
				runs = binary.LittleEndian.AppendUint64(runs, math.Float64bits(r.agg.min))
				runs = binary.LittleEndian.AppendUint64(runs, math.Float64bits(r.agg.max))
				runs = binary.LittleEndian.AppendUint64(runs, math.Float64bits(r.agg.sum))
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(strs)))
	end := uint32(0)
	for _, s := range strs {
		end += uint32(len(s))
		b = binary.LittleEndian.AppendUint32(b, end)
	}
	for _, s := range strs {
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(pairs)))
	b = append(b, dir...)
	return append(b, runs...)
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

// storedIndex is a file index opened for lookups: its row groups decoded,
// the rest kept as slices of the stored bytes.
type storedIndex struct {
	sorted bool
	groups []indexGroup // without runs; a lookup's result owns them
	ends   []byte       // string end offsets
	strs   []byte
	dir    []byte
	runs   []byte
	err    error
}

// openStoredIndex parses the fixed parts of a file index into s; b must
// stay unchanged while s is used. Damage is an error, never a panic.
func openStoredIndex(s *storedIndex, b []byte) error {
	d := &indexDecoder{b: b}
	if len(b) == 0 || b[0] > 1 {
		return errors.New("file index damaged: bad flags")
	}
	*s = storedIndex{sorted: b[0] == 1}
	d.b = d.b[1:]
	s.groups = make([]indexGroup, d.count(8))
	for g := range s.groups {
		ig := &s.groups[g]
		ig.hasTs, ig.tsMin, ig.tsMax = d.bool(), d.varint(), d.varint()
		ig.lean = d.bool()
		ig.ts, ig.value = d.chunk(), d.chunk()
	}
	n := d.count(4)
	s.ends = d.bytes(4 * n)
	if n > 0 && d.err == nil {
		s.strs = d.bytes(int(binary.LittleEndian.Uint32(s.ends[len(s.ends)-4:])))
	}
	s.dir = d.bytes(dirEntryBytes * d.count(dirEntryBytes))
	s.runs = d.b
	return d.err
}

func (s *storedIndex) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("file index damaged: %s", what)
	}
}

// str returns string number i (empty, and s.err set, when damaged).
func (s *storedIndex) str(i uint32) []byte {
	n := uint32(len(s.ends) / 4)
	if i >= n {
		s.fail("string number out of range")
		return nil
	}
	start := uint32(0)
	if i > 0 {
		start = binary.LittleEndian.Uint32(s.ends[4*(i-1):])
	}
	end := binary.LittleEndian.Uint32(s.ends[4*i:])
	if start > end || end > uint32(len(s.strs)) {
		s.fail("bad string offsets")
		return nil
	}
	return s.strs[start:end]
}

// entries is the number of directory entries.
func (s *storedIndex) entries() int { return len(s.dir) / dirEntryBytes }

// entry returns directory entry i: source, metric and the offset of their
// runs.
func (s *storedIndex) entry(i int) (source, metric []byte, off uint32) {
	e := s.dir[i*dirEntryBytes:]
	return s.str(binary.LittleEndian.Uint32(e)), s.str(binary.LittleEndian.Uint32(e[4:])), binary.LittleEndian.Uint32(e[8:])
}

// lookup returns the index of the file restricted to source/metric: its
// row groups and only their runs (none when the file holds no such
// series). Target names are interned in intern. The index takes s's row
// groups: one lookup per opened index.
func (s *storedIndex) lookup(source, metric string, intern map[string]string) (*seriesIndex, error) {
	idx := &seriesIndex{sorted: s.sorted, groups: s.groups, pairs: []smPair{{source, metric}}}
	s.groups = nil
	lo, hi := 0, s.entries()
	for lo < hi && s.err == nil {
		m := int(uint(lo+hi) >> 1)
		src, met, _ := s.entry(m)
		if c := cmp.Or(compareBS(src, source), compareBS(met, metric)); c < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if s.err == nil && lo < s.entries() {
		if src, met, off := s.entry(lo); string(src) == source && string(met) == metric {
			s.addRuns(idx, off, source, metric, intern)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return idx, nil
}

// compareBS compares b with s, without copying either.
func compareBS(b []byte, s string) int {
	switch {
	case string(b) < s:
		return -1
	case string(b) == s:
		return 0
	}
	return 1
}

// addRuns decodes the runs at offset off of the run area into idx, as
// runs of source/metric.
func (s *storedIndex) addRuns(idx *seriesIndex, off uint32, source, metric string, intern map[string]string) {
	if uint64(off) > uint64(len(s.runs)) {
		s.fail("run offset past the end")
		return
	}
	d := &indexDecoder{b: s.runs[off:]}
	slab := make([]seriesRun, d.count(5))
	// The runs are stored in row group order: each group's runs are a
	// slice of ptrs.
	ptrs := make([]*seriesRun, 0, len(slab))
	first, last := 0, -1
	// flush gives group last its runs, ptrs[first:].
	flush := func() {
		if last < 0 {
			return
		}
		g := &idx.groups[last]
		if g.runs == nil {
			g.runs = ptrs[first:len(ptrs):len(ptrs)]
		} else {
			g.runs = append(g.runs, ptrs[first:]...)
		}
	}
	for k := range slab {
		r := &slab[k]
		g := d.uvarint()
		if g >= uint64(len(idx.groups)) || int(g) < last {
			d.fail("row group number out of range or order")
			break
		}
		if int(g) != last {
			flush()
			first, last = len(ptrs), int(g)
		}
		ig := &idx.groups[g]
		target := s.str(uint32(min(d.uvarint(), math.MaxUint32)))
		t, ok := intern[string(target)]
		if !ok {
			t = string(target)
			intern[t] = t
		}
		r.SeriesKey = SeriesKey{Source: source, Metric: metric, Target: t}
		start, n := d.varint(), d.varint()
		if start < 0 || n <= 0 || start > math.MaxInt64-n {
			d.fail("bad run rows")
		}
		r.start, r.end = start, start+n
		if r.agg.ok = d.bool(); r.agg.ok {
			count, off, span := d.varint(), d.varint(), d.varint()
			if count < 0 || count > n || span < 0 || !addOK(ig.tsMin, off) || !addOK(ig.tsMin+off, span) {
				d.fail("bad run summary")
			}
			r.agg.count, r.agg.tsMin = count, ig.tsMin+off
			r.agg.tsMax = r.agg.tsMin + span
			r.agg.min, r.agg.max, r.agg.sum = d.float(), d.float(), d.float()
		}
		if d.err != nil || s.err != nil {
			break
		}
		ptrs = append(ptrs, r)
		idx.runs++
	}
	flush()
	if d.err != nil {
		s.fail(d.err.Error())
	}
}

// indexDecoder reads stored indexes, failing (never panicking) on any
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

// bytes returns the next n bytes.
func (d *indexDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("bytes past the end")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
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

// addOK reports whether a+b does not overflow.
func addOK(a, b int64) bool {
	c := a + b
	return (b >= 0) == (c >= a)
}
