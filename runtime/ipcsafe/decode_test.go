package ipcsafe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_ns},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "labels", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
}, nil)

func testBatch(rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := range rows {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i) * 1e6))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("series-%d", i%13))
		if i%5 == 0 {
			b.Field(2).(*array.Float64Builder).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 4)
		}
		mb := b.Field(3).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("k")
		mb.ItemBuilder().(*array.StringBuilder).Append(fmt.Sprint(i % 3))
	}
	return b.NewRecordBatch()
}

func encodeStream(t testing.TB, rec arrow.RecordBatch, opts ...ipc.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(rec.Schema())}, opts...)...)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// aligned returns a copy of b at an 8-byte aligned address plus off.
func aligned(b []byte, off int) []byte {
	raw := make([]byte, len(b)+16)
	start := (8 - int(uintptr(unsafe.Pointer(&raw[0]))%8)) % 8
	out := raw[start+off : start+off+len(b)]
	copy(out, b)
	return out
}

// Both decoders return the batch that was encoded, plain or with
// compressed buffers, and DecodeShared reads plain buffers in place while
// Decode's batch does not depend on the stream.
func TestDecodeRoundTrip(t *testing.T) {
	rec := testBatch(1000)
	defer rec.Release()
	for _, tc := range []struct {
		name string
		opts []ipc.Option
	}{
		{"plain", nil},
		{"lz4", []ipc.Option{ipc.WithLZ4()}},
		{"zstd", []ipc.Option{ipc.WithZstd()}},
	} {
		for _, shared := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/shared=%v", tc.name, shared), func(t *testing.T) {
				stream := aligned(encodeStream(t, rec, tc.opts...), 0)
				got, err := decode(stream, memory.DefaultAllocator, shared)
				if err != nil {
					t.Fatal(err)
				}
				defer got.Release()
				if err := Validate(got); err != nil {
					t.Fatal(err)
				}
				if !array.RecordEqual(got, rec) {
					t.Fatalf("decoded batch differs from the encoded one")
				}
				clear(stream) // the stream is gone: an owned batch must not notice
				if !shared || tc.name != "plain" {
					if !array.RecordEqual(got, rec) {
						t.Fatalf("the batch changed with the stream it was decoded from")
					}
					return
				}
				if array.RecordEqual(got, rec) {
					t.Fatalf("DecodeShared copied the plain buffers")
				}
			})
		}
	}
}

