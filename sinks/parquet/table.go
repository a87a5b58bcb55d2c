package parquet

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/sample"
)

// Table describes one archived table: its directory name under the archive
// root, the Arrow schema of the batches it receives, the timestamp column
// that picks a row's date=/hour= partition, and the sort order of rows
// within a file.
type Table struct {
	// Name is the directory under the archive root ("samples", "alerts").
	Name string
	// Schema is the Arrow schema of every batch. Supported column types:
	// timestamp (any unit), string, large string, float64, float32, int64,
	// int32, bool, and map<string,string>; any of them nullable.
	Schema *arrow.Schema
	// TimeColumn names the timestamp column that partitions rows by UTC
	// date and hour.
	TimeColumn string
	// SortColumns orders rows within a file: every column but the last is a
	// string column (the series key), the last is TimeColumn.
	SortColumns []string
}

// SamplesTable is the samples table of design §3.1 and §3.4.
var SamplesTable = Table{
	Name:        "samples",
	Schema:      sample.Schema,
	TimeColumn:  sample.ColTs,
	SortColumns: []string{sample.ColSource, sample.ColMetric, sample.ColTarget, sample.ColTs},
}

// AlertsTable is the alerts table (design §3.2), archived as the samples
// are: ARCHIVE/alerts/date=…/hour=…, by the alert's time.
var AlertsTable = Table{
	Name:        "alerts",
	Schema:      alert.Schema,
	TimeColumn:  alert.ColTime,
	SortColumns: []string{alert.ColRule, alert.ColFingerprint, alert.ColTime},
}

// layout is a Table checked and compiled into what the writer needs.
type layout struct {
	Table
	schema  *pq.Schema
	timeIdx int   // Arrow column index of TimeColumn
	timeMul int64 // multiplier from the time column's unit to nanoseconds
	keyIdx  []int // Arrow column indexes of the series-key sort columns
	// leaf is, per Arrow column, the index of its first Parquet leaf column.
	leaf []int
	cols []columnKind
}

type columnKind uint8

const (
	kindTimestamp columnKind = iota + 1
	kindString
	kindLargeString
	kindFloat64
	kindFloat32
	kindInt64
	kindInt32
	kindBool
	kindStringMap
)

// compile checks t and maps its Arrow schema to a Parquet schema, column for
// column and in order, choosing per-column encodings for size.
func (t Table) compile() (*layout, error) {
	if t.Name == "" || strings.ContainsAny(t.Name, `/\.`) {
		return nil, fmt.Errorf("table name %q: must be a plain directory name", t.Name)
	}
	if t.Schema == nil || t.Schema.NumFields() == 0 {
		return nil, fmt.Errorf("table %s: no schema", t.Name)
	}
	l := &layout{Table: t, timeIdx: -1}
	fields := make([]namedNode, 0, t.Schema.NumFields())
	leaf := 0
	for i, f := range t.Schema.Fields() {
		node, kind, leaves, err := columnNode(f)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		if f.Nullable {
			node = pq.Optional(node)
		}
		fields = append(fields, namedNode{Node: node, name: f.Name})
		l.cols = append(l.cols, kind)
		l.leaf = append(l.leaf, leaf)
		leaf += leaves
		if f.Name == t.TimeColumn {
			ts, ok := f.Type.(*arrow.TimestampType)
			if !ok || f.Nullable {
				return nil, fmt.Errorf("table %s: time column %q must be a non-nullable timestamp", t.Name, f.Name)
			}
			l.timeIdx = i
			l.timeMul = int64(ts.Unit.Multiplier())
		}
	}
	if l.timeIdx < 0 {
		return nil, fmt.Errorf("table %s: time column %q not in schema", t.Name, t.TimeColumn)
	}
	if n := len(t.SortColumns); n == 0 || t.SortColumns[n-1] != t.TimeColumn {
		return nil, fmt.Errorf("table %s: sort columns %v must end with the time column %q", t.Name, t.SortColumns, t.TimeColumn)
	}
	for _, name := range t.SortColumns[:len(t.SortColumns)-1] {
		idx := t.Schema.FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("table %s: sort column %q not in schema", t.Name, name)
		}
		if k := l.cols[idx[0]]; k != kindString && k != kindLargeString {
			return nil, fmt.Errorf("table %s: sort column %q must be a string column", t.Name, name)
		}
		l.keyIdx = append(l.keyIdx, idx[0])
	}
	l.schema = pq.NewSchema(t.Name, orderedGroup(fields))
	return l, nil
}

