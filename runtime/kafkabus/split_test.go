package kafkabus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
)

// mixed builds rows samples whose sources cycle through sources row by
// row (as a batcher shard interleaves them); value = the row number.
func mixed(sources []string, rows int) arrow.RecordBatch {
	parts := make([]arrow.RecordBatch, 0, rows)
	for i := range rows {
		parts = append(parts, batch(sources[i%len(sources)], i, 1))
	}
	return concat(parts)
}

// runs builds one run of rows per source, in order.
func runs(sources []string, per int) arrow.RecordBatch {
	parts := make([]arrow.RecordBatch, 0, len(sources))
	for i, s := range sources {
		parts = append(parts, batch(s, i*per, per))
	}
	return concat(parts)
}

func concat(parts []arrow.RecordBatch) arrow.RecordBatch {
	cols := make([]arrow.Array, sample.Schema.NumFields())
	var n int64
	for c := range cols {
		arrs := make([]arrow.Array, len(parts))
		for i, p := range parts {
			arrs[i] = p.Column(c)
		}
		a, err := array.Concatenate(arrs, memory.DefaultAllocator)
		if err != nil {
			panic(err)
		}
		cols[c] = a
		n = int64(a.Len())
	}
	for _, p := range parts {
		p.Release()
	}
	rec := array.NewRecordBatch(sample.Schema, cols, n)
	for _, a := range cols {
		a.Release()
	}
	return rec
}

// checkParts asserts that parts hold, per source, exactly its rows of rec
// in their order, and returns the keys in order.
func checkParts(t *testing.T, rec arrow.RecordBatch, parts []part) []string {
	t.Helper()
	want := map[string][]float64{}
	src := rec.Column(sample.IdxSource).(*array.String)
	vals := rec.Column(sample.IdxValue).(*array.Float64)
	for i := range src.Len() {
		want[src.Value(i)] = append(want[src.Value(i)], vals.Value(i))
	}
	var keys []string
	for _, p := range parts {
		keys = append(keys, p.key)
		ps := p.rec.Column(sample.IdxSource).(*array.String)
		pv := p.rec.Column(sample.IdxValue).(*array.Float64)
		labels := p.rec.Column(sample.IdxLabels).(*array.Map)
		w := want[p.key]
		if int(p.rec.NumRows()) != len(w) {
			t.Fatalf("part %s has %d rows, want %d", p.key, p.rec.NumRows(), len(w))
		}
		for i := range ps.Len() {
			if ps.Value(i) != p.key || pv.Value(i) != w[i] {
				t.Fatalf("part %s row %d = %s/%v, want %s/%v", p.key, i, ps.Value(i), pv.Value(i), p.key, w[i])
			}
			if s, e := labels.ValueOffsets(i); e-s != 1 {
				t.Fatalf("part %s row %d has %d labels, want 1", p.key, i, e-s)
			}
		}
		delete(want, p.key)
	}
	if len(want) != 0 {
		t.Fatalf("sources without a part: %v", want)
	}
	return keys
}

func TestSplitBySource(t *testing.T) {
	var s sourceSplitter
	release := func(ps []part) {
		for _, p := range ps {
			p.rec.Release()
		}
	}
	t.Run("one source stays one batch, not copied", func(t *testing.T) {
		rec := batch("gen", 0, 1000)
		defer rec.Release()
		ps, err := s.split(nil, rec, "shard-0")
		if err != nil {
			t.Fatal(err)
		}
		defer release(ps)
		if len(ps) != 1 || ps[0].key != "gen" || ps[0].rec != rec {
			t.Fatalf("parts %+v, want the batch itself under key gen", ps)
		}
	})
	t.Run("interleaved sources are gathered", func(t *testing.T) {
		rec := mixed([]string{"web", "dns", "ping"}, 3001)
		defer rec.Release()
		ps, err := s.split(nil, rec, "shard-0")
		if err != nil {
			t.Fatal(err)
		}
		defer release(ps)
		if keys := checkParts(t, rec, ps); fmt.Sprint(keys) != "[web dns ping]" {
			t.Fatalf("keys %v, want [web dns ping] (order of first appearance)", keys)
		}
	})
	t.Run("runs of sources are sliced", func(t *testing.T) {
		rec := runs([]string{"a", "b", "c", "d"}, 250)
		defer rec.Release()
		ps, err := s.split(nil, rec, "shard-0")
		if err != nil {
			t.Fatal(err)
		}
		defer release(ps)
		checkParts(t, rec, ps)
		if ps[1].rec.Column(sample.IdxValue).Data().Offset() != 250 {
			t.Fatal("a run of one source was copied instead of sliced")
		}
	})
	t.Run("not samples: one part under the given key", func(t *testing.T) {
		sch := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
		rec := b.NewRecordBatch()
		b.Release()
		defer rec.Release()
		ps, err := s.split(nil, rec, "fp-1")
		if err != nil {
			t.Fatal(err)
		}
		defer release(ps)
		if len(ps) != 1 || ps[0].key != "fp-1" {
			t.Fatalf("parts %+v", ps)
		}
	})
}

