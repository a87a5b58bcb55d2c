package history

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"
)

// FuzzIndexFile feeds made-up day index files to the decoder and every
// stored file index in them to the lookups: they must return an error or
// runs that encode back to a file index giving the same runs, never
// panic. The fuzzer varies the body; the test frames it with the magic and
// a valid checksum so that the decoder's checks past the checksum are
// reached.
func FuzzIndexFile(f *testing.F) {
	run := func(src, metric, target string, start, end int64, agg runAgg) *seriesRun {
		return &seriesRun{SeriesKey: SeriesKey{Source: src, Metric: metric, Target: target}, start: start, end: end, agg: agg}
	}
	idx := &seriesIndex{sorted: true, groups: []indexGroup{{
		hasTs: true, tsMin: 10, tsMax: 99, lean: true,
		ts:    chunkRef{offset: 4, length: 100, codec: 6},
		value: chunkRef{offset: 104, length: 300, codec: 6, optional: true},
		runs: []*seriesRun{
			run("db", "duration", "a", 0, 5, runAgg{ok: true, count: 4, tsMin: 10, tsMax: 50, min: -1, max: 2, sum: 1.5}),
			run("web", "duration", "a", 5, 9, runAgg{}),
			run("web", "duration", "b", 9, 12, runAgg{ok: true, count: 3, tsMin: 60, tsMax: 99, min: 1, max: 1, sum: 3}),
		},
	}, {
		runs: []*seriesRun{run("web", "duration", "a", 0, 7, runAgg{})},
	}}}
	body := func(b []byte) []byte { return b[len(indexMagic) : len(b)-4] }
	f.Add(body(encodeDay([]dayPart{
		{hour: 3, dirMtime: 1700000000000000001, files: []fileRecord{
			{name: []byte("p0-0-1.parquet"), size: 2000, mtime: 1700000000000000000, index: encodeFileIndex(nil, idx)},
			{name: []byte("p0-2-3.parquet"), size: 3000, mtime: 1700000000000000000},
		}},
		{hour: 4, dirMtime: 1700000000000000002},
	})))
	f.Add(body(encodeDay(nil)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		b := append([]byte(indexMagic), in...)
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
		parts, err := decodeDay(b)
		if err != nil {
			return
		}
		for _, p := range parts {
			for _, fr := range p.files {
				checkStoredIndex(t, fr.index)
			}
		}
	})
}

// checkStoredIndex decodes every series of a stored file index and, when
// it decodes, checks that the index encoded again looks up the same runs.
func checkStoredIndex(t *testing.T, b []byte) {
	t.Helper()
	s := new(storedIndex)
	if err := openStoredIndex(s, b); err != nil {
		return
	}
	full := &seriesIndex{sorted: s.sorted, groups: append([]indexGroup(nil), s.groups...)}
	var pairs []smPair
	for i := range s.entries() {
		src, met, off := s.entry(i)
		p := smPair{string(src), string(met)}
		if len(pairs) > 0 && comparePairs(pairs[len(pairs)-1], p) >= 0 {
			// The directory's order is trusted (the checksum guards it, and
			// only encodeFileIndex writes it): a lookup in a disordered one
			// may miss, but not fail or panic.
			return
		}
		s.addRuns(full, off, p.source, p.metric, map[string]string{})
		pairs = append(pairs, p)
	}
	if s.err != nil {
		return
	}
	enc := encodeFileIndex(nil, full)
	for _, p := range pairs {
		var again storedIndex
		if err := openStoredIndex(&again, enc); err != nil {
			t.Fatalf("re-encoded file index does not open: %v", err)
		}
		if err := openStoredIndex(s, b); err != nil {
			t.Fatalf("file index opened once, not twice: %v", err)
		}
		want, err1 := s.lookup(p.source, p.metric, map[string]string{})
		got, err2 := again.lookup(p.source, p.metric, map[string]string{})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%v: lookups disagree: %v, %v", p, err1, err2)
		}
		if err1 == nil && !sameRuns(want, got) {
			t.Fatalf("%v: re-encoded index looks up other runs", p)
		}
	}
}

func sameRuns(a, b *seriesIndex) bool {
	if len(a.groups) != len(b.groups) {
		return false
	}
	for g := range a.groups {
		ra, rb := a.groups[g].runs, b.groups[g].runs
		if len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			x, y := ra[i], rb[i]
			if x.SeriesKey != y.SeriesKey || x.start != y.start || x.end != y.end || !sameAgg(x.agg, y.agg) {
				return false
			}
		}
	}
	return true
}

func sameAgg(a, b runAgg) bool {
	return a.ok == b.ok && a.count == b.count && a.tsMin == b.tsMin && a.tsMax == b.tsMax &&
		math.Float64bits(a.min) == math.Float64bits(b.min) && math.Float64bits(a.max) == math.Float64bits(b.max) &&
		math.Float64bits(a.sum) == math.Float64bits(b.sum)
}