// columnNode maps one Arrow field to a Parquet node, returning the node, the
// writer's column kind and the number of Parquet leaf columns it spans.
//
// Encodings were chosen by measuring the reference workload (see
// docs/benchmarks.md#archive): dictionary for the repeated strings; PLAIN
// for timestamps and floats, which zstd compresses best over large pages
// (the metrics of one check share their timestamps, and zstd finds the
// repeats; delta-binary-packed and byte-stream-split hide them and measured
// 3.4x and 1.7x bigger); delta for other integers.
func columnNode(f arrow.Field) (pq.Node, columnKind, int, error) {
	dictString := func() pq.Node { return pq.Encoded(pq.String(), &pq.RLEDictionary) }
	switch t := f.Type.(type) {
	case *arrow.TimestampType:
		unit := pq.Nanosecond
		switch t.Unit {
		case arrow.Second, arrow.Millisecond:
			unit = pq.Millisecond
		case arrow.Microsecond:
			unit = pq.Microsecond
		}
		return pq.Encoded(pq.TimestampAdjusted(unit, t.TimeZone != ""), &pq.Plain), kindTimestamp, 1, nil
	case *arrow.StringType:
		return dictString(), kindString, 1, nil
	case *arrow.LargeStringType:
		return dictString(), kindLargeString, 1, nil
	case *arrow.Float64Type:
		return pq.Encoded(pq.Leaf(pq.DoubleType), &pq.Plain), kindFloat64, 1, nil
	case *arrow.Float32Type:
		return pq.Encoded(pq.Leaf(pq.FloatType), &pq.Plain), kindFloat32, 1, nil
	case *arrow.Int64Type:
		return pq.Encoded(pq.Int(64), &pq.DeltaBinaryPacked), kindInt64, 1, nil
	case *arrow.Int32Type:
		return pq.Encoded(pq.Int(32), &pq.DeltaBinaryPacked), kindInt32, 1, nil
	case *arrow.BooleanType:
		return pq.Leaf(pq.BooleanType), kindBool, 1, nil
	case *arrow.MapType:
		if t.KeyType().ID() != arrow.STRING || t.ItemType().ID() != arrow.STRING {
			return nil, 0, 0, fmt.Errorf("column %q: only map<string,string> is supported, not %s", f.Name, t)
		}
		value := dictString()
		if t.ItemField().Nullable {
			value = pq.Optional(value)
		}
		return pq.Map(dictString(), value), kindStringMap, 2, nil
	}
	return nil, 0, 0, fmt.Errorf("column %q: Arrow type %s has no Parquet mapping", f.Name, f.Type)
}

// orderedGroup is a Parquet group that keeps its fields in declaration
// order (parquet-go's Group sorts them by name), so that the file's columns
// follow the Arrow schema one for one.
type orderedGroup []namedNode

type namedNode struct {
	pq.Node
	name string
}

func (f *namedNode) Name() string { return f.name }

// Value is only used by parquet-go's reflection-based row writers, which the
// archiver does not use.
func (f *namedNode) Value(reflect.Value) reflect.Value { return reflect.Value{} }

func (g orderedGroup) ID() int { return 0 }
func (g orderedGroup) String() string {
	var b strings.Builder
	if err := pq.PrintSchema(&b, "", g); err != nil {
		return "group"
	}
	return b.String()
}
func (g orderedGroup) Type() pq.Type               { return pq.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeFor[struct{}]() }
func (g orderedGroup) Fields() []pq.Field {
	fields := make([]pq.Field, len(g))
	for i := range g {
		fields[i] = &g[i]
	}
	return fields
}
