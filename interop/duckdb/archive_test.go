package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/parquet"
)

// start is 2024-06-01T00:00:00Z.
var start = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// batch makes n samples numbered from seq0 (label "seq"), one per second
// from start+seq0 s, over 5 sources × 3 metrics; every 4th has an ifIndex
// label, every 3rd a null value and a text.
func batch(seq0, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for i := range n {
		s := seq0 + i
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(start.Add(time.Duration(s) * time.Second).UnixNano()))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("interop")
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(fmt.Sprintf("src%d", s%5))
		b.Field(sample.IdxModule).(*array.StringBuilder).Append("generator")
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append("127.0.0.1")
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append([]string{"duration", "status", "ifInOctets"}[s%3])
		vb := b.Field(sample.IdxValue).(*array.Float64Builder)
		tb := b.Field(sample.IdxText).(*array.StringBuilder)
		if s%3 == 0 {
			vb.AppendNull()
			tb.Append("ok")
		} else {
			vb.Append(float64(s) / 8)
			tb.AppendNull()
		}
		b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
		mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
		if s%4 == 0 {
			kb.Append("ifIndex")
			ib.Append(strconv.Itoa(s % 48))
		}
		kb.Append("seq")
		ib.Append(strconv.Itoa(s))
		b.Field(sample.IdxNode).(*array.StringBuilder).Append("node1")
	}
	return b.NewRecordBatch()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// failingCommits is a consumer whose Commit fails: the archive is written
// but the bus never learns it, as when recond dies between the two.
type failingCommits struct{ bus.Consumer }

func (failingCommits) Commit(context.Context, bus.Message) error {
	return errors.New("checkpoint device failed")
}

// archive runs an archiver on consumer "archiver" of j until its stats
// satisfy until, then stops it (which writes out what it holds).
func archive(t *testing.T, j *journal.Journal, dir string, flushRows int, wrap func(bus.Consumer) bus.Consumer, until func(parquet.Stats) bool) {
	t.Helper()
	cons, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	c := bus.Consumer(cons)
	if wrap != nil {
		c = wrap(cons)
	}
	a, err := parquet.NewArchiver(parquet.Options{
		Config:   parquet.Config{Dir: dir, FlushRows: flushRows, FlushInterval: time.Hour},
		Consumer: c, Logger: quiet(), RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		StopTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !until(a.Stats()) {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("archiver stats %+v: condition not reached", a.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func openDB() (*sql.DB, error) { return sql.Open("duckdb", "") }

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := openDB()
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// DuckDB reads the archive with the query of design §3.4: the columns are
// those of the §3.1 contract with their types, one by one, every sample is
// there exactly once after a replay and after compaction, and map lookups
// on labels work.
func TestDuckDBReadsArchive(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n, per = 9000, 500 // 2.5 hours of samples, 18 messages
	for s := 0; s < n; s += per {
		rec := batch(s, per)
		err := j.Publish(context.Background(), "src", rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(dir, "archive")

	// First run: the files of offsets 0..5 are written but never committed.
	archive(t, j, root, 3000, func(c bus.Consumer) bus.Consumer { return failingCommits{c} },
		func(s parquet.Stats) bool { return s.WriteErrors >= 2 })
	// Second run, flushing differently: the range is rewritten in place.
	archive(t, j, root, 4000, nil, func(s parquet.Stats) bool { return s.RowsWritten+s.PendingRows == n })

	db := openDuckDB(t)
	glob := filepath.Join(root, "samples", "**", "*.parquet")
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", glob)

	cols := describeColumns(t, db, from)
	// hive columns: hour=HH keeps its leading zero, so DuckDB reads it as text
	want := append(contractColumns(), [2]string{"date", "DATE"}, [2]string{"hour", "VARCHAR"})
	if len(cols) != len(want) {
		t.Fatalf("columns %v, want %v", cols, want)
	}
	for i := range want {
		if cols[i] != want[i] {
			t.Errorf("column %d is %v, want %v", i, cols[i], want[i])
		}
	}

	check := func(stage string) {
		t.Helper()
		total := queryInt(t, db, "SELECT count(*) FROM "+from)
		distinct := queryInt(t, db, "SELECT count(DISTINCT labels['seq']) FROM "+from)
		if total != n || distinct != n {
			t.Errorf("%s: count(*) = %d, count(DISTINCT seq) = %d, want %d", stage, total, distinct, n)
		}
		wantIf := int64(0)
		for s := range n {
			if s%48 == 4 {
				wantIf++
			}
		}
		if got := queryInt(t, db, "SELECT count(*) FROM "+from+" WHERE labels['ifIndex'] = '4'"); got != wantIf {
			t.Errorf("%s: %d rows with labels['ifIndex'] = '4', want %d", stage, got, wantIf)
		}
		if got := queryInt(t, db, "SELECT count(*) FROM "+from+" WHERE hour = '01' AND date = DATE '2024-06-01' AND (epoch_ns(ts) // 3600000000000) % 24 = 1"); got != 3600 {
			t.Errorf("%s: hour=1 partition holds %d rows of hour 1, want 3600", stage, got)
		}
		if got := queryInt(t, db, "SELECT count(*) FROM "+from+" WHERE value IS NULL AND text = 'ok'"); got != n/3 {
			t.Errorf("%s: %d null values with text, want %d", stage, got, n/3)
		}
		if got := queryInt(t, db, "SELECT count(*) FROM "+from+" WHERE epoch_ns(ts) % 1000000000 <> 0"); got != 0 {
			t.Errorf("%s: %d timestamps not on whole seconds: the ns values were altered", stage, got)
		}
	}
	check("after replay")

	res, err := parquet.Compact(context.Background(), root, parquet.CompactOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 3 || res.Rows != n {
		t.Errorf("compaction %+v, want 3 partitions of %d rows", res, n)
	}
	if files := queryInt(t, db, fmt.Sprintf("SELECT count(*) FROM glob('%s')", glob)); files != 3 {
		t.Errorf("%d files after compaction, want one per hour", files)
	}
	check("after compaction")
}