// TestKeyIsSource: a batch of several sources is published as one message
// per source keyed by it (whatever key the publisher passed), still split
// under the message size limit, and every row arrives once under its
// source's key.
func TestKeyIsSource(t *testing.T) {
	b := kafkatest.Start(t, 3, "recon.samples")
	tp := open(t, b, "recon.samples", Options{MaxMessageBytes: 32 << 10})
	const rows = 12000
	rec := mixed([]string{"web", "dns", "ping", "snmp"}, rows)
	defer rec.Release()
	if err := tp.Publish(context.Background(), "shard-3", rec); err != nil {
		t.Fatal(err)
	}
	if tp.Stats().Splits.Load() == 0 {
		t.Fatal("no message was split under a 32 KiB limit")
	}
	c, err := tp.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[int]int{}
	last := map[string]int{}
	for len(seen) < rows {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d rows: %v", len(seen), rows, err)
		}
		src := m.Record.Column(sample.IdxSource).(*array.String)
		vals := m.Record.Column(sample.IdxValue).(*array.Float64)
		for i := range src.Len() {
			if src.Value(i) != m.Key {
				t.Fatalf("message keyed %q holds a row of source %q", m.Key, src.Value(i))
			}
			v := int(vals.Value(i))
			if l, ok := last[m.Key]; ok && v <= l {
				t.Fatalf("source %s out of order: %d after %d", m.Key, v, l)
			}
			last[m.Key] = v
			seen[v]++
		}
		m.Record.Release()
		if err := c.Commit(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	exactlyOnce(t, seen, rows)
}

func BenchmarkSplitBySource(b *testing.B) {
	for _, tc := range []struct {
		name string
		rec  arrow.RecordBatch
	}{
		{"one-source", batch("gen", 0, 65536)},
		{"runs-of-16", runs(sourcesN(16), 4096)},
		{"interleaved-16", mixed(sourcesN(16), 65536)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer tc.rec.Release()
			var s sourceSplitter
			var ps []part
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if ps, err = s.split(ps[:0], tc.rec, ""); err != nil {
					b.Fatal(err)
				}
				for _, p := range ps {
					p.rec.Release()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*tc.rec.NumRows()), "ns/sample")
		})
	}
}

func sourcesN(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("src-%02d", i)
	}
	return s
}

// TestBufferBytesOfSlices: the size estimate that decides how a batch is
// cut into messages counts a slice's share of its parent's buffers (a
// source's rows sliced out of a batch of many sources), and is close to
// the IPC encoding.
func TestBufferBytesOfSlices(t *testing.T) {
	rec := batch("gen", 0, 8000)
	defer rec.Release()
	tp := Topic{opts: Options{MaxMessageBytes: DefaultMaxMessageBytes}}
	for _, c := range []struct{ lo, hi int64 }{{0, 8000}, {0, 4000}, {4000, 8000}, {1000, 1100}} {
		part := rec.NewSlice(c.lo, c.hi)
		est := bufferBytes(part)
		msgs, err := tp.encodeFit(nil, "gen", part)
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
		enc := int64(len(msgs[0].Value))
		if est > enc || est < enc-ipcOverhead-enc/10 {
			t.Errorf("rows %d..%d: estimate %d bytes, IPC encoding %d", c.lo, c.hi, est, enc)
		}
	}
}