// A stream whose body is not 8-byte aligned in memory is decoded from a
// copy: Arrow reads buffers in place as typed slices.
func TestDecodeSharedMisaligned(t *testing.T) {
	rec := testBatch(100)
	defer rec.Release()
	stream := aligned(encodeStream(t, rec), 3)
	got, err := DecodeShared(stream, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	clear(stream)
	if !array.RecordEqual(got, rec) {
		t.Fatalf("a misaligned stream was read in place (or decoded wrong)")
	}
}

// Damaged streams are errors, never panics, in both modes.
func TestDecodeRefusesDamage(t *testing.T) {
	rec := testBatch(50)
	defer rec.Release()
	good := encodeStream(t, rec)
	two := append(bytes.Clone(good[:len(good)-8]), good...) // no end marker, then a second stream
	var twoBatches bytes.Buffer
	w := ipc.NewWriter(&twoBatches, ipc.WithSchema(rec.Schema()))
	for range 2 {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":       {},
		"truncated":   good[:len(good)/2],
		"no batch":    good[:schemaEnd(t, good)],
		"garbage":     []byte("definitely not arrow"),
		"two streams": two,
		"two batches": twoBatches.Bytes(),
	}
	for name, stream := range cases {
		for _, shared := range []bool{false, true} {
			got, err := decode(bytes.Clone(stream), memory.DefaultAllocator, shared)
			if err == nil {
				got.Release()
				t.Errorf("%s (shared=%v): decoded without error", name, shared)
			}
		}
	}
}

// A buffer must lie inside its message's body, and a compressed one must
// hold its length prefix: arrow-go slices buffers against the capacity
// behind the body, so a copied body (padded to 64 bytes) let Decode read
// past it while DecodeShared (exact capacity) panicked. Both now refuse it.
func TestDecodeRefusesBufferOutsideBody(t *testing.T) {
	rec := testBatch(50)
	defer rec.Release()
	for _, tc := range []struct {
		name   string
		opts   []ipc.Option
		damage func(buffers []byte, body int64, rb flatbuffers.Table)
		want   string
	}{
		{"last buffer one byte past the body", nil, func(buffers []byte, body int64, _ flatbuffers.Table) {
			last := buffers[len(buffers)-16:]
			off := int64(binary.LittleEndian.Uint64(last))
			binary.LittleEndian.PutUint64(last[8:], uint64(body-off+1))
		}, "exceeds the message body"},
		{"negative offset", nil, func(buffers []byte, _ int64, _ flatbuffers.Table) {
			binary.LittleEndian.PutUint64(buffers[16:], uint64(1<<64-8))
		}, "exceeds the message body"},
		{"offset+length overflowing", nil, func(buffers []byte, _ int64, _ flatbuffers.Table) {
			binary.LittleEndian.PutUint64(buffers[16:], 8)
			binary.LittleEndian.PutUint64(buffers[16+8:], 1<<63-1)
		}, "exceeds the message body"},
		{"compressed buffer without its length prefix", []ipc.Option{ipc.WithZstd()}, func(buffers []byte, _ int64, _ flatbuffers.Table) {
			for b := buffers; len(b) > 0; b = b[16:] {
				if binary.LittleEndian.Uint64(b[8:]) > 0 {
					binary.LittleEndian.PutUint64(b[8:], 4)
					return
				}
			}
			t.Fatal("no non-empty buffer")
		}, "shorter than its 8-byte length prefix"},
		{"unknown compression codec", []ipc.Option{ipc.WithZstd()}, func(_ []byte, _ int64, rb flatbuffers.Table) {
			bc := rb.Indirect(rb.Pos + flatbuffers.UOffsetT(rb.Offset(fbSlot(3))))
			o := (&flatbuffers.Table{Bytes: rb.Bytes, Pos: bc}).Offset(fbSlot(0))
			if o == 0 {
				t.Fatal("zstd codec not written")
			}
			rb.Bytes[bc+flatbuffers.UOffsetT(o)] = 7
		}, "unknown body compression codec 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := encodeStream(t, rec, tc.opts...)
			tc.damage(recordBatchBuffers(t, stream))
			for _, shared := range []bool{false, true} {
				got, err := decode(aligned(stream, 0), memory.DefaultAllocator, shared)
				if err == nil {
					got.Release()
					t.Fatalf("shared=%v: decoded without error", shared)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("shared=%v: error %q does not say %q", shared, err, tc.want)
				}
			}
		})
	}
}

// recordBatchBuffers finds the record batch message of stream and returns
// its buffers vector (16 bytes a buffer) and RecordBatch table, both
// slices of stream, and its body length.
func recordBatchBuffers(t *testing.T, stream []byte) ([]byte, int64, flatbuffers.Table) {
	t.Helper()
	for rest := stream; len(rest) >= 8; {
		n := binary.LittleEndian.Uint32(rest[4:]) // after the continuation marker
		meta := rest[8 : 8+n]
		body, err := checkMessage(meta, &viewCounts{dicts: map[int64]int{}})
		if err != nil {
			t.Fatal(err)
		}
		rest = rest[8+int64(n)+body:]
		c := &fbChecker{buf: meta, budget: len(meta)}
		msg, err := c.root()
		if err != nil {
			t.Fatal(err)
		}
		if msg.GetByte(msg.Pos+flatbuffers.UOffsetT(msg.Offset(fbSlot(1)))) != fbHeaderRecordBatch {
			continue
		}
		rb, _, err := c.table(msg, 2)
		if err != nil {
			t.Fatal(err)
		}
		start, nbuf, err := c.vector(rb, 2, 16)
		if err != nil || nbuf == 0 {
			t.Fatalf("buffers vector: %d buffers, %v", nbuf, err)
		}
		return meta[start : start+uint64(nbuf)*16], body, rb
	}
	t.Fatal("no record batch in the stream")
	return nil, 0, flatbuffers.Table{}
}

// schemaEnd is the length of the stream's first message (the schema).
func schemaEnd(t *testing.T, stream []byte) int {
	t.Helper()
	msgs := &streamMessages{rest: stream}
	msgs.refs.Add(1)
	defer msgs.Release()
	if _, err := msgs.Message(); err != nil {
		t.Fatal(err)
	}
	return len(stream) - len(msgs.rest)
}

