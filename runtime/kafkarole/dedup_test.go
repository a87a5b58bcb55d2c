package kafkarole

import (
	"os"
	"path/filepath"
	"testing"
)

// A batch forwarded twice is dropped, across a restart of the consumer at
// the committed offset and across a replay of an uncommitted range.
func TestDedupAcrossCommitsAndReplays(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".kafka", "recon.samples", "p0.json")
	d, ok, err := loadDedup(path, -2)
	if err != nil || !ok {
		t.Fatalf("fresh state: %v %v", ok, err)
	}
	// Offsets 0..2: origin a positions 0:0, 1:0, 1:1; offset 3 repeats 1:0.
	for i, p := range []originPos{{0, 0}, {1, 0}, {1, 1}} {
		if !d.keep(int64(i), "a", p) {
			t.Fatalf("message %d dropped", i)
		}
	}
	if d.keep(3, "a", originPos{1, 0}) {
		t.Fatal("a batch forwarded twice was kept")
	}
	if !d.keep(4, "b", originPos{0, 0}) || !d.keep(5, "", originPos{}) {
		t.Fatal("messages of another origin or without one were dropped")
	}
	if err := d.commit(2); err != nil {
		t.Fatal(err)
	}
	if err := d.commit(5); err != nil {
		t.Fatal(err)
	}

	// The commit of offset 5 reached Kafka: a new owner resumes at 6 and
	// still knows both origins.
	d2, ok, err := loadDedup(path, 6)
	if err != nil || !ok {
		t.Fatalf("resume at 6: %v %v", ok, err)
	}
	if d2.keep(6, "a", originPos{1, 1}) || d2.keep(7, "b", originPos{0, 0}) {
		t.Fatal("duplicates kept after a resume at the committed offset")
	}
	// It did not: the new owner rewrites 3..5 and must decide as the first
	// time (3 dropped, 4 kept).
	d3, ok, err := loadDedup(path, 3)
	if err != nil || !ok {
		t.Fatalf("replay from 3: %v %v", ok, err)
	}
	if d3.keep(3, "a", originPos{1, 0}) || !d3.keep(4, "b", originPos{0, 0}) {
		t.Fatal("a replayed range was filtered differently")
	}
	// Any other offset is reported as unmatched.
	if _, ok, err := loadDedup(path, 1); err != nil || ok {
		t.Fatalf("offset 1 matched a state of [3, 6): %v %v", ok, err)
	}
}

func FuzzParseOriginPos(f *testing.F) {
	for _, s := range []string{"0:0", "12:3", "", ":", "1:", "-1:0", "9223372036854775807:1", "1:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseOriginPos(s)
		if err != nil {
			return
		}
		if p.Offset < 0 || p.Piece < 0 {
			t.Fatalf("%q parsed to a negative position %+v", s, p)
		}
	})
}

// A damaged or foreign dedup state file is refused with an error, never a
// panic, and a state that loads can be used and saved again.
func FuzzLoadDedup(f *testing.F) {
	f.Add([]byte(`{"first":3,"next":6,"before":{"a":{"offset":1,"piece":0}},"after":{"a":{"offset":1,"piece":1},"b":{"offset":0,"piece":0}}}`), int64(6))
	f.Add([]byte(`{"first":-2,"next":1,"before":null,"after":{}}`), int64(-2))
	f.Add([]byte(`not json`), int64(0))
	f.Add([]byte(`{"after":{"a":null}}`), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, start int64) {
		path := filepath.Join(t.TempDir(), "p0.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, _, err := loadDedup(path, start)
		if err != nil {
			return
		}
		d.keep(start, "x", originPos{1, 0})
		if err := d.commit(start); err != nil {
			t.Fatal(err)
		}
	})
}
