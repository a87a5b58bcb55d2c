package history

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzIndexFile feeds made-up index files to the decoder: it must return
// an error or entries that encode back to a file it decodes, never panic.
// The fuzzer varies the body; the test frames it with the magic and a
// valid checksum so that the decoder's checks past the checksum are
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
		},
	}}}
	body := func(b []byte) []byte { return b[len(indexMagic) : len(b)-4] }
	f.Add(body(encodeIndex(1700000000000000001, []indexEntry{
		{name: "p0-0-1.parquet", size: 2000, mtime: 1700000000000000000, idx: idx},
		{name: "p0-2-3.parquet", size: 3000, mtime: 1700000000000000000},
	})))
	f.Add(body(encodeIndex(0, nil)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		b := append([]byte(indexMagic), in...)
		b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
		mtime, entries, err := decodeIndex(b, map[string]string{})
		if err != nil {
			return
		}
		if again := encodeIndex(mtime, entries); !bytes.Equal(again, b) {
			// Varints have several encodings: only a decoded file that
			// re-encodes differently but decodes the same is fine.
			if _, _, err := decodeIndex(again, map[string]string{}); err != nil {
				t.Fatalf("re-encoded index does not decode: %v", err)
			}
		}
	})
}
