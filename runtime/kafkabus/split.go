package kafkabus

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/sample"
)

// sourceSplitter cuts a sample batch into one batch per source (design
// §3.3: key = source name, so a source stays ordered within a partition).
// Its scratch space is reused from batch to batch: grouping costs no
// allocation per row, only one per distinct source of a batch (its key).
type sourceSplitter struct {
	group  map[string]int // source → group, for the batch being split
	keys   []string       // group → source (cloned: outlives the batch)
	counts []int          // group → rows
	starts []int          // group → first entry in idx
	rowGrp []int32        // row → group
	idx    []int32        // row indices grouped by source, in row order
}

// part is one source's rows of a batch.
type part struct {
	key string
	rec arrow.RecordBatch // owned by the caller of split (Release it)
}

// split appends to parts one batch per source of rec, in the order the
// sources first appear, each holding that source's rows in their order.
// A batch of one source is returned as is; sources that each occupy one
// run of rows become zero-copy slices; otherwise the rows are gathered in
// source order with Arrow's take kernel (one copy of the batch) and sliced
// per source. A batch without the sample schema is one part under
// fallback.
func (s *sourceSplitter) split(parts []part, rec arrow.RecordBatch, fallback string) ([]part, error) {
	src, ok := sourceColumn(rec)
	if !ok || rec.NumRows() == 0 {
		rec.Retain()
		return append(parts, part{key: fallback, rec: rec}), nil
	}
	n := src.Len()
	if s.group == nil {
		s.group = map[string]int{}
	}
	defer clear(s.group) // keeps none of this batch's sources alive
	s.keys, s.counts = s.keys[:0], s.counts[:0]
	s.rowGrp = growInt32(s.rowGrp, n)
	contiguous := true
	prev, prevKey := -1, ""
	for i := range n {
		v := src.Value(i)              // a view into rec's buffer: cloned before it is kept
		if prev >= 0 && v == prevKey { // rows of a source come in runs
			s.counts[prev]++
			s.rowGrp[i] = int32(prev)
			continue
		}
		g, seen := s.group[v]
		if !seen {
			g = len(s.keys)
			k := strings.Clone(v)
			s.group[k] = g
			s.keys = append(s.keys, k)
			s.counts = append(s.counts, 0)
		} else if g != prev {
			contiguous = false
		}
		s.counts[g]++
		s.rowGrp[i] = int32(g)
		prev, prevKey = g, v
	}
	if len(s.keys) == 1 {
		rec.Retain()
		return append(parts, part{key: s.keys[0], rec: rec}), nil
	}
	if contiguous {
		var off int64
		for g, k := range s.keys {
			c := int64(s.counts[g])
			parts = append(parts, part{key: k, rec: rec.NewSlice(off, off+c)})
			off += c
		}
		return parts, nil
	}
	// Counting sort of the row indices by group, stable within a group.
	s.starts = s.starts[:0]
	pos := 0
	for _, c := range s.counts {
		s.starts = append(s.starts, pos)
		pos += c
	}
	s.idx = growInt32(s.idx, n)
	fill := s.counts // reused as the fill cursor of each group
	for g := range fill {
		fill[g] = s.starts[g]
	}
	for i := range n {
		g := s.rowGrp[i]
		s.idx[fill[g]] = int32(i)
		fill[g]++
	}
	// One gather of the whole batch in source order, then a zero-copy
	// slice per source: one kernel call per column, not one per source.
	opts := compute.TakeOptions{BoundsCheck: false}
	sorted, err := take(context.Background(), &opts, rec, s.idx[:n])
	if err != nil {
		return parts, fmt.Errorf("kafka: split batch by source: %w", err)
	}
	defer sorted.Release()
	for g, k := range s.keys {
		parts = append(parts, part{key: k, rec: sorted.NewSlice(int64(s.starts[g]), int64(fill[g]))})
	}
	return parts, nil
}

// take gathers rec's rows at idx (valid, in range) into a new batch.
func take(ctx context.Context, opts *compute.TakeOptions, rec arrow.RecordBatch, idx []int32) (arrow.RecordBatch, error) {
	data := array.NewData(arrow.PrimitiveTypes.Int32, len(idx),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(idx))}, nil, 0, 0)
	indices := array.NewInt32Data(data)
	data.Release()
	defer indices.Release()
	in := compute.NewDatum(rec)
	defer in.Release()
	ix := compute.NewDatum(indices)
	defer ix.Release()
	out, err := compute.Take(ctx, *opts, in, ix)
	if err != nil {
		return nil, err
	}
	rd, ok := out.(*compute.RecordDatum)
	if !ok {
		out.Release()
		return nil, fmt.Errorf("take returned %s, want a record batch", out.Kind())
	}
	return rd.Value, nil
}

// sourceColumn returns rec's source column when rec has the sample schema.
func sourceColumn(rec arrow.RecordBatch) (*array.String, bool) {
	if s := rec.Schema(); s != sample.Schema && !s.Equal(sample.Schema) {
		return nil, false
	}
	col, ok := rec.Column(sample.IdxSource).(*array.String)
	return col, ok
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}
