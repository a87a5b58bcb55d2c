package duckdb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sinks/parquet"
	"github.com/reconmon/recon/sources/nagios"
)

// nagiosIdentity is what the runtime stamps on every row of a source.
type nagiosIdentity struct{ pipeline, source, module, target, node string }

// nagiosBatch builds a §3.1 sample batch from recorded rows, as the runtime's
// batcher does (rows with Ts 0 take ts).
func nagiosBatch(id nagiosIdentity, ts time.Time, rows []sample.Row) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	for _, r := range rows {
		t := r.Ts
		if t == 0 {
			t = ts.UnixNano()
		}
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(t))
		str(sample.IdxPipeline).Append(id.pipeline)
		str(sample.IdxSource).Append(id.source)
		str(sample.IdxModule).Append(id.module)
		target := id.target
		if r.Target != "" {
			target = r.Target
		}
		str(sample.IdxTarget).Append(target)
		str(sample.IdxMetric).Append(r.Metric)
		if r.HasValue {
			b.Field(sample.IdxValue).(*array.Float64Builder).Append(r.Value)
		} else {
			b.Field(sample.IdxValue).AppendNull()
		}
		if r.HasText {
			str(sample.IdxText).Append(r.Text)
		} else {
			str(sample.IdxText).AppendNull()
		}
		if r.Unit != "" {
			str(sample.IdxUnit).Append(r.Unit)
		} else {
			str(sample.IdxUnit).AppendNull()
		}
		mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		for _, l := range r.Labels {
			mb.KeyBuilder().(*array.StringBuilder).Append(l.Key)
			mb.ItemBuilder().(*array.StringBuilder).Append(l.Value)
		}
		str(sample.IdxNode).Append(id.node)
	}
	return b.NewRecordBatch()
}

// writeNagiosResult writes the rows the runtime adds to every run (design §3.1).
func writeNagiosResult(w sample.Writer, res sample.Result, took time.Duration) {
	r := sample.Row{Metric: sample.MetricStatus, Value: float64(res.Status), HasValue: true,
		Text: res.Status.String(), HasText: true, Labels: []sample.Label{{Key: sample.LabelMessage, Value: res.Message}}}
	w.Write(&r)
	avail := 0.0
	if res.Available {
		avail = 1
	}
	sample.WriteValue(w, sample.MetricAvailable, avail, "")
	sample.WriteValue(w, sample.MetricDuration, took.Seconds(), "s")
}

// TestNagiosIntoParquet runs real plugins through the nagios module, writes
// their rows (plus the runtime's status rows) as a §3.1 batch to the
// journal, archives it with the Parquet archiver and reads it back with
// DuckDB: status rows and perfdata rows with their labels.
func TestNagiosIntoParquet(t *testing.T) {
	for _, p := range []string{"check_dummy", "check_disk"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/nagios/plugins", p)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing in CI: %v", p, err)
			}
			t.Skipf("%s not installed (CI fails here); install with: make deps", p)
		}
	}
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sources := map[string][]string{
		"dummy": {"check_dummy", "1", "half full | used=250ms;100;200;0; 'it''s'=3KB bad"},
		"disk":  {"check_disk", "-w", "1", "-c", "1", "-p", "/"},
	}
	var published int64
	for name, cmd := range sources {
		a := module.Attrs{}
		for _, f := range nagios.Spec.Fields {
			if f.Default != nil {
				a[f.Name] = f.Default
			}
		}
		a[nagios.FieldCommand] = cmd
		c, err := nagios.Spec.NewCheck(module.Env{Pipeline: "it", Source: name, Node: "n1", Target: "127.0.0.1", Timeout: 10 * time.Second, Attrs: a})
		if err != nil {
			t.Fatal(err)
		}
		rec := &sampletest.Recorder{}
		start := time.Now()
		runCtx, runCancel := context.WithTimeout(ctx, 10*time.Second)
		res := c.Run(runCtx, rec)
		runCancel()
		writeNagiosResult(rec, res, time.Since(start))
		batch := nagiosBatch(nagiosIdentity{"it", name, "nagios", "127.0.0.1", "n1"}, start, rec.Rows())
		err = j.Publish(ctx, name, batch)
		published += batch.NumRows()
		batch.Release()
		if err != nil {
			t.Fatal(err)
		}
	}

	cons, err := j.Consumer("archive")
	if err != nil {
		t.Fatal(err)
	}
	cfg := parquet.DefaultConfig(filepath.Join(dir, "archive"))
	cfg.FlushInterval = 50 * time.Millisecond
	arch, err := parquet.NewArchiver(parquet.Options{Config: cfg, Consumer: cons})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- arch.Run(runCtx) }()
	for arch.Stats().RowsWritten < published {
		select {
		case <-ctx.Done():
			t.Fatalf("archiver wrote %d of %d rows: %+v", arch.Stats().RowsWritten, published, arch.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("archiver: %v", err)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(dir, "archive", "samples", "**", "*.parquet")
	query := func(q string, args ...any) *sql.Rows {
		t.Helper()
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		t.Cleanup(func() { rows.Close() })
		return rows
	}
	from := "FROM read_parquet('" + glob + "', hive_partitioning = true)"

	// Status rows.
	want := map[string]string{"dummy": "warning", "disk": "ok"}
	rows := query("SELECT source, text, value, element_at(labels, 'message')[1] " + from + " WHERE metric = 'status' AND module = 'nagios' ORDER BY source")
	n := 0
	for rows.Next() {
		var src, text, msg string
		var v float64
		if err := rows.Scan(&src, &text, &v, &msg); err != nil {
			t.Fatal(err)
		}
		n++
		if text != want[src] {
			t.Errorf("%s: status %s (%q), want %s", src, text, msg, want[src])
		}
		if src == "dummy" && (v != 1 || msg != "WARNING: half full") {
			t.Errorf("dummy status value %v message %q", v, msg)
		}
	}
	if n != 2 {
		t.Fatalf("%d status rows, want 2", n)
	}

	// Perfdata rows, as reported and normalised, with thresholds.
	type perf struct {
		unit, warn, crit, from string
		value                  float64
	}
	got := map[string][]perf{}
	rows = query("SELECT source || '/' || metric, unit, value, coalesce(element_at(labels, 'warn')[1], ''), coalesce(element_at(labels, 'crit')[1], ''), coalesce(element_at(labels, 'normalized_from')[1], '') " +
		from + " WHERE metric NOT IN ('status', 'available', 'duration') ORDER BY 1, 2")
	for rows.Next() {
		var k string
		var p perf
		var unit sql.NullString
		if err := rows.Scan(&k, &unit, &p.value, &p.warn, &p.crit, &p.from); err != nil {
			t.Fatal(err)
		}
		p.unit = unit.String
		got[k] = append(got[k], p)
	}
	if u := got["dummy/used"]; len(u) != 2 || u[0] != (perf{unit: "ms", value: 250, warn: "100", crit: "200"}) || u[1] != (perf{unit: "s", value: 0.25, from: "ms"}) {
		t.Errorf("dummy/used rows %+v", u)
	}
	if u := got["dummy/it's"]; len(u) != 2 || u[0].unit != "B" || u[0].value != 3072 {
		t.Errorf("dummy/it's rows %+v", u)
	}
	if e := got["dummy/perfdata_errors"]; len(e) != 1 || e[0].value != 1 {
		t.Errorf("perfdata_errors rows %+v", e)
	}
	if d := got["disk//"]; len(d) != 1 || d[0].unit != "B" || d[0].value <= 0 || d[0].warn == "" {
		t.Errorf("disk / rows %+v (all: %v)", d, got)
	}
}
