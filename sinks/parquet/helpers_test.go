package parquet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
)

// testRow is one sample as the tests write it and read it back.
type testRow struct {
	Ts       int64             `parquet:"ts,timestamp(nanosecond)"`
	Pipeline string            `parquet:"pipeline"`
	Source   string            `parquet:"source"`
	Module   string            `parquet:"module"`
	Target   string            `parquet:"target"`
	Metric   string            `parquet:"metric"`
	Value    *float64          `parquet:"value,optional"`
	Text     *string           `parquet:"text,optional"`
	Unit     *string           `parquet:"unit,optional"`
	Labels   map[string]string `parquet:"labels"`
	Node     string            `parquet:"node"`
}

func (r testRow) seq() string { return r.Labels["seq"] }

// base is 2024-06-01T00:00:00Z.
var base = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// genRows makes n samples numbered from seq0, spread over hours hours
// starting at base, for a few sources and metrics; every third carries a
// text, every fifth no value, every row a "seq" label.
func genRows(seq0, n, hours int) []testRow {
	rows := make([]testRow, n)
	step := int64(hours) * int64(time.Hour) / int64(max(n, 1))
	for i := range rows {
		s := seq0 + i
		r := testRow{
			Ts:       base + int64(s)*step%(int64(hours)*int64(time.Hour)),
			Pipeline: "test",
			Source:   fmt.Sprintf("src%d", s%7),
			Module:   "generator",
			Target:   fmt.Sprintf("10.0.0.%d", s%3),
			Metric:   []string{"duration", "status", "available", "bytes"}[s%4],
			Labels:   map[string]string{"seq": strconv.Itoa(s)},
			Node:     "node1",
		}
		if s%5 != 0 {
			v := float64(s) * 0.25
			r.Value = &v
		}
		if s%3 == 0 {
			t := "ok"
			r.Text = &t
		}
		if s%2 == 0 {
			u := "s"
			r.Unit = &u
		}
		if s%11 == 0 {
			r.Labels["ifIndex"] = strconv.Itoa(s % 48)
		}
		rows[i] = r
	}
	return rows
}

// record encodes rows as a sample.Schema batch.
func record(rows []testRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for _, r := range rows {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Ts))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append(r.Pipeline)
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(r.Source)
		b.Field(sample.IdxModule).(*array.StringBuilder).Append(r.Module)
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append(r.Target)
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append(r.Metric)
		appendOpt(b.Field(sample.IdxValue).(*array.Float64Builder), r.Value)
		appendOptString(b.Field(sample.IdxText).(*array.StringBuilder), r.Text)
		appendOptString(b.Field(sample.IdxUnit).(*array.StringBuilder), r.Unit)
		mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		keys := make([]string, 0, len(r.Labels))
		for k := range r.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			mb.KeyBuilder().(*array.StringBuilder).Append(k)
			mb.ItemBuilder().(*array.StringBuilder).Append(r.Labels[k])
		}
		b.Field(sample.IdxNode).(*array.StringBuilder).Append(r.Node)
	}
	return b.NewRecordBatch()
}

func appendOpt(b *array.Float64Builder, v *float64) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.Append(*v)
}

func appendOptString(b *array.StringBuilder, v *string) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.Append(*v)
}

// openJournal opens a journal in dir, closed at the end of the test.
func openJournal(t testing.TB, dir string) *journal.Journal {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// publish appends rows to j in batches of size per.
func publish(t testing.TB, j *journal.Journal, rows []testRow, per int) {
	t.Helper()
	for i := 0; i < len(rows); i += per {
		rec := record(rows[i:min(i+per, len(rows))])
		err := j.Publish(context.Background(), rows[i].Source, rec)
		rec.Release()
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// running is an archiver running in its own goroutine.
type running struct {
	a      *Archiver
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	cons   bus.Consumer
}

// start runs an archiver on a fresh "archiver" consumer of j. A fault hook
// that calls runtime.Goexit simulates a crash: Run stops where it is.
func start(t *testing.T, j *journal.Journal, opts Options) *running {
	t.Helper()
	cons, err := j.Consumer("archiver")
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	opts.Consumer = cons
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	a, err := NewArchiver(opts)
	if err != nil {
		t.Fatalf("NewArchiver: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan struct{}), cons: cons}
	go func() {
		defer close(r.done)
		r.err = a.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the archiver, waits for it and closes its consumer.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("archiver did not stop")
	}
	_ = r.cons.Close()
}

// crashed reports whether the archiver's goroutine ended.
func (r *running) crashed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds (the condition is what the test asserts;
// the deadline only keeps a broken build from hanging).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crashAt returns a fault hook that ends the archiver's goroutine at step.
func crashAt(step string) func(string) {
	return func(s string) {
		if s == step {
			runtime.Goexit()
		}
	}
}

// archiveFiles lists the data files of a table, relative to its root, the
// way a reader's *.parquet glob sees them.
func archiveFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ok, _ := filepath.Match("*.parquet", d.Name()); ok && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// readRows reads one samples file with parquet-go's reflection reader.
func readRows(t *testing.T, path string) []testRow { return readGeneric[testRow](t, path) }

// readGeneric reads one Parquet file into rows of T.
func readGeneric[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := pq.NewGenericReader[T](f)
	defer r.Close()
	rows := make([]T, r.NumRows())
	n, err := r.Read(rows)
	if err != nil && err != io.EOF {
		t.Fatalf("read %s: %v", path, err)
	}
	return rows[:n]
}

// readArchive reads every data file of the table at root.
func readArchive(t *testing.T, root string) []testRow {
	t.Helper()
	var all []testRow
	for _, f := range archiveFiles(t, root) {
		all = append(all, readRows(t, filepath.Join(root, f))...)
	}
	return all
}

// assertExactlyOnce checks that rows hold every seq of want exactly once.
func assertExactlyOnce(t *testing.T, got []testRow, want []testRow) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[r.seq()]++
	}
	for _, r := range want {
		switch n := count[r.seq()]; n {
		case 1:
		case 0:
			t.Errorf("seq %s lost", r.seq())
		default:
			t.Errorf("seq %s archived %d times", r.seq(), n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("archive holds %d rows, want %d", len(got), len(want))
	}
}