// FuzzDecode: the copying and the in-place decoder agree on every input:
// both fail, or both return the same valid batch; neither panics.
func FuzzDecode(f *testing.F) {
	rec := testBatch(20)
	defer rec.Release()
	var seeds bytes.Buffer
	for _, opts := range [][]ipc.Option{nil, {ipc.WithLZ4()}, {ipc.WithZstd()}} {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(rec.Schema())}, opts...)...)
		if err := w.Write(rec); err != nil {
			f.Fatal(err)
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		seeds.Write(buf.Bytes())
	}
	f.Add(seeds.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		owned, oerr := Decode(stream, memory.DefaultAllocator)
		shared, serr := DecodeShared(stream, memory.DefaultAllocator)
		if (oerr == nil) != (serr == nil) {
			t.Fatalf("Decode: %v, DecodeShared: %v", oerr, serr)
		}
		if oerr != nil {
			return
		}
		defer owned.Release()
		defer shared.Release()
		verr, vserr := Validate(owned), Validate(shared)
		if (verr == nil) != (vserr == nil) {
			t.Fatalf("Validate: %v vs %v", verr, vserr)
		}
		if verr != nil {
			return
		}
		// Exact equality, except that NaN equals NaN (a fuzzed double is
		// often one, and NaN != NaN). arrow-go's comparison does not apply
		// that to half floats, so a mismatch is confirmed value by value.
		if !array.RecordApproxEqual(owned, shared, array.WithNaNsEqual(true), array.WithAbsTolerance(0)) && !sameValues(owned, shared) {
			t.Fatalf("the decoders disagree")
		}
		// Every value of the first and the last rows reads without a panic
		// (all rows would take seconds on a batch of null columns).
		n := int(shared.NumRows())
		for _, col := range shared.Columns() {
			for i := range min(n, 256) {
				_ = col.ValueStr(i)
				_ = col.ValueStr(n - 1 - i)
			}
		}
	})
}

// stringArray builds a string array straight from its buffers; nil when
// arrow refuses to build it (offsets past the data panic in NewStringData,
// and the decoder turns that panic into an error).
func stringArray(offsets []int32, data []byte, slice int) (a *array.String) {
	defer func() {
		if recover() != nil {
			a = nil
		}
	}()
	offBuf := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets))
	d := array.NewData(arrow.BinaryTypes.String, max(len(offsets)-1, 0), []*memory.Buffer{nil, offBuf, memory.NewBufferBytes(data)}, nil, 0, 0)
	defer d.Release()
	s := array.NewStringData(d)
	if slice == 0 || slice > s.Len() {
		return s
	}
	defer s.Release()
	return array.NewSlice(s, int64(slice), int64(s.Len())).(*array.String)
}

// validateString accepts and refuses exactly what arrow's ValidateFull
// does, including values that split a character between them.
func TestValidateStringAgreesWithArrow(t *testing.T) {
	euro := []byte("a€b") // € is 3 bytes
	for _, tc := range []struct {
		name    string
		offsets []int32
		data    []byte
		ok      bool
	}{
		{"valid", []int32{0, 1, 4, 5}, euro, true},
		{"empty values", []int32{0, 0, 5, 5}, euro, true},
		{"character split between values", []int32{0, 2, 5}, euro, false},
		{"invalid bytes", []int32{0, 2}, []byte{'a', 0xff}, false},
		{"decreasing", []int32{0, 3, 1, 5}, euro, false},
		{"negative", []int32{-1, 5}, euro, false},
		{"past the data", []int32{0, 9}, euro, false},
	} {
		a := stringArray(tc.offsets, tc.data, 0)
		if a == nil {
			if tc.ok {
				t.Errorf("%s: arrow refused to build the array", tc.name)
			}
			continue
		}
		got, want := validateArray(a), a.ValidateFull()
		if (got == nil) != tc.ok || (want == nil) != tc.ok {
			t.Errorf("%s: validateString %v, arrow %v, want ok=%v", tc.name, got, want, tc.ok)
		}
		a.Release()
	}
}

// FuzzValidateString: on any offsets and bytes, validateString and arrow's
// ValidateFull agree.
func FuzzValidateString(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0}, []byte("a€b"), 0)
	f.Add([]byte{0, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0}, []byte("a€b"), 1)
	f.Fuzz(func(t *testing.T, rawOffsets, data []byte, slice int) {
		offsets := make([]int32, len(rawOffsets)/4)
		for i := range offsets {
			offsets[i] = int32(binary.LittleEndian.Uint32(rawOffsets[4*i:]))
		}
		a := stringArray(offsets, data, max(slice, 0)%4)
		if a == nil {
			return
		}
		defer a.Release()
		got := validateArray(a)
		want := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return a.ValidateFull()
		}()
		if (got == nil) != (want == nil) {
			t.Fatalf("validateString: %v, arrow: %v", got, want)
		}
	})
}

