package alert

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Column names of Schema, in order.
const (
	ColTime        = "time"
	ColRule        = "rule"
	ColSeverity    = "severity"
	ColPrevious    = "previous"
	ColGroup       = "group"
	ColValue       = "value"
	ColMessage     = "message"
	ColPipeline    = "pipeline"
	ColFingerprint = "fingerprint"
	ColSince       = "since"
	ColID          = "id"
	ColRepeat      = "repeat"
	ColFlapping    = "flapping"
)

var tsType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}

// Schema is the Arrow schema of alert batches on the alerts topic and of the
// archive's `alerts` table.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: ColTime, Type: tsType},
	{Name: ColRule, Type: arrow.BinaryTypes.String},
	{Name: ColSeverity, Type: arrow.BinaryTypes.String},
	{Name: ColPrevious, Type: arrow.BinaryTypes.String},
	{Name: ColGroup, Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
	{Name: ColValue, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColMessage, Type: arrow.BinaryTypes.String},
	{Name: ColPipeline, Type: arrow.BinaryTypes.String},
	{Name: ColFingerprint, Type: arrow.BinaryTypes.String},
	{Name: ColSince, Type: tsType},
	{Name: ColID, Type: arrow.BinaryTypes.String},
	{Name: ColRepeat, Type: arrow.FixedWidthTypes.Boolean},
	{Name: ColFlapping, Type: arrow.FixedWidthTypes.Boolean},
}, &schemaMeta)

var schemaMeta = arrow.NewMetadata([]string{"recon-schema"}, []string{SchemaVersion})

// Record encodes events as one record batch of Schema; the caller releases it.
func Record(mem memory.Allocator, events []Event) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, Schema)
	defer b.Release()
	b.Reserve(len(events))
	for i := range events {
		e := &events[i]
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(e.Time.UnixNano()))
		b.Field(1).(*array.StringBuilder).Append(e.Rule)
		b.Field(2).(*array.StringBuilder).Append(e.Severity.String())
		b.Field(3).(*array.StringBuilder).Append(e.Previous.String())
		mb := b.Field(4).(*array.MapBuilder)
		mb.Append(true)
		kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
		for k, v := range sortedPairs(e.Group) {
			kb.Append(k)
			ib.Append(v)
		}
		vb := b.Field(5).(*array.Float64Builder)
		if math.IsNaN(e.Value) {
			vb.AppendNull()
		} else {
			vb.Append(e.Value)
		}
		b.Field(6).(*array.StringBuilder).Append(e.Message)
		b.Field(7).(*array.StringBuilder).Append(e.Pipeline)
		b.Field(8).(*array.StringBuilder).Append(e.Fingerprint)
		b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(e.Since.UnixNano()))
		b.Field(10).(*array.StringBuilder).Append(e.ID)
		b.Field(11).(*array.BooleanBuilder).Append(e.Repeat)
		b.Field(12).(*array.BooleanBuilder).Append(e.Flapping)
	}
	return b.NewRecordBatch()
}

// Events decodes a record batch of Schema (Notify is not carried). The
// events own their strings: they outlive rec.
func Events(rec arrow.RecordBatch) ([]Event, error) {
	if !rec.Schema().Equal(Schema) {
		return nil, fmt.Errorf("alert record: schema %s is not %s", rec.Schema(), SchemaVersion)
	}
	col := func(i int) arrow.Array { return rec.Column(i) }
	times := col(0).(*array.Timestamp)
	rule, sev, prev := col(1).(*array.String), col(2).(*array.String), col(3).(*array.String)
	group := col(4).(*array.Map)
	keys, items := group.Keys().(*array.String), group.Items().(*array.String)
	val := col(5).(*array.Float64)
	msg, pipe, fp := col(6).(*array.String), col(7).(*array.String), col(8).(*array.String)
	since, id := col(9).(*array.Timestamp), col(10).(*array.String)
	rep, flap := col(11).(*array.Boolean), col(12).(*array.Boolean)
	out := make([]Event, rec.NumRows())
	for i := range out {
		s, err := ParseSeverity(sev.Value(i))
		if err != nil {
			return nil, fmt.Errorf("alert record row %d: %w", i, err)
		}
		p, err := ParseSeverity(prev.Value(i))
		if err != nil {
			return nil, fmt.Errorf("alert record row %d: previous: %w", i, err)
		}
		g := map[string]string{}
		start, end := group.ValueOffsets(i)
		for j := start; j < end; j++ {
			g[strings.Clone(keys.Value(int(j)))] = strings.Clone(items.Value(int(j)))
		}
		v := math.NaN()
		if val.IsValid(i) {
			v = val.Value(i)
		}
		out[i] = Event{
			ID: strings.Clone(id.Value(i)), Time: time.Unix(0, int64(times.Value(i))).UTC(), Rule: strings.Clone(rule.Value(i)),
			Severity: s, Previous: p, Group: g, Value: v, Message: strings.Clone(msg.Value(i)), Pipeline: strings.Clone(pipe.Value(i)),
			Fingerprint: strings.Clone(fp.Value(i)), Since: time.Unix(0, int64(since.Value(i))).UTC(),
			Repeat: rep.Value(i), Flapping: flap.Value(i),
		}
	}
	return out, nil
}
