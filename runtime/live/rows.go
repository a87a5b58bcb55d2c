package live

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/sample"
)

// rowWriter collects the rows of one clone run into one record batch; its
// builders are reused from run to run.
type rowWriter struct {
	pipeline, source, module, target, node string

	ts int64 // default time of rows with Ts 0: the start of the run

	rb     *array.RecordBuilder
	tsb    *array.TimestampBuilder
	str    [sample.IdxNode + 1]*array.StringBuilder // by column index; nil for non-strings
	value  *array.Float64Builder
	labels *array.MapBuilder
	lkeys  *array.StringBuilder
	lvals  *array.StringBuilder
}

var _ sample.Writer = (*rowWriter)(nil)

func newRowWriter(pipeline, source, module, target, node string) *rowWriter {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	w := &rowWriter{
		pipeline: pipeline, source: source, module: module, target: target, node: node,
		rb:     rb,
		tsb:    rb.Field(sample.IdxTs).(*array.TimestampBuilder),
		value:  rb.Field(sample.IdxValue).(*array.Float64Builder),
		labels: rb.Field(sample.IdxLabels).(*array.MapBuilder),
	}
	for _, i := range []int{sample.IdxPipeline, sample.IdxSource, sample.IdxModule, sample.IdxTarget,
		sample.IdxMetric, sample.IdxText, sample.IdxUnit, sample.IdxNode} {
		w.str[i] = rb.Field(i).(*array.StringBuilder)
	}
	w.lkeys = w.labels.KeyBuilder().(*array.StringBuilder)
	w.lvals = w.labels.ItemBuilder().(*array.StringBuilder)
	return w
}

// begin starts a run at t.
func (w *rowWriter) begin(t time.Time) { w.ts = t.UnixNano() }

// Write appends one row.
func (w *rowWriter) Write(r *sample.Row) {
	ts := r.Ts
	if ts == 0 {
		ts = w.ts
	}
	w.tsb.Append(arrow.Timestamp(ts))
	w.str[sample.IdxPipeline].Append(w.pipeline)
	w.str[sample.IdxSource].Append(w.source)
	w.str[sample.IdxModule].Append(w.module)
	if r.Target != "" {
		w.str[sample.IdxTarget].Append(r.Target)
	} else {
		w.str[sample.IdxTarget].Append(w.target)
	}
	w.str[sample.IdxMetric].Append(r.Metric)
	if r.HasValue {
		w.value.Append(r.Value)
	} else {
		w.value.AppendNull()
	}
	if r.HasText {
		w.str[sample.IdxText].Append(r.Text)
	} else {
		w.str[sample.IdxText].AppendNull()
	}
	if r.Unit != "" {
		w.str[sample.IdxUnit].Append(r.Unit)
	} else {
		w.str[sample.IdxUnit].AppendNull()
	}
	w.labels.Append(true)
	for _, l := range r.Labels {
		w.lkeys.Append(l.Key)
		w.lvals.Append(l.Value)
	}
	w.str[sample.IdxNode].Append(w.node)
}

// result appends the status, available and duration rows of a run.
func (w *rowWriter) result(res sample.Result, took time.Duration) {
	row := sample.Row{Metric: sample.MetricStatus, Value: float64(res.Status), HasValue: true,
		Text: res.Status.String(), HasText: true}
	if res.Message != "" {
		row.Labels = []sample.Label{{Key: sample.LabelMessage, Value: res.Message}}
	}
	w.Write(&row)
	avail := 0.0
	if res.Available {
		avail = 1
	}
	w.Write(&sample.Row{Metric: sample.MetricAvailable, Value: avail, HasValue: true})
	w.Write(&sample.Row{Metric: sample.MetricDuration, Value: took.Seconds(), HasValue: true, Unit: "s"})
}

// record returns the rows written since the last call as one batch; the
// caller releases it.
func (w *rowWriter) record() arrow.RecordBatch { return w.rb.NewRecordBatch() }

func (w *rowWriter) release() { w.rb.Release() }