// BenchmarkDecode: one 10,000-row message decoded (copied or in place) and
// validated; validate=arrow validates with arrow's ValidateFull instead,
// for comparison.
func BenchmarkDecode(b *testing.B) {
	rec := testBatch(10000)
	defer rec.Release()
	stream := aligned(encodeStream(b, rec), 0)
	for _, bc := range []struct {
		name     string
		shared   bool
		validate func(arrow.RecordBatch) error
	}{
		{"copy/validate=ipcsafe", false, Validate},
		{"shared/validate=ipcsafe", true, Validate},
		{"shared/validate=arrow", true, validateWithArrow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := decode(stream, memory.DefaultAllocator, bc.shared)
				if err != nil {
					b.Fatal(err)
				}
				if err := bc.validate(got); err != nil {
					b.Fatal(err)
				}
				got.Release()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rec.NumRows()), "ns/row")
		})
	}
}

func validateWithArrow(rec arrow.RecordBatch) error {
	for _, col := range rec.Columns() {
		if v, ok := col.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				return err
			}
		}
		if m, ok := col.(*array.Map); ok {
			for _, c := range []arrow.Array{m.Keys(), m.Items()} {
				if err := c.(interface{ ValidateFull() error }).ValidateFull(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// View columns (their data in variadic buffers, one count per view array)
// decode, alone, nested and as a dictionary's values, and a batch whose
// counts are fewer than its view arrays is refused: arrow-go would read a
// count from past the vector and size a slice from it.
func TestDecodeViews(t *testing.T) {
	mem := memory.DefaultAllocator
	strs := array.NewStringViewBuilder(mem)
	defer strs.Release()
	bins := array.NewBinaryViewBuilder(mem)
	defer bins.Release()
	plain := array.NewStringBuilder(mem)
	defer plain.Release()
	for i := range 300 {
		strs.Append(fmt.Sprintf("a value long enough to sit outside the view, row %d", i))
		bins.Append([]byte{byte(i), 1, 2})
		plain.Append(fmt.Sprint(i % 7))
	}
	sv, bv, pv := strs.NewArray(), bins.NewArray(), plain.NewArray()
	defer sv.Release()
	defer bv.Release()
	defer pv.Release()
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.StringView}
	indices, values := mustIndices(t, 300, 5), array.NewSlice(sv, 0, 5)
	defer indices.Release()
	defer values.Release()
	dict := array.NewDictionaryArray(dictType, indices, values)
	defer dict.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "sv", Type: sv.DataType()},
		{Name: "plain", Type: pv.DataType()},
		{Name: "bv", Type: bv.DataType()},
		{Name: "dict", Type: dictType},
	}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{sv, pv, bv, dict}, 300)
	defer rec.Release()
	stream := aligned(encodeStream(t, rec), 0)
	got, err := Decode(stream, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !array.RecordEqual(got, rec) {
		t.Fatal("decoded batch differs from the encoded one")
	}

	// Drop the record batch's variadic counts: two view arrays, no counts.
	_, _, rb := recordBatchBuffers(t, stream)
	o := rb.Offset(fbSlot(4))
	if o == 0 {
		t.Fatal("the record batch has no variadic buffer counts")
	}
	vtable := int(rb.Pos) - int(rb.GetSOffsetT(rb.Pos))
	binary.LittleEndian.PutUint16(rb.Bytes[vtable+int(fbSlot(4)):], 0) // the slot reads as absent
	if _, err := Decode(stream, mem); err == nil || !strings.Contains(err.Error(), "variadic buffer counts for 2 view arrays") {
		t.Fatalf("a batch without its variadic counts: got %v", err)
	}
}

func mustIndices(t *testing.T, n, card int) arrow.Array {
	t.Helper()
	b := array.NewInt32Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range n {
		b.Append(int32(i % card))
	}
	return b.NewArray()
}

// sameValues reports whether a and b print the same, row by row (the
// first and last 4,096 rows of a longer batch: a fuzzed batch of null
// columns can claim millions).
func sameValues(a, b arrow.RecordBatch) bool {
	if a.NumRows() != b.NumRows() || a.NumCols() != b.NumCols() {
		return false
	}
	n := int(a.NumRows())
	for c := range a.Columns() {
		for i := range n {
			if i >= 4096 && i < n-4096 {
				continue
			}
			if a.Column(c).ValueStr(i) != b.Column(c).ValueStr(i) {
				return false
			}
		}
	}
	return true
}
