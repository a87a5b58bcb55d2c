package journal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/sample"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(crashChild())
	}
	if os.Getenv(fsizeChildEnv) != "" {
		os.Exit(fsizeChild())
	}
	os.Exit(m.Run())
}

var metrics = []string{"duration", "code", "status", "available", "ifInOctets", "ifOutOctets", "rtt", "loss"}

// sampleBatch builds a deterministic sample.Schema batch of rows rows whose
// content is a function of seq, with realistic strings, nulls and labels.
func sampleBatch(mem memory.Allocator, seq int64, rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, sample.Schema)
	defer b.Release()
	ts := b.Field(sample.IdxTs).(*array.TimestampBuilder)
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	val := b.Field(sample.IdxValue).(*array.Float64Builder)
	lb := b.Field(sample.IdxLabels).(*array.MapBuilder)
	lk := lb.KeyBuilder().(*array.StringBuilder)
	lv := lb.ItemBuilder().(*array.StringBuilder)
	base := int64(1_790_000_000_000_000_000) + seq*1_000_000_000
	for i := range rows {
		series := (int(seq) + i) % 997
		ts.Append(arrow.Timestamp(base + int64(i)*1000))
		str(sample.IdxPipeline).Append("datacenter-east")
		str(sample.IdxSource).Append(fmt.Sprintf("http-check-%03d", series%50))
		str(sample.IdxModule).Append("http")
		str(sample.IdxTarget).Append(fmt.Sprintf("web-%02d.example.internal", series%20))
		str(sample.IdxMetric).Append(metrics[i%len(metrics)])
		if i%7 == 3 {
			val.AppendNull()
		} else {
			val.Append(float64(seq)*1e3 + float64(i)*0.25)
		}
		if i%11 == 0 {
			str(sample.IdxText).Append(fmt.Sprintf("seq %d row %d ok", seq, i))
		} else {
			str(sample.IdxText).AppendNull()
		}
		if i%3 == 0 {
			str(sample.IdxUnit).AppendNull()
		} else {
			str(sample.IdxUnit).Append("s")
		}
		lb.Append(true)
		if i%4 == 0 {
			lk.Append("ifIndex")
			lv.Append(fmt.Sprint(series))
			lk.Append("message")
			lv.Append("HTTP/1.1 200 OK")
		}
		str(sample.IdxNode).Append("recond-1")
	}
	return b.NewRecordBatch()
}

// checkBatch fails t unless rec is exactly sampleBatch(seq, rows).
func checkBatch(t testing.TB, rec arrow.RecordBatch, seq int64, rows int) {
	t.Helper()
	want := sampleBatch(memory.DefaultAllocator, seq, rows)
	defer want.Release()
	if !rec.Schema().Equal(want.Schema()) || !rec.Schema().Metadata().Equal(want.Schema().Metadata()) {
		t.Fatalf("seq %d: schema %v, want %v", seq, rec.Schema(), want.Schema())
	}
	if !array.RecordEqual(rec, want) {
		t.Fatalf("seq %d: batch content differs from what was published", seq)
	}
}

// seqOf reads back the sequence number sampleBatch encoded in rec.
func seqOf(rec arrow.RecordBatch) int64 {
	ts := rec.Column(sample.IdxTs).(*array.Timestamp).Value(0)
	return (int64(ts) - 1_790_000_000_000_000_000) / 1_000_000_000
}

// logBuffer collects a journal's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openT(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// fetchN fetches n messages, failing t if any takes longer than a generous
// deadline (a hang is a bug, not a slow machine).
func fetchN(t testing.TB, c bus.Consumer, n int) []bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]bus.Message, 0, n)
	for range n {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("Fetch after %d messages: %v", len(out), err)
		}
		out = append(out, m)
	}
	return out
}

func release(ms []bus.Message) {
	for _, m := range ms {
		m.Record.Release()
	}
}

// assertEmpty fails t if c has a message ready.
func assertEmpty(t testing.TB, c bus.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m, err := c.Fetch(ctx)
	if err == nil {
		m.Record.Release()
		t.Fatalf("unexpected message at offset %d", m.Offset)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
