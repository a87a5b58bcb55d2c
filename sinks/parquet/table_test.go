package parquet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/alert"
)

// eventSchema is shaped like the alerts table: second-precision times, a
// nullable map with nullable items, booleans, integers, a large string.
var eventSchema = arrow.NewSchema([]arrow.Field{
	{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}},
	{Name: "rule", Type: arrow.BinaryTypes.String},
	{Name: "group", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "count", Type: arrow.PrimitiveTypes.Int64},
	{Name: "level", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "ratio", Type: arrow.PrimitiveTypes.Float32},
	{Name: "flapping", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "message", Type: arrow.BinaryTypes.LargeString, Nullable: true},
}, nil)

type eventRow struct {
	Time     int64              `parquet:"time,timestamp(millisecond)"`
	Rule     string             `parquet:"rule"`
	Group    map[string]*string `parquet:"group,optional"`
	Value    *float64           `parquet:"value,optional"`
	Count    int64              `parquet:"count"`
	Level    *int32             `parquet:"level,optional"`
	Ratio    float32            `parquet:"ratio"`
	Flapping bool               `parquet:"flapping"`
	Message  *string            `parquet:"message,optional"`
}

// The writer is generic over the Arrow schema: another table (alerts) with
// other types round-trips through the archiver value for value.
func TestArchiverWritesAnotherTable(t *testing.T) {
	table := Table{Name: "events", Schema: eventSchema, TimeColumn: "time", SortColumns: []string{"rule", "time"}}
	b := array.NewRecordBuilder(memory.DefaultAllocator, eventSchema)
	const n = 300
	t0 := time.Date(2024, 6, 1, 23, 30, 0, 0, time.UTC).Unix() // crosses midnight
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0 + int64(n-i)*10))
		b.Field(1).(*array.StringBuilder).Append([]string{"disk", "cpu", "link"}[i%3])
		mb := b.Field(2).(*array.MapBuilder)
		switch i % 4 {
		case 0:
			mb.AppendNull()
		case 1:
			mb.Append(true) // empty
		default:
			mb.Append(true)
			mb.KeyBuilder().(*array.StringBuilder).Append("host")
			mb.ItemBuilder().(*array.StringBuilder).Append("h1")
			mb.KeyBuilder().(*array.StringBuilder).Append("if")
			mb.ItemBuilder().(*array.StringBuilder).AppendNull()
		}
		if i%5 == 0 {
			b.Field(3).(*array.Float64Builder).AppendNull()
			b.Field(5).(*array.Int32Builder).AppendNull()
			b.Field(8).(*array.LargeStringBuilder).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(float64(i) / 3)
			b.Field(5).(*array.Int32Builder).Append(int32(i % 3))
			b.Field(8).(*array.LargeStringBuilder).Append("message")
		}
		b.Field(4).(*array.Int64Builder).Append(int64(i) * 1e12)
		b.Field(6).(*array.Float32Builder).Append(float32(i) / 7)
		b.Field(7).(*array.BooleanBuilder).Append(i%2 == 0)
	}
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	cons := &sliceConsumer{recs: []arrow.RecordBatch{rec}, committed: -1}
	dir := t.TempDir()
	a, err := NewArchiver(Options{Config: Config{Dir: dir, FlushRows: n, FlushInterval: time.Hour}, Table: table, Consumer: cons, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "the flush", func() bool { return a.Stats().Flushes == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "events")
	files := archiveFiles(t, root)
	if want := []string{"date=2024-06-01/hour=23/p0-0-0.parquet", "date=2024-06-02/hour=00/p0-0-0.parquet"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	var got []eventRow
	for _, f := range files {
		got = append(got, readGeneric[eventRow](t, filepath.Join(root, f))...)
	}
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	byCount := map[int64]eventRow{}
	for _, r := range got {
		byCount[r.Count] = r
	}
	for i := range n {
		r, ok := byCount[int64(i)*1e12]
		if !ok {
			t.Fatalf("row %d missing", i)
		}
		if r.Time != (t0+int64(n-i)*10)*1000 || r.Rule != []string{"disk", "cpu", "link"}[i%3] || r.Flapping != (i%2 == 0) || r.Ratio != float32(i)/7 {
			t.Errorf("row %d read back as %+v", i, r)
		}
		switch i % 4 {
		case 0:
			if r.Group != nil {
				t.Errorf("row %d: null map read back as %v", i, r.Group)
			}
		case 1:
			if r.Group == nil || len(r.Group) != 0 {
				t.Errorf("row %d: empty map read back as %v", i, r.Group)
			}
		default:
			if h := r.Group["host"]; h == nil || *h != "h1" || r.Group["if"] != nil || len(r.Group) != 2 {
				t.Errorf("row %d: map read back as %v", i, r.Group)
			}
		}
		if (i%5 == 0) != (r.Value == nil) || (i%5 == 0) != (r.Level == nil) || (i%5 == 0) != (r.Message == nil) {
			t.Errorf("row %d: nulls read back wrong: %+v", i, r)
		}
		if r.Value != nil && (*r.Value != float64(i)/3 || *r.Level != int32(i%3) || *r.Message != "message") {
			t.Errorf("row %d read back as %+v", i, r)
		}
	}
}

func TestTableRejectsUnsupported(t *testing.T) {
	bad := []Table{
		{Name: "x", Schema: arrow.NewSchema([]arrow.Field{{Name: "t", Type: arrow.FixedWidthTypes.Timestamp_ns}, {Name: "l", Type: arrow.ListOf(arrow.BinaryTypes.String)}}, nil), TimeColumn: "t", SortColumns: []string{"t"}},
		{Name: "x", Schema: eventSchema, TimeColumn: "rule", SortColumns: []string{"rule"}},
		{Name: "x", Schema: eventSchema, TimeColumn: "time", SortColumns: []string{"count", "time"}},
		{Name: "x", Schema: eventSchema, TimeColumn: "time", SortColumns: []string{"rule"}},
		{Name: "../x", Schema: eventSchema, TimeColumn: "time", SortColumns: []string{"time"}},
	}
	for _, tb := range bad {
		if _, err := tb.compile(); err == nil {
			t.Errorf("table %+v compiled", tb)
		}
	}
}

// Alert events go through the same writer into ARCHIVE/alerts, and are
// compacted like samples.
func TestAlertsTable(t *testing.T) {
	at := time.Date(2024, 6, 1, 10, 15, 0, 0, time.UTC)
	var events []alert.Event
	for i := range 50 {
		events = append(events, alert.Event{
			ID: fmt.Sprint(i), Time: at.Add(time.Duration(i) * time.Minute), Rule: []string{"slow", "down"}[i%2],
			Severity: alert.Critical, Previous: alert.OK, Group: map[string]string{"target": fmt.Sprint(i % 3)},
			Value: float64(i), Message: "m", Pipeline: "p", Fingerprint: fmt.Sprint(i % 3), Since: at, Flapping: i%7 == 0,
		})
	}
	first := alert.Record(memory.DefaultAllocator, events[:25])
	second := alert.Record(memory.DefaultAllocator, events[25:])
	defer first.Release()
	defer second.Release()
	cons := &sliceConsumer{recs: []arrow.RecordBatch{first, second}, committed: -1}
	dir := t.TempDir()
	a, err := NewArchiver(Options{Config: Config{Dir: dir, FlushRows: 25, FlushInterval: time.Hour}, Table: AlertsTable, Consumer: cons, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "two flushes", func() bool { return a.Stats().Flushes == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "alerts")
	if n := len(archiveFiles(t, root)); n != 3 {
		t.Fatalf("%d alert files, want 3 (10:xx twice, 11:xx once)", n)
	}
	res, err := Compact(context.Background(), dir, CompactOptions{Logger: quietLogger()})
	if err != nil || res.Rows != 50 {
		t.Fatalf("compaction of alerts: %+v, %v", res, err)
	}
	type alertRow struct {
		Time     int64             `parquet:"time,timestamp(nanosecond)"`
		Rule     string            `parquet:"rule"`
		Group    map[string]string `parquet:"group"`
		ID       string            `parquet:"id"`
		Flapping bool              `parquet:"flapping"`
	}
	var got []alertRow
	for _, f := range archiveFiles(t, root) {
		got = append(got, readGeneric[alertRow](t, filepath.Join(root, f))...)
	}
	if len(got) != 50 {
		t.Fatalf("%d alerts archived, want 50", len(got))
	}
	for _, r := range got {
		i, err := strconv.Atoi(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Time != at.Add(time.Duration(i)*time.Minute).UnixNano() || r.Group["target"] != fmt.Sprint(i%3) || r.Flapping != (i%7 == 0) {
			t.Errorf("alert %s read back as %+v", r.ID, r)
		}
	}
}
